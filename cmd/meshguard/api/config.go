package api

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
)

// Config is the `server:` section.
type Config struct {
	// Listen is the address of the HTTP listener: ":8080" in a container,
	// "127.0.0.1:8080" for the demo.
	Listen string `yaml:"listen"`
	// PublicHosts are the host names (optionally host:port) clients use
	// to reach the server besides its listen address: the Ingress host
	// Slack and browsers call, the Service's DNS name. A request whose
	// Host header names anything else is refused (421): a page on a
	// rebound DNS name must not drive the API. IP addresses and, on a
	// loopback listener, localhost are always accepted.
	PublicHosts []string   `yaml:"public_hosts"`
	TLS         TLSConfig  `yaml:"tls"`
	Auth        AuthConfig `yaml:"auth"`
}

// TLSConfig turns on HTTPS for the listener: set both files or neither.
type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Enabled reports whether the listener serves HTTPS.
func (c TLSConfig) Enabled() bool { return c.CertFile != "" || c.KeyFile != "" }

// Auth modes.
const (
	// AuthToken: bearer tokens from AuthConfig.TokensFile.
	AuthToken = "token"
	// AuthKubernetes: the API server decides, through TokenReview (who is
	// it) and SubjectAccessReview (may they): see ViewerAccess and
	// OperatorAccess.
	AuthKubernetes = "kubernetes"
	// AuthNone: everyone is an operator. Only when asked for (the demo on
	// 127.0.0.1).
	AuthNone = "none"
)

// AuthConfig says who may use the API and the page.
type AuthConfig struct {
	// Mode: token (default), kubernetes or none.
	Mode string `yaml:"mode"`
	// TokensFile holds one `TOKEN ROLE NAME` per line, ROLE viewer or
	// operator; blank lines and lines starting with # are skipped. Mount it
	// from a Kubernetes Secret. Read at start-up.
	TokensFile string `yaml:"tokens_file"`
	// Audiences (mode kubernetes) are the audiences a token must be
	// issued for: the TokenReview asks for them, and a token the cluster
	// issued for anything else (the API server itself, another service)
	// is refused, so a token stolen from one service cannot be replayed
	// here. Default meshguard: `kubectl create token NAME --audience
	// meshguard`, or a projected token with that audience.
	Audiences []string `yaml:"audiences"`
}

// DefaultAudience is the audience tokens for meshguard's API are issued
// for unless server.auth.audiences says otherwise.
const DefaultAudience = "meshguard"

// DefaultConfig is what `meshguard serve` runs with when the section is
// empty: all interfaces, bearer tokens required.
func DefaultConfig() Config {
	return Config{Listen: ":8080", Auth: AuthConfig{Mode: AuthToken, Audiences: []string{DefaultAudience}}}
}

// Validate reports every problem at once, each with its key and how to fix
// it. It reads the tokens file and the TLS key pair to check they are
// usable, and never quotes a token.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Listen == "" {
		add(`server.listen: empty; set host:port, e.g. ":8080" or "127.0.0.1:8080"`)
	} else if _, port, err := net.SplitHostPort(c.Listen); err != nil || port == "" {
		add(`server.listen: %q is not host:port; e.g. ":8080" or "127.0.0.1:8080"`, c.Listen)
	}
	for _, h := range c.PublicHosts {
		if h = strings.TrimSpace(h); h == "" || strings.ContainsAny(h, "/*@ ") {
			add("server.public_hosts: %q; list host names as clients type them (meshguard.example.com or meshguard.example.com:8443), no scheme, path or wildcard", h)
		}
	}
	switch {
	case c.TLS.CertFile != "" && c.TLS.KeyFile == "":
		add("server.tls.key_file: empty while server.tls.cert_file is set; set both (PEM files) or neither")
	case c.TLS.CertFile == "" && c.TLS.KeyFile != "":
		add("server.tls.cert_file: empty while server.tls.key_file is set; set both (PEM files) or neither")
	case c.TLS.Enabled():
		if _, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile); err != nil {
			add("server.tls: cert_file %s and key_file %s are not a usable PEM key pair: %v", c.TLS.CertFile, c.TLS.KeyFile, err)
		}
	}
	switch c.Auth.Mode {
	case AuthToken:
		if c.Auth.TokensFile == "" {
			add("server.auth.tokens_file: empty with server.auth.mode token; name a file of `TOKEN ROLE NAME` lines " +
				"(ROLE viewer or operator), or set server.auth.mode to kubernetes (cluster RBAC decides) or none (no authentication)")
		} else if _, err := loadTokens(c.Auth.TokensFile); err != nil {
			add("server.auth.tokens_file: %v", err)
		}
	case AuthKubernetes, AuthNone:
		if c.Auth.TokensFile != "" {
			add("server.auth.tokens_file: set, but server.auth.mode is %s, which does not read it; remove it or use mode token", c.Auth.Mode)
		}
		if c.Auth.Mode == AuthKubernetes {
			if err := checkAudiences(c.Auth.Audiences); err != nil {
				add("%v", err)
			}
		}
		if c.Auth.Mode == AuthNone && c.Listen != "" && !loopback(c.Listen) {
			add("server.auth.mode: none with server.listen %q, which is not a loopback address: anyone who reaches it could approve and revoke actions; "+
				"set server.listen to 127.0.0.1:PORT, or server.auth.mode to token or kubernetes", c.Listen)
		}
	default:
		add("server.auth.mode: %q; use token, kubernetes or none", c.Auth.Mode)
	}
	return errors.Join(errs...)
}

// Roles, ordered: an operator may do what a viewer may.
type Role int

const (
	RoleNone Role = iota
	// RoleViewer reads detections, actions, edges and metrics.
	RoleViewer
	// RoleOperator also approves, revokes and extends actions.
	RoleOperator
)

func (r Role) String() string {
	switch r {
	case RoleViewer:
		return "viewer"
	case RoleOperator:
		return "operator"
	}
	return "none"
}

func parseRole(s string) (Role, bool) {
	switch s {
	case "viewer":
		return RoleViewer, true
	case "operator":
		return RoleOperator, true
	}
	return RoleNone, false
}

// minTokenLen: shorter tokens are guessable; `openssl rand -hex 32` gives 64.
const minTokenLen = 16

// tokenEntry is one line of the tokens file. Only the token's SHA-256 is
// kept: comparing digests of equal length in constant time leaks neither
// the token nor its length.
type tokenEntry struct {
	sum  [sha256.Size]byte
	role Role
	name string
}

// loadTokens reads a tokens file. Errors name the line, never its token.
func loadTokens(path string) ([]tokenEntry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []tokenEntry
	var errs []error
	seen := map[[sha256.Size]byte]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			errs = append(errs, fmt.Errorf("%s line %d: want `TOKEN ROLE NAME` (ROLE viewer or operator), got %d fields", path, n, len(f)))
			continue
		}
		role, ok := parseRole(f[1])
		if !ok {
			errs = append(errs, fmt.Errorf("%s line %d: role %q; use viewer or operator", path, n, f[1]))
			continue
		}
		if len(f[0]) < minTokenLen {
			errs = append(errs, fmt.Errorf("%s line %d: token shorter than %d characters; generate one with `openssl rand -hex 32`", path, n, minTokenLen))
			continue
		}
		e := tokenEntry{sum: sha256.Sum256([]byte(f[0])), role: role, name: strings.Join(f[2:], " ")}
		if prev, dup := seen[e.sum]; dup {
			errs = append(errs, fmt.Errorf("%s line %d: same token as line %d; give every identity its own", path, n, prev))
			continue
		}
		seen[e.sum] = n
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no token; add `TOKEN ROLE NAME` lines", path)
	}
	return out, nil
}

// checkAudiences: mode kubernetes needs at least one audience, none
// blank.
func checkAudiences(auds []string) error {
	if len(auds) == 0 {
		return fmt.Errorf("server.auth.audiences: empty with server.auth.mode kubernetes; list the audiences tokens must be issued for "+
			"(default %s: kubectl create token NAME --audience %s)", DefaultAudience, DefaultAudience)
	}
	for _, a := range auds {
		if strings.TrimSpace(a) == "" {
			return fmt.Errorf("server.auth.audiences: a blank entry in %q; remove it", auds)
		}
	}
	return nil
}
