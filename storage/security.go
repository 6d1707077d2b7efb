package storage

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"

	"github.com/ClickHouse/clickhouse-go/v2"

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
