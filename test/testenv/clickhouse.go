package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// ClickHouseAddr returns the native-protocol address (host:port) of the
// test ClickHouse server: modern ClickHouse (26.7, test/infra/chserver.sh).
func ClickHouseAddr(t testing.TB) string {
	t.Helper()
	return locate(t, clickhouseServer)
}

// ClickHouse18Addr returns the native-protocol address of the shared
// Debian ClickHouse 18.16 (test/infra/clickhouse.sh), the oldest release
// meshguard supports, for tests that prove the legacy schema variant.
func ClickHouse18Addr(t testing.TB) string {
	t.Helper()
	return locate(t, clickhouse18Server)
}

// ClickHouse returns a connection to the test server (modern ClickHouse)
// on a fresh database of its own, dropped when the test ends, and that
// database's name.
func ClickHouse(t testing.TB) (driver.Conn, string) {
	t.Helper()
	return freshDatabase(t, clickhouseServer, ClickHouseAddr(t))
}

// ClickHouse18 is ClickHouse on the shared Debian 18.16 server.
func ClickHouse18(t testing.TB) (driver.Conn, string) {
	t.Helper()
	return freshDatabase(t, clickhouse18Server, ClickHouse18Addr(t))
}

func freshDatabase(t testing.TB, s server, addr string) (driver.Conn, string) {
	t.Helper()
	// Long enough for an engine restart (chserver.sh: about 10-30 s).
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	admin, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: 5 * time.Second})
	if err != nil {
		unavailable(t, s, "open %s: %v", addr, err)
	}
	defer admin.Close()
	if err := pingThroughRestart(ctx, admin); err != nil {
		unavailable(t, s, "ping %s: %v", addr, err)
	}
	db := uniqueName("test_")
	if err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatalf("clickhouse: create database %s: %v", db, err)
	}
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{addr},
		Auth:        clickhouse.Auth{Database: db},
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatalf("clickhouse: open %s/%s: %v", addr, db, err)
	}
	t.Cleanup(func() {
		conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		drop, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}})
		if err != nil {
			t.Logf("clickhouse: drop database %s: %v", db, err)
			return
		}
		defer drop.Close()
		if err := drop.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
			t.Logf("clickhouse: drop database %s: %v", db, err)
		}
	})
	return conn, db
}

// pingThroughRestart pings until the server answers or ctx ends. chDB's
// engine (the tests' ClickHouse 26.7) aborts when a client's connection
// is reset under it, whoever the client was, and chserver.sh restarts it
// within seconds: a test that starts in those seconds waits for it
// instead of failing.
func pingThroughRestart(ctx context.Context, conn driver.Conn) error {
	for {
		err := conn.Ping(ctx)
		if err == nil || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
	}
}
