package storage

import (
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/test/testenv"
)

// The same schema and queries on modern ClickHouse (26.7 through chDB):
// the statements Migrate would send a modern server, run twice, then the
// reads storage does, with their parameters written in.

func TestModernClickHouseSchema(t *testing.T) {
	run := testenv.CHDB(t)
	const db = DefaultDatabase
	schema := modernSchema(t, db)
	// Retention as Migrate sets it on a fresh database (no TTL yet).
	schema = append(schema, retentionStatements(db, 30, map[string]string{})...)
	for pass := 1; pass <= 2; pass++ {
		if out, err := run(schema...); err != nil {
			t.Fatalf("pass %d: %v\n%s", pass, err, out)
		}
	}

	out := mustRun(t, run, "SELECT name, engine FROM system.tables WHERE database = '"+db+"' ORDER BY name")
	var got []string
	for name, engine := range wantTables {
		got = append(got, name+"\t"+engine)
	}
	sort.Strings(got)
	if want := strings.Join(got, "\n") + "\n"; out != want {
		t.Fatalf("tables:\n%s\nwant:\n%s", out, want)
	}

	// TTL in place, with whole-part drops; and retention can change.
	out = mustRun(t, run, "SELECT name, engine_full FROM system.tables WHERE database = '"+db+"' AND name IN ('flows', 'flows_by_source', 'edge_minute', 'edge_tls_hour', 'edge_tls_minute') ORDER BY name")
	engines := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		name, engine, _ := strings.Cut(line, "\t")
		engines[name] = engine + " "
		if !strings.Contains(engine, "toIntervalDay(30)") || !strings.Contains(engine, "ttl_only_drop_parts = 1") {
			t.Errorf("%s: %s, want a 30 day TTL dropping whole parts", name, engine)
		}
	}
	if again := retentionStatements(db, 30, engines); len(again) != 0 {
		t.Errorf("TTL as the server reports it not recognised, would ALTER again: %q", again)
	}
	mustRun(t, run, retentionStatements(db, 7, engines)...)
	mustRun(t, run, retentionStatements(db, 0, engines)...)
	if out := mustRun(t, run, "SELECT count() FROM system.tables WHERE database = '"+db+"' AND engine_full LIKE '% TTL %'"); out != "0\n" {
		t.Errorf("%s tables keep a TTL after retention 0", out)
	}

	// Flows in, rollup out: the view sums as EdgeCounts.Add does.
	minute := testenv.Recent()
	flows := testFlows(600, minute)
	mustRun(t, run, insertFlowsSQL(db, flows, nil))
	want := map[string]EdgeCounts{}
	for i := range flows {
		f := &flows[i]
		k := f.Reporter.String() + "\t" + f.Source.Workload + "\t" + f.Destination.Workload
		c := want[k]
		c.Add(f)
		want[k] = c
	}
	q := edgeMinuteQuery(db)
	q = strings.Replace(q, "?", strconv.FormatInt(minute.Unix(), 10), 1)
	q = strings.Replace(q, "?", strconv.FormatInt(minute.Add(time.Minute).Unix(), 10), 1)
	out = mustRun(t, run, q)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d edge minutes, want %d:\n%s", len(lines), len(want), out)
	}
	for _, line := range lines {
		f := strings.Split(line, "\t")
		if len(f) != 19 {
			t.Fatalf("edge minute row with %d fields: %q", len(f), line)
		}
		if f[0] != minute.Format(time.DateTime) || f[5] != "" || f[8] == "" {
			t.Errorf("edge minute key: %q", line)
		}
		n := make([]uint64, 9)
		for i := range n {
			n[i], _ = strconv.ParseUint(f[9+i], 10, 64)
		}
		got := EdgeCounts{n[0], n[1], n[2], n[3], n[4], n[5], n[6], n[7], n[8]}
		if k := f[1] + "\t" + f[3] + "\t" + f[6]; got != want[k] {
			t.Errorf("edge %q: %+v, want %+v", k, got, want[k])
		}
		if !strings.HasPrefix(f[18], "[") || strings.Count(f[18], ",") != 2 {
			t.Errorf("latency quantiles %q, want three", f[18])
		}
	}

	// A detection updated: FINAL returns the newest version.
	for _, v := range []string{"1, 'medium'", "3, 'high'", "2, 'stale'"} {
		mustRun(t, run, "INSERT INTO "+db+".detections (detection_id, version, severity, evidence) VALUES ('det-1', "+v+", '{}')")
	}
	out = mustRun(t, run, strings.Replace(detectionQuery(db), "?", "'det-1'", 1))
	if f := strings.Split(out, "\t"); len(f) != 15 || f[1] != "3" || f[6] != "high" {
		t.Errorf("detection read back as %q, want version 3, high", out)
	}
	mustRun(t, run, "INSERT INTO "+db+".actions (action_id, at, detection_id, kind, mode, state, actor) VALUES ('a1', now(), 'det-1', 'deny', 'dry-run', 'planned', 'meshguard')")

	// The partitions DropExpiredPartitions finds, and the drop it sends.
	q = strings.Replace(partitionsQuery, "?", "'"+db+"'", 1)
	q = strings.Replace(q, "?", "['flows', 'flows_by_source', 'edge_minute']", 1)
	out = mustRun(t, run, q)
	day := minute.Format("20060102")
	if want := "edge_minute\t" + day + "\nflows\t" + day + "\nflows_by_source\t" + day + "\n"; out != want {
		t.Errorf("partitions:\n%s\nwant:\n%s", out, want)
	}
	mustRun(t, run, "ALTER TABLE "+db+".flows DROP PARTITION ID '"+day+"'")
	if out := mustRun(t, run, "SELECT count() FROM "+db+".flows"); out != "0\n" {
		t.Errorf("flows after dropping their partition: %s", out)
	}

	// A batch whose event times span 150 days: modern servers refuse more
	// than 100 partitions per insert unless told otherwise.
	flows = testFlows(150, time.Now().Add(-time.Hour))
	for i := range flows {
		flows[i].TimestampMs -= int64(i) * 86_400_000
	}
	if _, err := run(insertFlowsSQL(db, flows, nil)); err == nil || !strings.Contains(err.Error(), "max_partitions_per_insert_block") {
		t.Errorf("150 days in one insert without settings: %v, want the partition limit", err)
	}
	mustRun(t, run, insertFlowsSQL(db, flows, flowInsertSettings(modern)))
	if out := mustRun(t, run, "SELECT count(), uniqExact(toDate(ts)) FROM "+db+".flows"); out != "150\t150\n" {
		t.Errorf("flows over 150 days, with the insert settings: %q", out)
	}
	// Retention set on tables holding data expires the old days. (Few
	// days: chDB waits for the TTL recalculation part by part.)
	var stmts []string
	for _, tt := range retentionTables {
		stmts = append(stmts, "TRUNCATE TABLE "+db+"."+tt.table)
	}
	flows = flows[:3]
	flows[1].TimestampMs = flows[0].TimestampMs - 35*86_400_000
	flows[2].TimestampMs = flows[0].TimestampMs - 40*86_400_000
	stmts = append(stmts, insertFlowsSQL(db, flows, flowInsertSettings(modern)))
	stmts = append(stmts, retentionStatements(db, 30, map[string]string{})...)
	stmts = append(stmts, "OPTIMIZE TABLE "+db+".flows FINAL")
	mustRun(t, run, stmts...)
	if out := mustRun(t, run, "SELECT count() FROM "+db+".flows"); out != "1\n" {
		t.Errorf("%s flows left after setting retention to 30 days, want the 1 of today", out)
	}
}

// modernSchema is what Migrate sends a modern server for db, bar the
// retention TTL.
func modernSchema(t *testing.T, db string) []string {
	t.Helper()
	migrations, err := RenderMigrations(modern, db)
	if err != nil {
		t.Fatal(err)
	}
	schema := bootstrapStatements(db)
	for _, m := range migrations {
		schema = append(schema, m.Statements...)
	}
	return schema
}

func mustRun(t *testing.T, run func(...string) (string, error), statements ...string) string {
	t.Helper()
	out, err := run(statements...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return out
}

// insertFlowsSQL writes flows as one INSERT ... VALUES statement with the
// columns and settings ConsumeFlows sends. Test flows hold plain ASCII.
func insertFlowsSQL(db string, flows []models.Flow, settings clickhouse.Settings) string {
	var b strings.Builder
	b.WriteString("INSERT INTO " + db + ".flows (" + strings.Join(flowColumnNames, ", ") + ")")
	var set []string
	for k, v := range settings {
		set = append(set, fmt.Sprintf("%s = %v", k, v))
	}
	if len(set) > 0 {
		b.WriteString(" SETTINGS " + strings.Join(set, ", "))
	}
	b.WriteString(" VALUES\n")
	q := func(s string) string { return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'" }
	for i := range flows {
		f := &flows[i]
		if i > 0 {
			b.WriteString(",\n")
		}
		ip := ""
		if f.Source.IP.IsValid() {
			ip = f.Source.IP.String()
		}
		mtls := int(f.TLS)
		conflict := 0
		if f.IdentityConflict {
			conflict = 1
		}
		fmt.Fprintf(&b, "(%d, %d, unhex('%s'), %s, %s, %s, %s, %s, %s, %s, %s, %s, %d, %s, %s, %s, %s, %d, %s, %d, %d, %d, %d, %s, %s, %s, unhex('%s'), %d, %d, %d, %d)",
			f.TimestampMs/1000, f.TimestampMs, hex.EncodeToString(f.ID[:]), q(f.Reporter.String()),
			q(f.Source.Principal), q(f.Source.Workload), q(f.Source.Namespace), q(ip),
			q(f.Destination.Principal), q(f.Destination.Workload), q(f.Destination.Namespace), q(f.Destination.Service), f.Destination.Port,
			q(f.Protocol), q(f.Method), q(f.Path), q(f.PathTemplate), f.ResponseCode, q(f.ResponseFlags),
			f.BytesSent, f.BytesReceived, f.DurationMs, mtls, q(f.TLSVersion),
			q(f.UserAgent), q(f.RequestID), hex.EncodeToString(f.TraceID[:]), f.Count, f.Resolved, conflict, uint8(f.DryRunAllow))
	}
	return b.String()
}
