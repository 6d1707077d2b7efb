package storage

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/meshguard/meshguard/test/testenv"
)

// TestMigrateOnEachServer migrates and stores through the native protocol
// (clickhouse-go) on both servers meshguard is tested on: the modern one
// (26.7, the tests' default) gets the modern variant (LowCardinality, the
// retention TTL), the oldest supported (18.16) the legacy one, and flows
// read back the same from both.
func TestMigrateOnEachServer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		open   func(testing.TB) (driver.Conn, string)
		addr   func(testing.TB) string
		modern bool
	}{
		{"modern", testenv.ClickHouse, testenv.ClickHouseAddr, true},
		{"18.16", testenv.ClickHouse18, testenv.ClickHouse18Addr, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, db := tc.open(t)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cfg := DefaultClickHouseConfig()
			cfg.Addr, cfg.Database, cfg.RetentionDays = []string{tc.addr(t)}, db, 30
			store, err := NewClickHouse(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			if err := store.Migrate(ctx); err != nil {
				t.Fatal(err)
			}

			var recorded string
			if err := conn.QueryRow(ctx, "SELECT any(server_version) FROM "+db+".schema_migrations").Scan(&recorded); err != nil {
				t.Fatal(err)
			}
			v, err := ParseServerVersion(recorded)
			if err != nil || v.Modern() != tc.modern {
				t.Fatalf("schema_migrations records server %q (%v); want modern=%v", recorded, err, tc.modern)
			}
			var colType, engine string
			if err := conn.QueryRow(ctx, "SELECT type FROM system.columns WHERE database = ? AND table = 'flows' AND name = 'source_workload'", db).Scan(&colType); err != nil {
				t.Fatal(err)
			}
			if err := conn.QueryRow(ctx, "SELECT engine_full FROM system.tables WHERE database = ? AND name = 'flows'", db).Scan(&engine); err != nil {
				t.Fatal(err)
			}
			if got := strings.HasPrefix(colType, "LowCardinality("); got != tc.modern {
				t.Errorf("flows.source_workload is %s on %s; want LowCardinality only on modern servers", colType, recorded)
			}
			if got := strings.Contains(engine, "TTL "); got != tc.modern {
				t.Errorf("flows engine on %s: %s; want a TTL only on modern servers", recorded, engine)
			}

			flows := testFlows(40, testenv.Recent())
			if err := store.ConsumeFlows(ctx, flows); err != nil {
				t.Fatal(err)
			}
			got := readFlows(t, store)
			if len(got) != len(flows) || !reflect.DeepEqual(got[0], flows[0]) || !reflect.DeepEqual(got[39], flows[39]) {
				t.Fatalf("on %s read back %d flows, want %d equal to those stored", recorded, len(got), len(flows))
			}
			// baselines.released (migration 009) is an added column on both.
			if err := store.ReleaseBaseline(ctx, 7, []byte("state")); err != nil {
				t.Fatal(err)
			}
			if b, err := store.LatestBaselines(ctx); err != nil || !b[7].Released || string(b[7].State) != "state" {
				t.Fatalf("on %s a released baseline reads back as %+v (%v)", recorded, b[7], err)
			}
		})
	}
}
