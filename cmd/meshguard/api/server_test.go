package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshguard/meshguard/storage"
)

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	file := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := file("good", viewerToken+" viewer vera\n")
	tests := []struct {
		name   string
		change func(*Config)
		want   []string // substrings of the error; none: valid
	}{
		{"token mode with a file", func(c *Config) { c.Auth.TokensFile = good }, nil},
		{"default needs a tokens file", func(c *Config) {}, []string{"server.auth.tokens_file", "kubernetes", "none"}},
		{"kubernetes", func(c *Config) { c.Auth.Mode = AuthKubernetes }, nil},
		{"kubernetes without audiences", func(c *Config) { c.Auth.Mode = AuthKubernetes; c.Auth.Audiences = nil }, []string{"server.auth.audiences: empty", "--audience meshguard"}},
		{"kubernetes with a blank audience", func(c *Config) { c.Auth.Mode = AuthKubernetes; c.Auth.Audiences = []string{"meshguard", " "} }, []string{"server.auth.audiences: a blank entry"}},
		{"none", func(c *Config) { c.Auth.Mode = AuthNone; c.Listen = "127.0.0.1:8080" }, nil},
		{"unknown mode", func(c *Config) { c.Auth.Mode = "basic" }, []string{`server.auth.mode: "basic"`, "token, kubernetes or none"}},
		{"tokens file in kubernetes mode", func(c *Config) { c.Auth.Mode = AuthKubernetes; c.Auth.TokensFile = good }, []string{"server.auth.tokens_file", "does not read it"}},
		{"bad listen", func(c *Config) { c.Auth.TokensFile = good; c.Listen = "8080" }, []string{`server.listen: "8080"`}},
		{"cert without key", func(c *Config) { c.Auth.TokensFile = good; c.TLS.CertFile = good }, []string{"server.tls.key_file"}},
		{"key pair unusable", func(c *Config) { c.Auth.TokensFile = good; c.TLS.CertFile, c.TLS.KeyFile = good, good }, []string{"server.tls", "PEM key pair"}},
		{"missing tokens file", func(c *Config) { c.Auth.TokensFile = filepath.Join(dir, "nope") }, []string{"server.auth.tokens_file", "nope"}},
		{"bad role", func(c *Config) { c.Auth.TokensFile = file("role", "# c\n"+operatorToken+" admin root\n") }, []string{"line 2", `role "admin"`, "viewer or operator"}},
		{"short token", func(c *Config) { c.Auth.TokensFile = file("short", "abc viewer x\n") }, []string{"line 1", "shorter than 16", "openssl rand"}},
		{"two fields", func(c *Config) { c.Auth.TokensFile = file("two", operatorToken+" operator\n") }, []string{"line 1", "TOKEN ROLE NAME"}},
		{"duplicate", func(c *Config) {
			c.Auth.TokensFile = file("dup", viewerToken+" viewer a\n"+viewerToken+" operator b\n")
		}, []string{"line 2", "same token as line 1"}},
		{"empty file", func(c *Config) { c.Auth.TokensFile = file("empty", "# nothing\n") }, []string{"no token"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.change(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: nil, want an error with %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, tok := range []string{viewerToken, operatorToken} {
				if strings.Contains(err.Error(), tok) {
					t.Errorf("error quotes a token: %v", err)
				}
			}
		})
	}
	if c := DefaultConfig(); c.Listen != ":8080" || c.Auth.Mode != AuthToken || len(c.Auth.Audiences) != 1 || c.Auth.Audiences[0] != "meshguard" {
		t.Errorf("DefaultConfig = %+v; want :8080, mode token, audiences [meshguard]", c)
	}
}

func TestProbesNeedNoAuth(t *testing.T) {
	ready := errors.New("clickhouse at 10.0.0.5:9000 unreachable")
	e := newEnv(t, func(_ *Config, d *Deps) { d.Ready = func() error { return ready } })
	if w := do(e.h, "GET", "/healthz", "", nil); w.Code != 200 {
		t.Errorf("/healthz: %d", w.Code)
	}
	w := do(e.h, "GET", "/readyz", "", nil)
	if w.Code != http.StatusServiceUnavailable || strings.Contains(w.Body.String(), "10.0.0.5") {
		t.Errorf("/readyz not ready: %d %q; want 503 without the reason", w.Code, w.Body)
	}
	if !strings.Contains(e.logs.String(), "10.0.0.5") {
		t.Errorf("the reason is not logged: %s", e.logs)
	}
	ready = nil
	if w := do(e.h, "GET", "/readyz", "", nil); w.Code != 200 {
		t.Errorf("/readyz ready: %d", w.Code)
	}
}

func TestViewerEndpoints(t *testing.T) {
	e := newEnv(t, nil)
	for _, path := range []string{"/metrics", "/api/v1/detections", "/api/v1/actions", "/api/v1/edges", "/api/v1/whoami", "/api/v1/actions/current"} {
		w := do(e.h, "GET", path, "", nil)
		if w.Code != http.StatusUnauthorized || !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s without a token: %d %v; want 401 with WWW-Authenticate: Bearer", path, w.Code, w.Header())
		}
		if w := do(e.h, "GET", path, "wrong-token-0123456789abcdef", nil); w.Code != http.StatusUnauthorized {
			t.Errorf("%s with a wrong token: %d; want 401", path, w.Code)
		}
		r := do(e.h, "GET", path, "", http.Header{"Authorization": {"Basic " + viewerToken}})
		if r.Code != http.StatusUnauthorized {
			t.Errorf("%s with Basic: %d; want 401", path, r.Code)
		}
		for _, tok := range []string{viewerToken, operatorToken} {
			if w := do(e.h, "GET", path, tok, nil); w.Code != http.StatusOK {
				t.Errorf("%s as %s: %d %s; want 200", path, tok[:8], w.Code, w.Body)
			}
		}
	}
	if got := e.audit.Actions(); len(got) != 0 {
		t.Errorf("viewer requests audited: %+v", got)
	}
	// The page's files carry no data: open, so a browser can load the
	// sign-in form.
	for _, path := range []string{"/", "/ui/app.js", "/ui/app.css"} {
		if w := do(e.h, "GET", path, "", nil); w.Code != 200 {
			t.Errorf("%s: %d", path, w.Code)
		}
	}
	var me struct {
		Name     string
		Operator bool
	}
	for tok, want := range map[string]bool{viewerToken: false, operatorToken: true} {
		if err := json.Unmarshal(do(e.h, "GET", "/api/v1/whoami", tok, nil).Body.Bytes(), &me); err != nil || me.Operator != want {
			t.Errorf("whoami %s: %+v %v; want operator %v", tok[:8], me, err, want)
		}
	}
	w := do(e.h, "GET", "/metrics", viewerToken, nil)
	if !strings.Contains(w.Body.String(), `meshguard_api_refused_total{reason="unauthenticated"}`) {
		t.Errorf("/metrics lacks the refused counter:\n%s", w.Body)
	}
}

func TestOperatorEndpoints(t *testing.T) {
	e := newEnv(t, nil)
	same := http.Header{CSRFHeader: {"1"}, "Sec-Fetch-Site": {"same-origin"}, "Origin": {"http://example.com"}}
	tests := []struct {
		name   string
		target string
		token  string
		header http.Header
		code   int
		actor  string // of the audit row
		state  string
		reason string
		call   *call
	}{
		{"no token", "/api/v1/actions/act-1/approve", "", same, 401, "anonymous", "refused", "missing bearer token", nil},
		{"wrong token", "/api/v1/actions/act-1/revoke", "wrong-token-0123456789abcdef", same, 401, "anonymous", "refused", "invalid bearer token", nil},
		{"viewer", "/api/v1/actions/act-1/approve", viewerToken, same, 403, "vera", "refused", "vera is not an operator", nil},
		{"no csrf header", "/api/v1/actions/act-1/approve", operatorToken, http.Header{"Sec-Fetch-Site": {"same-origin"}}, 403, "otto", "refused", "X-Meshguard-CSRF", nil},
		{"cross-site", "/api/v1/actions/act-1/approve", operatorToken, http.Header{CSRFHeader: {"1"}, "Sec-Fetch-Site": {"cross-site"}}, 403, "otto", "refused", "cross-origin", nil},
		{"foreign origin", "/api/v1/actions/act-1/revoke", operatorToken, http.Header{CSRFHeader: {"1"}, "Origin": {"https://evil.example"}}, 403, "otto", "refused", "cross-origin", nil},
		{"bad by", "/api/v1/actions/act-1/extend?by=forever", operatorToken, same, 400, "otto", "refused", `by "forever"`, nil},
		{"approve", "/api/v1/actions/act-1/approve", operatorToken, same, 200, "otto", "promoted", "api approve by otto", &call{"approve", "act-1", "otto", 0}},
		{"revoke from curl", "/api/v1/actions/act-1/revoke", operatorToken, http.Header{CSRFHeader: {"1"}}, 200, "otto", "revoked", "api revoke by otto", &call{"revoke", "act-1", "otto", 0}},
		{"extend", "/api/v1/actions/act-1/extend?by=2h", operatorToken, same, 200, "otto", "extended", "api extend by otto", &call{"extend", "act-1", "otto", 2 * time.Hour}},
		{"not found", "/api/v1/actions/nope/approve", operatorToken, same, 404, "otto", "failed", "no such action", &call{"approve", "nope", "otto", 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, calls := len(e.audit.Actions()), len(e.op.Calls())
			w := do(e.h, "POST", tt.target, tt.token, tt.header)
			if w.Code != tt.code {
				t.Fatalf("%d %s; want %d", w.Code, w.Body, tt.code)
			}
			rows := e.audit.Actions()[before:]
			if len(rows) != 1 {
				t.Fatalf("audit rows %+v; want one", rows)
			}
			r := rows[0]
			id := strings.Split(tt.target, "/")[4]
			if r.ActionID != id || r.Actor != tt.actor || r.State != tt.state || !strings.Contains(r.Reason, tt.reason) || r.Kind != "api" || r.At.IsZero() {
				t.Errorf("audit %+v; want action %s, actor %s, state %s, reason with %q, kind api", r, id, tt.actor, tt.state, tt.reason)
			}
			got := e.op.Calls()[calls:]
			switch {
			case tt.call == nil && len(got) != 0:
				t.Errorf("refused, yet the operator was called: %+v", got)
			case tt.call != nil && (len(got) != 1 || got[0] != *tt.call):
				t.Errorf("operator calls %+v; want %+v", got, *tt.call)
			}
		})
	}
	if w := do(e.h, "POST", "/api/v1/actions/act-1/delete", operatorToken, same); w.Code != 404 {
		t.Errorf("unknown verb: %d", w.Code)
	}
	if w := do(e.h, "GET", "/api/v1/actions/act-1/approve", operatorToken, same); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET approve: %d; want 405", w.Code)
	}

	// Without a controller: 503, audited.
	noop := newEnv(t, func(_ *Config, d *Deps) { d.Operator = nil })
	if w := do(noop.h, "POST", "/api/v1/actions/act-1/approve", operatorToken, same); w.Code != 503 {
		t.Errorf("no operator: %d; want 503", w.Code)
	}
	if rows := noop.audit.Actions(); len(rows) != 1 || rows[0].State != "refused" || !strings.Contains(rows[0].Reason, "no respond stage") {
		t.Errorf("no operator audit: %+v", rows)
	}
}

func TestAuthModeNone(t *testing.T) {
	e := newEnv(t, func(c *Config, _ *Deps) { c.Auth = AuthConfig{Mode: AuthNone} })
	if w := do(e.h, "GET", "/api/v1/detections", "", nil); w.Code != 200 {
		t.Errorf("mode none, detections: %d", w.Code)
	}
	w := do(e.h, "POST", "/api/v1/actions/act-1/approve", "", http.Header{CSRFHeader: {"1"}})
	if w.Code != 200 {
		t.Errorf("mode none, approve: %d %s", w.Code, w.Body)
	}
	// CSRF still applies.
	if w := do(e.h, "POST", "/api/v1/actions/act-1/approve", "", nil); w.Code != 403 {
		t.Errorf("mode none, approve without the CSRF header: %d; want 403", w.Code)
	}
	rows := e.audit.Actions()
	if len(rows) != 2 || rows[0].Actor != "anonymous" || rows[0].State != "promoted" || rows[1].State != "refused" {
		t.Errorf("audit %+v", rows)
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct{ path, token string }{
		{"/", ""}, {"/ui/app.js", ""}, {"/healthz", ""}, {"/api/v1/detections", viewerToken}, {"/api/v1/detections", ""}, {"/metrics", viewerToken}, {"/nope", ""},
	} {
		w := do(e.h, "GET", tc.path, tc.token, nil)
		h := w.Header()
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q", tc.path, csp)
		}
		for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"} {
			if h.Get(k) != v {
				t.Errorf("%s: %s = %q, want %q", tc.path, k, h.Get(k), v)
			}
		}
	}
	if ct := do(e.h, "GET", "/ui/app.js", "", nil).Header().Get("Content-Type"); !strings.Contains(ct, "javascript") {
		t.Errorf("app.js Content-Type %q", ct)
	}
	// No inline script or handler in the page: the CSP would block it,
	// and the page must not need it.
	page := do(e.h, "GET", "/", "", nil).Body.String()
	lower := strings.ToLower(page)
	for i := 0; ; {
		j := strings.Index(lower[i:], "<script")
		if j < 0 {
			break
		}
		tag := lower[i+j : i+j+strings.Index(lower[i+j:], ">")]
		if !strings.Contains(tag, "src=") || !strings.HasPrefix(lower[i+j+len(tag):], "></script>") {
			t.Errorf("inline script in the page: %s", tag)
		}
		i += j + len(tag)
	}
	for _, bad := range []string{" onclick=", " onload=", " onerror=", " style=", "javascript:"} {
		if strings.Contains(lower, bad) {
			t.Errorf("the page has %q", bad)
		}
	}
}

func TestJSONEndpoints(t *testing.T) {
	e := newEnv(t, nil)
	get := func(path string, v any) string {
		t.Helper()
		w := do(e.h, "GET", path, viewerToken, nil)
		if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
			t.Fatalf("%s: %d %s %q", path, w.Code, w.Header().Get("Content-Type"), w.Body)
		}
		if err := json.Unmarshal(w.Body.Bytes(), v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return w.Body.String()
	}

	var dets struct{ Detections []detectionJSON }
	raw := get("/api/v1/detections?limit=1", &dets)
	if len(dets.Detections) != 1 || dets.Detections[0].ID != "det-1" || dets.Detections[0].Source.Workload != "web" || dets.Detections[0].Kind != "credential_stuffing" {
		t.Fatalf("detections %+v", dets)
	}
	var ev struct{ Summary string }
	if err := json.Unmarshal(dets.Detections[0].Evidence, &ev); err != nil || ev.Summary != "credential stuffing on "+hostile {
		t.Errorf("evidence %s: %+v %v", dets.Detections[0].Evidence, ev, err)
	}
	if strings.Contains(raw, "<img") {
		t.Errorf("telemetry unescaped in JSON: %s", raw)
	}
	get("/api/v1/detections", &dets)
	if len(dets.Detections) != 2 {
		t.Errorf("detections: %d, want 2", len(dets.Detections))
	}
	for _, bad := range []string{"?limit=0", "?limit=x", "?limit=100000"} {
		if w := do(e.h, "GET", "/api/v1/detections"+bad, viewerToken, nil); w.Code != 400 {
			t.Errorf("detections%s: %d, want 400", bad, w.Code)
		}
	}

	var acts struct{ Actions []actionJSON }
	get("/api/v1/actions", &acts)
	if len(acts.Actions) != 1 || acts.Actions[0].ID != "act-1" || acts.Actions[0].State != "applied" || acts.Actions[0].ExpiresAt != nil {
		t.Errorf("actions %+v", acts)
	}

	var edges struct{ Edges []edgeJSON }
	get("/api/v1/edges", &edges)
	if len(edges.Edges) != 4 {
		t.Fatalf("edges %+v; want 4", edges)
	}
	anomalous := 0
	for _, ed := range edges.Edges {
		isWeb := ed.Source.Workload == "web" && ed.Destination.Workload == "cart"
		if ed.Anomalous != isWeb {
			t.Errorf("edge %+v -> %+v anomalous %v", ed.Source, ed.Destination, ed.Anomalous)
		}
		if ed.Anomalous {
			anomalous++
			if ed.Requests != 7 || ed.Responses401 != 7 || len(ed.Detections) != 1 || ed.Detections[0] != "det-1" {
				t.Errorf("anomalous edge %+v", ed)
			}
		}
	}
	if anomalous != 1 {
		t.Errorf("%d anomalous edges, want 1", anomalous)
	}
	get("/api/v1/edges?since=1m", &edges)
	if len(edges.Edges) != 0 {
		t.Errorf("edges since 1m: %+v; the flows are 2 minutes old", edges.Edges)
	}
	for _, bad := range []string{"?since=x", "?since=-1m", "?since=48h"} {
		if w := do(e.h, "GET", "/api/v1/edges"+bad, viewerToken, nil); w.Code != 400 {
			t.Errorf("edges%s: %d, want 400", bad, w.Code)
		}
	}
}

// failingStore fails every read.
type failingStore struct{}

func (failingStore) RecentDetections(context.Context, int) ([]storage.DetectionRow, error) {
	return nil, errors.New("clickhouse://user:hunter2@db down")
}
func (failingStore) RecentActions(context.Context, int) ([]storage.ActionRow, error) {
	return nil, errors.New("clickhouse://user:hunter2@db down")
}
func (failingStore) EdgeSummary(context.Context, time.Time) ([]storage.EdgeSummary, error) {
	return nil, errors.New("clickhouse://user:hunter2@db down")
}

func TestStoreErrorsStayInTheLog(t *testing.T) {
	e := newEnv(t, func(_ *Config, d *Deps) { d.Store = failingStore{} })
	for _, path := range []string{"/api/v1/detections", "/api/v1/actions", "/api/v1/edges"} {
		w := do(e.h, "GET", path, viewerToken, nil)
		if w.Code != http.StatusBadGateway || strings.Contains(w.Body.String(), "hunter2") {
			t.Errorf("%s: %d %s; want 502 without the store's error", path, w.Code, w.Body)
		}
	}
}

func TestRunServesAndShutsDown(t *testing.T) {
	e := newEnv(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Errorf("/healthz: %d %q", resp.StatusCode, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve after cancel: %v", err)
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		t.Error("still serving after shutdown")
	}
	// A port in use is an error naming the key.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	e2 := newEnv(t, func(c *Config, _ *Deps) { c.Listen = busy.Addr().String() })
	if err := e2.srv.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "server.listen") {
		t.Errorf("Run on a busy port: %v", err)
	}
}

func TestTLSListener(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "meshguard"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *Config, _ *Deps) { c.TLS = TLSConfig{CertFile: certFile, KeyFile: keyFile} })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()
	pool := x509.NewCertPool()
	cert, _ := x509.ParseCertificate(der)
	pool.AddCert(cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("GET", "https://"+ln.Addr().String()+"/api/v1/detections", nil)
	req.Header.Set("Authorization", "Bearer "+viewerToken)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Errorf("HTTPS: %d, TLS %v, HSTS %q", resp.StatusCode, resp.TLS != nil, resp.Header.Get("Strict-Transport-Security"))
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		// Go's TLS server answers plain HTTP with a 400; either way no data.
		t.Log("plain HTTP to the TLS port got an answer (Go sends 400)")
	}
}
