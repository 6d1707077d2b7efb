package storage

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/test/testenv"
)

var (
	legacy = ServerVersion{18, 16, 1}
	modern = ServerVersion{26, 7, 2}
)

func TestParseServerVersion(t *testing.T) {
	for in, want := range map[string]ServerVersion{
		"18.16.1":    {18, 16, 1},
		"26.7.2.1":   {26, 7, 2},
		"24.8":       {24, 8, 0},
		"21.8.15.7":  {21, 8, 15},
		"23.3.1.dev": {23, 3, 1},
	} {
		got, err := ParseServerVersion(in)
		if err != nil || got != want {
			t.Errorf("ParseServerVersion(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "26", "x.y", "26.x"} {
		if _, err := ParseServerVersion(in); err == nil {
			t.Errorf("ParseServerVersion(%q) accepted", in)
		}
	}
	for v, want := range map[ServerVersion]bool{legacy: false, {21, 8, 0}: false, {23, 12, 0}: false, {24, 1, 0}: true, modern: true} {
		if v.Modern() != want {
			t.Errorf("%v.Modern() = %v", v, !want)
		}
	}
}

// idempotentStatement is the only shape a migration statement may take:
// running it again, or concurrently, must be a no-op (see Migrate). An
// ADD COLUMN without IF NOT EXISTS (18.16 lacks it) is one because
// execIdempotent takes "already exists" as done.
var idempotentStatement = regexp.MustCompile(`^(CREATE (TABLE|MATERIALIZED VIEW|DATABASE) IF NOT EXISTS |ALTER TABLE [a-z_]+\.[a-z_]+ ADD COLUMN (IF NOT EXISTS )?[a-z_]+ )`)

func TestRenderMigrations(t *testing.T) {
	old, err := RenderMigrations(legacy, "meshguard")
	if err != nil {
		t.Fatal(err)
	}
	cur, err := RenderMigrations(modern, "meshguard")
	if err != nil {
		t.Fatal(err)
	}
	if len(old) == 0 || len(old) != len(cur) {
		t.Fatalf("%d legacy and %d modern migrations", len(old), len(cur))
	}
	for i, m := range old {
		if m.Version != i+1 {
			t.Errorf("migration %d has version %d: versions must count up from 1 without gaps", i, m.Version)
		}
		if m.Checksum != cur[i].Checksum || len(m.Statements) != len(cur[i].Statements) {
			t.Errorf("migration %d renders different statements per server", m.Version)
		}
		for j, s := range append(m.Statements, cur[i].Statements...) {
			if !idempotentStatement.MatchString(s) {
				t.Errorf("%03d_%s statement %d is not idempotent:\n%s", m.Version, m.Name, j+1, s)
			}
			if strings.Contains(s, "{{") || strings.HasSuffix(s, ";") || strings.Contains(s, "--") {
				t.Errorf("%03d_%s statement %d badly rendered:\n%s", m.Version, m.Name, j+1, s)
			}
		}
		for _, s := range m.Statements {
			for _, modernOnly := range []string{"CODEC", "TTL", "ttl_", "DateTime64", "LowCardinality"} {
				if strings.Contains(s, modernOnly) {
					t.Errorf("legacy %03d_%s uses %s, which 18.16 lacks", m.Version, m.Name, modernOnly)
				}
			}
		}
	}
	all := func(ms []Migration) string {
		var b strings.Builder
		for _, m := range ms {
			b.WriteString(strings.Join(m.Statements, "\n"))
		}
		return b.String()
	}
	if s := all(cur); !strings.Contains(s, "CODEC(") || !strings.Contains(s, "ttl_only_drop_parts = 1, materialize_ttl_recalculate_only = 1") || !strings.Contains(s, "LowCardinality(String)") {
		t.Error("modern migrations use no codecs, TTL settings or LowCardinality")
	}
	if s := all(old); !strings.Contains(s, "CREATE TABLE IF NOT EXISTS meshguard.flows (") {
		t.Errorf("flows not created in the named database:\n%s", s)
	}

	for _, bad := range []string{"", "1db", "a-b", "a.b", "x; DROP TABLE y", strings.Repeat("a", 64), "db`"} {
		if _, err := RenderMigrations(modern, bad); err == nil {
			t.Errorf("database name %q accepted", bad)
		}
	}
}

func TestSplitStatements(t *testing.T) {
	got := splitStatements("-- comment;\nCREATE a (\n  x Int8\n);\n\n-- two\nCREATE b\n  ENGINE = x;\nCREATE c")
	want := []string{"CREATE a (\n  x Int8\n)", "CREATE b\n  ENGINE = x", "CREATE c"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("splitStatements = %q, want %q", got, want)
	}
}

// tables returns name -> engine of db's tables.
func tables(t *testing.T, conn driver.Conn, db string) map[string]string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT name, engine FROM system.tables WHERE database = ?", db)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]string{}
	for rows.Next() {
		var name, engine string
		if err := rows.Scan(&name, &engine); err != nil {
			t.Fatal(err)
		}
		got[name] = engine
	}
	return got
}

var wantTables = map[string]string{
	"schema_migrations":  "MergeTree",
	"flows":              "MergeTree",
	"flows_by_source":    "MergeTree",
	"flows_by_source_mv": "MaterializedView",
	"edge_minute":        "AggregatingMergeTree",
	"edge_minute_mv":     "MaterializedView",
	"edge_tls_hour":      "AggregatingMergeTree",
	"edge_tls_hour_mv":   "MaterializedView",
	"edge_tls_minute":    "AggregatingMergeTree",
	"edge_tls_minute_mv": "MaterializedView",
	"detections":         "ReplacingMergeTree",
	"actions":            "MergeTree",
	"baselines":          "ReplacingMergeTree",
}

func TestMigrateClickHouse(t *testing.T) {
	conn, db := testenv.ClickHouse(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	for run := 1; run <= 2; run++ {
		if err := Migrate(ctx, conn, MigrateOptions{Database: db, RetentionDays: 7}); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
	}
	if got := tables(t, conn, db); fmt.Sprint(got) != fmt.Sprint(wantTables) {
		t.Fatalf("tables after migrating twice:\n got %v\nwant %v", got, wantTables)
	}
	migrations, _ := RenderMigrations(legacy, db)
	var rows, versions uint64
	if err := conn.QueryRow(ctx, "SELECT count(), uniqExact(version) FROM "+db+".schema_migrations").Scan(&rows, &versions); err != nil {
		t.Fatal(err)
	}
	if rows != uint64(len(migrations)) || versions != uint64(len(migrations)) {
		t.Fatalf("schema_migrations holds %d rows of %d versions, want %d of each (applied once)", rows, versions, len(migrations))
	}
}

func TestMigrateConcurrently(t *testing.T) {
	conn, db := testenv.ClickHouse(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Four processes starting at once: each its own connection.
	const n = 4
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		store := newStore(t, db, 7)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = store.Migrate(ctx)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("migrate %d: %v", i, err)
		}
	}
	if got := tables(t, conn, db); fmt.Sprint(got) != fmt.Sprint(wantTables) {
		t.Fatalf("tables after concurrent migrations:\n got %v\nwant %v", got, wantTables)
	}
	// The schema works: a flow reaches both views.
	store := newStore(t, db, 7)
	if err := store.ConsumeFlows(ctx, testFlows(10, time.Now())); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"flows", "flows_by_source"} {
		var c uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+"."+table).Scan(&c); err != nil || c != 10 {
			t.Errorf("%s holds %d rows (err %v), want 10: a view was created twice or not at all", table, c, err)
		}
	}
}

func TestRetentionStatements(t *testing.T) {
	none := map[string]string{"flows": "MergeTree PARTITION BY toYYYYMMDD(ts) ORDER BY x SETTINGS index_granularity = 8192 "}
	got := retentionStatements("db", 30, none)
	if len(got) != len(retentionTables) || got[0] != "ALTER TABLE db.flows MODIFY TTL ts + toIntervalDay(30)" {
		t.Fatalf("retention 30 on tables without TTL: %q", got)
	}
	set := map[string]string{}
	for _, tt := range retentionTables {
		set[tt.table] = "MergeTree ORDER BY x TTL " + retentionTTL(tt.column, 30) + " SETTINGS index_granularity = 8192 "
	}
	if got := retentionStatements("db", 30, set); len(got) != 0 {
		t.Errorf("TTL already right, still: %q", got)
	}
	if got := retentionStatements("db", 7, set); len(got) != len(retentionTables) || !strings.Contains(got[2], "edge_minute MODIFY TTL minute + toIntervalDay(7)") {
		t.Errorf("retention 30 -> 7: %q", got)
	}
	if got := retentionStatements("db", 0, set); len(got) != len(retentionTables) || got[0] != "ALTER TABLE db.flows REMOVE TTL" {
		t.Errorf("retention 30 -> forever: %q", got)
	}
	if got := retentionStatements("db", 0, none); len(got) != 0 {
		t.Errorf("forever on tables without TTL: %q", got)
	}
}

func TestPartitionExpired(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		id   string
		days int
		want bool
	}{
		{"20261122", 1, false},
		{"20261121", 1, false}, // ends 2026-11-22 00:00, cutoff 2026-11-21 10:00
		{"20261120", 1, true},  // ends 2026-11-21 00:00, before the cutoff
		{"20261023", 30, false},
		{"20261022", 30, true},
		{"19700101", 30, true},
		{"all", 1, false},
		{"202611", 1, false},
		{"2026112x", 1, false},
	} {
		if got := partitionExpired(tt.id, now, tt.days); got != tt.want {
			t.Errorf("partitionExpired(%q, %d days) = %v", tt.id, tt.days, got)
		}
	}
}

func TestMigrateErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, db := testenv.ClickHouse(t)
	if err := Migrate(ctx, conn, MigrateOptions{Database: "no-such;db"}); !consumer.IsPermanent(err) {
		t.Errorf("invalid database name: %v, want permanent", err)
	}
	if err := Migrate(ctx, conn, MigrateOptions{Database: db, RetentionDays: -1}); !consumer.IsPermanent(err) {
		t.Errorf("negative retention: %v, want permanent", err)
	}

	// On 18.16: the modern test server (chserver) has no users, and a
	// failed login there ends the whole server.
	cfg := DefaultClickHouseConfig()
	cfg.Addr, cfg.Database, cfg.Username, cfg.Password = []string{testenv.ClickHouse18Addr(t)}, db, "intruder", "guess"
	store, err := NewClickHouse(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); !consumer.IsPermanent(err) {
		t.Errorf("unknown user: %v, want permanent (waiting cannot fix credentials)", err)
	} else {
		t.Log(err)
	}
	// A writer keeps its batch instead: someone may fix the credentials.
	if err := store.ConsumeFlows(ctx, testFlows(1, time.Now())); err == nil || consumer.IsPermanent(err) {
		t.Errorf("insert as an unknown user: %v, want retryable", err)
	}

	cfg.Addr, cfg.Username, cfg.Password, cfg.DialTimeout = []string{unusedAddr(t)}, "", "", time.Second
	down, err := NewClickHouse(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	if err := down.Migrate(ctx); err == nil || consumer.IsPermanent(err) {
		t.Errorf("server down: %v, want retryable", err)
	}
}
