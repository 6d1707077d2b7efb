package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// ClickHouseAddr returns the native-protocol address (host:port) of the
// test ClickHouse server.
func ClickHouseAddr(t testing.TB) string {
	t.Helper()
	return locate(t, clickhouseServer)
}

// ClickHouse returns a connection to the test server on a fresh database
// of its own, dropped when the test ends, and that database's name.
func ClickHouse(t testing.TB) (driver.Conn, string) {
	t.Helper()
	addr := ClickHouseAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	admin, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: 5 * time.Second})
	if err != nil {
		unavailable(t, clickhouseServer, "open %s: %v", addr, err)
	}
	defer admin.Close()
	if err := admin.Ping(ctx); err != nil {
		unavailable(t, clickhouseServer, "ping %s: %v", addr, err)
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
