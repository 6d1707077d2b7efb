package storage

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/test/testenv"
)

// TestClickHouseCredentialsAndTLS runs against a private ClickHouse that
// requires a password and also listens with TLS (certificate from a CA
// made here): the right credentials, from config keys, a password file or
// the DSN, over plain TCP or TLS, migrate and ping; a wrong or missing
// password fails Migrate at once, Permanent, naming the server and
// clickhouse.password and never quoting a password; a wrong CA names
// clickhouse.tls.ca_file.
func TestClickHouseCredentialsAndTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no private ClickHouse")
	}
	const password = "right-pw-4e1c"
	ca := testenv.NewCA(t, "clickhouse")
	cert := ca.Server("127.0.0.1", "localhost")
	ch := testenv.OwnClickHouse(t, testenv.WithPassword(password), testenv.WithTLS(cert.CertFile, cert.KeyFile))
	addr := ch.Get("MESHGUARD_TEST_CLICKHOUSE18_ADDR")
	secure := ch.Get("MESHGUARD_TEST_CLICKHOUSE18_SECURE_ADDR")
	if ch.Get("MESHGUARD_TEST_CLICKHOUSE18_USER") != "meshguard" || secure == "" {
		t.Fatalf("private server without the password user or TLS port: %v", ch)
	}
	pwFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	otherCA := testenv.NewCA(t, "other")

	base := func(a string) ClickHouseConfig {
		c := DefaultClickHouseConfig()
		c.Addr = []string{a}
		c.Database = "auth_test"
		c.DialTimeout = 5 * time.Second
		c.QueryTimeout = 20 * time.Second
		return c
	}
	for _, tc := range []struct {
		name    string
		cfg     func() ClickHouseConfig
		want    string // "" means success
		perm    bool   // the error must be Permanent
		mention string // what the error must also name
	}{
		{"keys", func() ClickHouseConfig { c := base(addr); c.Username, c.Password = "meshguard", password; return c }, "", false, ""},
		{"password file", func() ClickHouseConfig { c := base(addr); c.Username, c.PasswordFile = "meshguard", pwFile; return c }, "", false, ""},
		{"default user", func() ClickHouseConfig { c := base(addr); c.Password = password; return c }, "", false, ""},
		{"dsn", func() ClickHouseConfig {
			c := base(addr)
			c.Addr, c.Database = nil, ""
			c.DSN = fmt.Sprintf("clickhouse://meshguard:%s@%s/auth_test", password, addr)
			return c
		}, "", false, ""},
		{"tls", func() ClickHouseConfig {
			c := base(secure)
			c.Username, c.PasswordFile, c.TLS.CAFile = "meshguard", pwFile, ca.CAFile
			return c
		}, "", false, ""},
		{"tls dsn", func() ClickHouseConfig {
			c := base(secure)
			c.Addr, c.Database = nil, ""
			c.DSN = fmt.Sprintf("clickhouse://meshguard:%s@%s/auth_test?secure=true", password, secure)
			c.TLS.CAFile = ca.CAFile
			return c
		}, "", false, ""},
		{"wrong password", func() ClickHouseConfig {
			c := base(addr)
			c.Username, c.Password = "meshguard", "wrong-pw-77"
			return c
		},
			"clickhouse.password", true, addr},
		{"no password", func() ClickHouseConfig { c := base(addr); c.Username = "meshguard"; return c },
			"clickhouse.password", true, addr},
		{"wrong password in dsn", func() ClickHouseConfig {
			c := base(addr)
			c.Addr, c.Database = nil, ""
			c.DSN = fmt.Sprintf("clickhouse://meshguard:wrong-pw-77@%s/auth_test", addr)
			return c
		}, "clickhouse.password", true, addr},
		{"wrong CA", func() ClickHouseConfig {
			c := base(secure)
			c.Username, c.Password, c.TLS.CAFile = "meshguard", password, otherCA.CAFile
			return c
		}, "clickhouse.tls.ca_file", false, secure},
		{"wrong server name", func() ClickHouseConfig {
			c := base(secure)
			c.Username, c.Password, c.TLS.CAFile, c.TLS.ServerName = "meshguard", password, ca.CAFile, "db.example"
			return c
		}, "clickhouse.tls.server_name", false, secure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store, err := NewClickHouse(tc.cfg())
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			err = store.Migrate(ctx)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("migrate: %v", err)
				}
				if err := store.Ping(ctx); err != nil {
					t.Fatalf("ping: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("the server accepted it")
			}
			t.Logf("error: %v", err)
			msg := err.Error()
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, tc.mention) {
				t.Fatalf("error %q; want it to name %s and %s", msg, tc.mention, tc.want)
			}
			if tc.perm && !consumer.IsPermanent(err) {
				t.Fatalf("error %q is retryable; a refused password must fail Migrate at once", msg)
			}
			if strings.Contains(msg, password) || strings.Contains(msg, "wrong-pw-77") {
				t.Fatalf("error %q quotes a password", msg)
			}
		})
	}
}

func TestClickHouseSecurityValidate(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		edit func(c *ClickHouseConfig)
		want string
	}{
		{"both password and file", func(c *ClickHouseConfig) { c.Password, c.PasswordFile = "p", filepath.Join(dir, "pw") },
			"clickhouse.password: set clickhouse.password or clickhouse.password_file, not both"},
		{"unreadable password file", func(c *ClickHouseConfig) { c.PasswordFile = filepath.Join(dir, "missing") },
			"clickhouse.password_file: open " + filepath.Join(dir, "missing")},
		{"credentials twice", func(c *ClickHouseConfig) {
			c.Addr, c.DSN, c.Username, c.Password = nil, "clickhouse://u:secret-in-dsn@h:9000/db", "u", "p"
		}, "clickhouse.username: the dsn holds credentials too"},
		{"unreadable CA", func(c *ClickHouseConfig) { c.TLS.CAFile = filepath.Join(dir, "ca.pem") },
			"clickhouse.tls.ca_file: open " + filepath.Join(dir, "ca.pem")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultClickHouseConfig()
			c.Addr = []string{"127.0.0.1:9000"}
			tc.edit(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v; want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret-in-dsn") {
				t.Fatalf("error %q quotes the password", err)
			}
		})
	}
	// Credentials from keys complete a DSN that has none.
	c := DefaultClickHouseConfig()
	c.DSN, c.Username, c.Password = "clickhouse://h:9000/db", "u", "p"
	opts, err := c.options()
	if err != nil || opts.Auth.Username != "u" || opts.Auth.Password != "p" {
		t.Fatalf("keys with a DSN without credentials: %v %v", opts.Auth, err)
	}
}

// TestClickHouseConfigRedacted: printing or logging the config shows
// neither the password key nor the DSN's.
func TestClickHouseConfigRedacted(t *testing.T) {
	c := DefaultClickHouseConfig()
	c.DSN = "clickhouse://meshguard:marker-dsn-pw@db:9000/meshguard?dial_timeout=2s"
	c.Password = "marker-key-pw"
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("config", "clickhouse", c)
	slog.New(slog.NewJSONHandler(&b, nil)).Info("config", "clickhouse", c, "nested", struct{ CH ClickHouseConfig }{c})
	out := fmt.Sprintf("%v %+v %#v %s", c, c, c, c) + b.String() + RedactDSN(c.DSN)
	for _, m := range []string{"marker-dsn-pw", "marker-key-pw"} {
		if strings.Contains(out, m) {
			t.Fatalf("%s printed:\n%s", m, out)
		}
	}
	if !strings.Contains(out, "db:9000") {
		t.Fatalf("redaction hid the host too:\n%s", out)
	}
}
