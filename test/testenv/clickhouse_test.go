package testenv_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/meshguard/meshguard/test/testenv"
)

// TestClickHouseServers: the tests' ClickHouse is modern (26.x) on the
// shared server and on a private one, which keeps its data across a
// restart at the same address; a private server with a password is
// Debian's 18.16, and the shared 18.16 answers under its own key.
func TestClickHouseServers(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no private ClickHouse")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	version := func(t *testing.T, conn driver.Conn) string {
		t.Helper()
		var v string
		if err := conn.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	open := func(t *testing.T, addr string, auth clickhouse.Auth) driver.Conn {
		t.Helper()
		conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: auth, DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}

	shared, _ := testenv.ClickHouse(t)
	if v := version(t, shared); !strings.HasPrefix(v, "26.") {
		t.Errorf("shared test ClickHouse is %s, want 26.x (chserver)", v)
	}
	old, _ := testenv.ClickHouse18(t)
	if v := version(t, old); !strings.HasPrefix(v, "18.16.") {
		t.Errorf("ClickHouse18 is %s, want 18.16", v)
	}

	own := testenv.OwnClickHouse(t)
	addr := own.Get("MESHGUARD_TEST_CLICKHOUSE_ADDR")
	conn := open(t, addr, clickhouse.Auth{})
	if v := version(t, conn); !strings.HasPrefix(v, "26.") || own.Get("MESHGUARD_TEST_CLICKHOUSE_VERSION") != v {
		t.Errorf("private ClickHouse is %s (env file says %q), want 26.x", v, own.Get("MESHGUARD_TEST_CLICKHOUSE_VERSION"))
	}
	for _, q := range []string{"CREATE TABLE default.kept (x UInt32) ENGINE = MergeTree ORDER BY x", "INSERT INTO default.kept VALUES (7)"} {
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	own.Stop(t)
	own.Start(t)
	if got := own.Get("MESHGUARD_TEST_CLICKHOUSE_ADDR"); got != addr {
		t.Fatalf("restarted at %s, want the same address %s", got, addr)
	}
	var x uint32
	if err := open(t, addr, clickhouse.Auth{}).QueryRow(ctx, "SELECT x FROM default.kept").Scan(&x); err != nil || x != 7 {
		t.Fatalf("after restart: x=%d, %v; want the row kept", x, err)
	}

	const pw = "pw-7f3a"
	locked := testenv.OwnClickHouse(t, testenv.WithPassword(pw))
	if locked.Get("MESHGUARD_TEST_CLICKHOUSE18_USER") != "meshguard" {
		t.Fatalf("private server with a password has no user meshguard: %v", locked)
	}
	c := open(t, locked.Get("MESHGUARD_TEST_CLICKHOUSE18_ADDR"), clickhouse.Auth{Username: "meshguard", Password: pw})
	if v := version(t, c); !strings.HasPrefix(v, "18.16.") {
		t.Errorf("private server with a password is %s, want 18.16", v)
	}
}
