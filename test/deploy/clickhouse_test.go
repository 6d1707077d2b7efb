package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/meshguard/meshguard/storage"
	"github.com/meshguard/meshguard/test/testenv"
)

// TestReplicatedSchemaMatchesTheMigrations: deploy/clickhouse/replicated.sql,
// with its replication taken out (chDB has no Keeper), gives the same
// tables, columns, codecs, keys, TTL, settings and views as meshguard's
// own migrations on a modern server; and meshguard's migrations then run
// on it without error, as at meshguard's first start.
func TestReplicatedSchemaMatchesTheMigrations(t *testing.T) {
	run := testenv.CHDB(t)
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "deploy", "clickhouse", "replicated.sql"))
	if err != nil {
		t.Fatal(err)
	}
	replicated := sqlStatements(string(data))
	if len(replicated) < 13 {
		t.Fatalf("%d statements in replicated.sql; want the database, 9 tables and 4 views", len(replicated))
	}
	engine := regexp.MustCompile(`ENGINE = Replicated(\w*MergeTree)\('/clickhouse/tables/\{shard\}/\{database\}/\{table\}', '\{replica\}'(, )?`)
	var rep []string
	for _, s := range replicated {
		if !strings.Contains(s, "ON CLUSTER '{cluster}'") {
			t.Errorf("not ON CLUSTER: %.60s", s)
		}
		if strings.Contains(s, "ENGINE = ") && !strings.Contains(s, "ENGINE = Replicated") {
			t.Errorf("not replicated: %.60s", s)
		}
		s = strings.ReplaceAll(s, " ON CLUSTER '{cluster}'", "")
		s = engine.ReplaceAllString(s, "ENGINE = $1(")
		s = strings.ReplaceAll(s, "MergeTree()", "MergeTree")
		rep = append(rep, renameDB(s, "meshguard", "rep"))
	}
	if out, err := run(rep...); err != nil {
		t.Fatalf("replicated.sql (unreplicated) on ClickHouse 26.7: %v\n%s", err, out)
	}

	v, err := storage.ParseServerVersion("26.7.2")
	if err != nil {
		t.Fatal(err)
	}
	migrate := func(db string) []string {
		ms, err := storage.RenderMigrations(v, db)
		if err != nil {
			t.Fatal(err)
		}
		stmts := []string{"CREATE DATABASE IF NOT EXISTS " + db}
		for _, m := range ms {
			stmts = append(stmts, m.Statements...)
		}
		return stmts
	}
	mig := migrate("mig")
	// Retention as Migrate sets it with clickhouse.retention_days 30.
	for table, col := range map[string]string{"flows": "ts", "flows_by_source": "ts", "edge_minute": "minute",
		"edge_tls_hour": "hour", "edge_tls_minute": "minute"} {
		mig = append(mig, "ALTER TABLE mig."+table+" MODIFY TTL "+col+" + toIntervalDay(30)")
	}
	if out, err := run(mig...); err != nil {
		t.Fatalf("migrations: %v\n%s", err, out)
	}
	describe := func(db string) string {
		out, err := run(
			"SELECT table, name, type, compression_codec, position FROM system.columns WHERE database = '"+db+"' AND table != 'schema_migrations' ORDER BY table, position FORMAT TSV",
			"SELECT name, engine, partition_key, sorting_key, primary_key, replaceAll(engine_full, '"+db+".', 'DB.'), replaceAll(as_select, '"+db+".', 'DB.') FROM system.tables WHERE database = '"+db+"' AND name != 'schema_migrations' ORDER BY name FORMAT TSV",
		)
		if err != nil {
			t.Fatalf("describing %s: %v\n%s", db, err, out)
		}
		return out
	}
	got, want := describe("rep"), describe("mig")
	if got != want {
		gl, wl := strings.Split(got, "\n"), strings.Split(want, "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Errorf("replicated.sql differs from the migrations:\n got  %s\n want %s", g, w)
			}
		}
	}
	// meshguard's first start on the prepared database.
	if out, err := run(migrate("rep")...); err != nil {
		t.Fatalf("meshguard's migrations on replicated.sql's tables: %v\n%s", err, out)
	}
}

// sqlStatements splits a file of statements ending in ";" at line ends,
// dropping "--" comment lines.
func sqlStatements(sql string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(sql, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		cur.WriteString(line + "\n")
		if strings.HasSuffix(strings.TrimSpace(line), ";") {
			if s := strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"); s != "" {
				out = append(out, s)
			}
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

func renameDB(s, from, to string) string {
	s = strings.ReplaceAll(s, from+".", to+".")
	return strings.ReplaceAll(s, "DATABASE IF NOT EXISTS "+from, "DATABASE IF NOT EXISTS "+to)
}
