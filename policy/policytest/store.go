package policytest

import (
	"context"
	"testing"
	"time"

	"github.com/meshguard/meshguard/storage"
	"github.com/meshguard/meshguard/test/testenv"
)

// NewStore returns a store on a fresh, migrated database of the test's
// ClickHouse 26.7, and the database's name; closed when the test ends.
func NewStore(t testing.TB) (*storage.ClickHouse, string) {
	t.Helper()
	_, db := testenv.ClickHouse(t)
	cfg := storage.DefaultClickHouseConfig()
	cfg.Addr, cfg.Database = []string{testenv.ClickHouseAddr(t)}, db
	cfg.QueryTimeout = 3 * time.Minute // the shared servers are slow under load
	store, err := storage.NewClickHouse(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return store, db
}
