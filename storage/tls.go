package storage

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/internal/secret"
)

// ClickHouseTLS is `clickhouse.tls`: TLS to the server's secure native
// port (tcp_port_secure, 9440 by default). It is on when Enabled is true
// or any other key is set (a DSN with ?secure=true turns it on as well);
// with no CAFile the system roots verify the server.
type ClickHouseTLS struct {
	Enabled bool `yaml:"enabled"`
	// CAFile: PEM bundle of the CAs that signed the server's certificate.
	CAFile string `yaml:"ca_file"`
	// ServerName overrides the name checked against the certificate
	// (default: the host of the address).
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any certificate. For tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// On reports whether TLS is configured by these keys.
func (t *ClickHouseTLS) On() bool {
	return t.Enabled || t.CAFile != "" || t.ServerName != "" || t.InsecureSkipVerify
}

// applySecurity sets opts' credentials and TLS from c (opts came from the
// DSN or the addresses) and reports problems with their keys, through bad.
func (c *ClickHouseConfig) applySecurity(opts *clickhouse.Options, bad func(key, format string, args ...any)) {
	pass := c.Password
	switch {
	case c.Password != "" && c.PasswordFile != "":
		bad("password", "set clickhouse.password or clickhouse.password_file, not both")
	case c.PasswordFile != "":
		p, err := secret.ReadFile(c.PasswordFile)
		if err != nil {
			bad("password_file", "%v", err)
		}
		pass = p
	}
	if c.Username != "" || pass != "" {
		if c.DSN != "" && (opts.Auth.Username != "" || opts.Auth.Password != "") {
			bad("username", "the dsn holds credentials too; set them in one place (clickhouse.username and clickhouse.password[_file], or the dsn)")
		}
		opts.Auth.Username, opts.Auth.Password = c.Username, pass
		if opts.Auth.Username == "" {
			opts.Auth.Username = "default"
		}
	}

	if !c.TLS.On() {
		return
	}
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.TLS.ServerName,
		InsecureSkipVerify: c.TLS.InsecureSkipVerify, //nolint:gosec // opt-in, documented as test-only
	}
	if c.TLS.CAFile != "" {
		pem, err := os.ReadFile(c.TLS.CAFile)
		if err != nil {
			bad("tls.ca_file", "%v", err)
		} else {
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				bad("tls.ca_file", "%s holds no PEM certificate", c.TLS.CAFile)
			}
		}
	}
	opts.TLS = tc
}

// explain wraps err, met talking to the server, with its address and,
// when the cause is a setting (credentials, TLS), the key to fix.
// Authentication failures are Permanent: retrying with the same password
// cannot help, and an operator must hear of it at once.
func (c *ClickHouse) explain(err error) error {
	if err == nil {
		return nil
	}
	where := strings.Join(c.addrs, ",")
	var exc *clickhouse.Exception
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var recordHeader tls.RecordHeaderError
	switch {
	case errors.As(err, &exc) && authCodes[exc.Code]:
		return consumer.Permanent(fmt.Errorf("clickhouse %s: %w (the server refused user %q: check clickhouse.password (or clickhouse.password_file, MESHGUARD_CLICKHOUSE_PASSWORD) and clickhouse.username, or the dsn's credentials)", where, err, c.user))
	case errors.As(err, &unknownCA):
		return fmt.Errorf("clickhouse %s: %w (the server's certificate is not signed by a CA in clickhouse.tls.ca_file: check clickhouse.tls.ca_file)", where, err)
	case errors.As(err, &hostname):
		return fmt.Errorf("clickhouse %s: %w (the certificate does not name this address: set clickhouse.tls.server_name)", where, err)
	case errors.As(err, &recordHeader):
		return fmt.Errorf("clickhouse %s: %w (this port does not speak TLS: use the server's secure port (tcp_port_secure) or turn clickhouse.tls off)", where, err)
	}
	return err
}

// authCodes are the server's error codes for refused credentials.
var authCodes = map[int32]bool{
	192: true, // UNKNOWN_USER
	193: true, // WRONG_PASSWORD
	194: true, // REQUIRED_PASSWORD
	195: true, // IP_ADDRESS_NOT_ALLOWED
	516: true, // AUTHENTICATION_FAILED (modern servers say only this)
}

// RedactDSN hides the password in a DSN before it is printed or logged.
func RedactDSN(dsn string) string { return secret.RedactURL(dsn) }

// String shows the config with the password (in its key or in the DSN)
// redacted, so that printing or logging it (%v, %+v) leaks nothing.
func (c ClickHouseConfig) String() string {
	return fmt.Sprintf("{dsn:%s addr:%v username:%s password:%s password_file:%s database:%s tls:%+v dial_timeout:%s query_timeout:%s retention_days:%d}",
		RedactDSN(c.DSN), c.Addr, c.Username, secret.Redact(c.Password), c.PasswordFile, c.Database, c.TLS,
		c.DialTimeout, c.QueryTimeout, c.RetentionDays)
}

// GoString keeps %#v from printing the password.
func (c ClickHouseConfig) GoString() string { return "storage.ClickHouseConfig" + c.String() }

// LogValue makes slog print the config redacted.
func (c ClickHouseConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("dsn", RedactDSN(c.DSN)),
		slog.Any("addr", c.Addr),
		slog.String("username", c.Username),
		slog.String("password", secret.Redact(c.Password)),
		slog.String("password_file", c.PasswordFile),
		slog.String("database", c.Database),
		slog.Bool("tls", c.TLS.On()),
	)
}

// MarshalJSON redacts too: slog's JSON handler and any API that shows the
// config encode it as JSON.
func (c ClickHouseConfig) MarshalJSON() ([]byte, error) {
	type plain ClickHouseConfig // no methods: no recursion
	p := plain(c)
	p.DSN, p.Password = RedactDSN(c.DSN), secret.Redact(c.Password)
	return json.Marshal(p)
}
