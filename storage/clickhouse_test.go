package storage

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/test/testenv"
)

// hostile are strings an attacker can put into telemetry.
var hostile = []string{
	`'); DROP TABLE flows; --`,
	`\'; DROP DATABASE meshguard; \`,
	"line one\nline two\r\nthree\ttabbed",
	`"double" 'single' ` + "`back`",
	`C:\path\with\backslashes\\`,
	"nul\x00byte",
	"ünïcødé 🚨 مرحبا",
	"{{.DB}} ${HOME} %s %!",
	"",
	strings.Repeat("A", 70_000),
}

func hostileFlows(start time.Time) []models.Flow {
	flows := testFlows(len(hostile), start)
	for i, h := range hostile {
		f := &flows[i]
		f.Source.Principal, f.Source.Workload, f.Source.Namespace = h, h, h
		f.Destination.Principal, f.Destination.Workload, f.Destination.Namespace, f.Destination.Service = h, h, h, h
		f.Protocol, f.Method, f.Path, f.PathTemplate, f.ResponseFlags = h, h, h, h, h
		f.TLSVersion, f.UserAgent, f.RequestID = h, h, h
	}
	// Extremes of every number, IPv6 and no IP at all, an aggregate.
	f := &flows[0]
	f.Destination.Port, f.ResponseCode, f.BytesSent, f.BytesReceived = 65535, 65535, 1<<64-1, 1<<63
	f.DurationMs, f.Count = 1<<32-1, 1<<32-1
	flows[1].Source.IP = netip.MustParseAddr("2001:db8::1")
	flows[2].Source.IP = netip.Addr{}
	flows[3].TraceID = models.TraceID{}
	flows[4].Resolved = models.ResolvedSourceWorkload | models.ResolvedDestinationPrincipal
	flows[5%len(flows)].IdentityConflict = true
	flows[6%len(flows)].DryRunAllow = models.DryRunDenied
	return flows
}

// readFlows reads db.flows back into models.Flow values, in ts_ms order.
func readFlows(t *testing.T, store *ClickHouse) []models.Flow {
	t.Helper()
	ctx := context.Background()
	rows, err := store.conn.Query(ctx, "SELECT "+strings.Join(flowColumnNames, ", ")+
		", toUnixTimestamp(ts) FROM "+store.db+".flows ORDER BY ts_ms, flow_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []models.Flow
	for rows.Next() {
		var f models.Flow
		var ts time.Time
		var tsUnix uint32
		var flowID, traceID, reporter, ip string
		var mtls, resolved, conflict, dryRun uint8
		if err := rows.Scan(&ts, &f.TimestampMs, &flowID, &reporter,
			&f.Source.Principal, &f.Source.Workload, &f.Source.Namespace, &ip,
			&f.Destination.Principal, &f.Destination.Workload, &f.Destination.Namespace, &f.Destination.Service, &f.Destination.Port,
			&f.Protocol, &f.Method, &f.Path, &f.PathTemplate, &f.ResponseCode, &f.ResponseFlags,
			&f.BytesSent, &f.BytesReceived, &f.DurationMs, &mtls, &f.TLSVersion,
			&f.UserAgent, &f.RequestID, &traceID, &f.Count, &resolved, &conflict, &dryRun, &tsUnix); err != nil {
			t.Fatal(err)
		}
		if int64(tsUnix) != f.TimestampMs/1000 || ts.Unix() != int64(tsUnix) {
			t.Errorf("ts %v (%d) does not match ts_ms %d", ts, tsUnix, f.TimestampMs)
		}
		copy(f.ID[:], flowID)
		copy(f.TraceID[:], traceID)
		f.Reporter = models.ParseReporter(reporter)
		if ip != "" {
			f.Source.IP = netip.MustParseAddr(ip)
		}
		f.TLS = models.TLS(mtls)
		f.Resolved, f.IdentityConflict = models.Resolved(resolved), conflict == 1
		f.DryRunAllow = models.DryRun(dryRun)
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestConsumeFlowsRoundTrip(t *testing.T) {
	store, _ := migratedStore(t)
	ctx := context.Background()
	want := hostileFlows(testenv.Recent())
	want[4].TimestampMs += 999 // the last millisecond of a second stays in that second
	if err := store.ConsumeFlows(ctx, want); err != nil {
		t.Fatal(err)
	}
	if err := store.ConsumeFlows(ctx, nil); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
	got := readFlows(t, store)
	if len(got) != len(want) {
		t.Fatalf("read %d flows, want %d", len(got), len(want))
	}
	byID := map[models.FlowID]models.Flow{}
	for _, f := range got {
		byID[f.ID] = f
	}
	for i, w := range want {
		if g := byID[w.ID]; !reflect.DeepEqual(g, w) {
			t.Errorf("flow %d (%.40q) read back differently:\n got %+v\nwant %+v", i, hostile[i], g, w)
		}
	}
	var tables uint64
	if err := store.conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ?", store.db).Scan(&tables); err != nil || tables != uint64(len(wantTables)) {
		t.Errorf("%d tables (err %v) after storing hostile flows, want %d", tables, err, len(wantTables))
	}
}

func TestConsumeFlowsAfterReturnOwnsNothing(t *testing.T) {
	store, _ := migratedStore(t)
	flows := testFlows(100, time.Now())
	want := append([]models.Flow(nil), flows...)
	if err := store.ConsumeFlows(context.Background(), flows); err != nil {
		t.Fatal(err)
	}
	// The caller reuses its slice: what was stored must not change.
	for i := range flows {
		flows[i] = models.Flow{}
	}
	got := readFlows(t, store)
	if len(got) != len(want) || !reflect.DeepEqual(got[0], want[0]) || !reflect.DeepEqual(got[99], want[99]) {
		t.Fatal("stored flows changed after the caller reused its slice")
	}
}

func TestConsumeFlowsOverManyDays(t *testing.T) {
	// No TTL: on a modern server the 30-day TTL would drop the older
	// days, and this test is about the insert, not retention.
	store, _ := migratedStoreKeeping(t, 0)
	// Event times come from telemetry: one batch may span many days.
	flows := testFlows(150, testenv.Recent())
	for i := range flows {
		flows[i].TimestampMs -= int64(i) * 86_400_000
	}
	if err := store.ConsumeFlows(context.Background(), flows); err != nil {
		t.Fatal(err)
	}
	if got := readFlows(t, store); len(got) != len(flows) {
		t.Fatalf("%d flows stored, want %d", len(got), len(flows))
	}
	if s := flowInsertSettings(legacy); len(s) != 1 {
		t.Errorf("settings for 18.16 %v: it has no LowCardinality columns and no partition limit", s)
	}
}

func TestEdgeMinuteRollup(t *testing.T) {
	store, _ := migratedStore(t)
	ctx := context.Background()
	minute := testenv.Recent()

	// Two edges over two minutes, sent in several batches so that the
	// rollup holds partial rows the query has to merge.
	cart := models.Source{Principal: "cluster.local/ns/shop/sa/cart", Workload: "cart", Namespace: "shop", IP: netip.MustParseAddr("10.0.0.1")}
	outside := models.Source{IP: netip.MustParseAddr("203.0.113.9")}
	payments := models.Destination{Workload: "payments", Namespace: "billing", Service: "payments.billing.svc.cluster.local"}
	var all []models.Flow
	for i := range 2000 {
		f := models.Flow{
			TimestampMs:  minute.UnixMilli() + int64(i%2)*60_000 + int64(i),
			Reporter:     models.ReporterDestination,
			Source:       cart,
			Destination:  payments,
			ResponseCode: []uint16{200, 204, 302, 401, 403, 404, 500, 503, 0, 200}[i%10],
			BytesSent:    uint64(i),
			// 1..100 ms: quantiles are known.
			BytesReceived: 7,
			DurationMs:    uint32(1 + i%100),
			Count:         1,
		}
		if i%4 == 3 {
			f.Source = outside
			f.Source.IP = netip.AddrFrom4([4]byte{203, 0, 113, byte(9 + i%2)})
			f.Count = 3 // an aggregate of three requests
		}
		f.ID = models.NewFlowIDBase("t", 0, int64(i)).ID(0)
		all = append(all, f)
	}
	mem := NewMemory(len(all))
	for off := 0; off < len(all); off += 500 {
		if err := store.ConsumeFlows(ctx, all[off:off+500]); err != nil {
			t.Fatal(err)
		}
	}
	if err := mem.ConsumeFlows(ctx, all); err != nil {
		t.Fatal(err)
	}

	rows, err := store.EdgeMinutes(ctx, minute, minute.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	// Per (minute, source) the expected counts, from the same flows.
	type key struct {
		minute time.Time
		src    string
	}
	want := map[key]EdgeCounts{}
	for i := range all {
		f := &all[i]
		src := f.Source.Workload
		if src == "" {
			src = f.Source.IP.String()
		}
		k := key{f.Time().Truncate(time.Minute), src}
		c := want[k]
		c.Add(f)
		want[k] = c
	}
	if len(rows) != len(want) {
		t.Fatalf("%d edge minutes, want %d: %+v", len(rows), len(want), rows)
	}
	for _, r := range rows {
		src := r.SourceWorkload
		if src == "" {
			src = r.SourceIP
		}
		k := key{r.Minute, src}
		if r.EdgeCounts != want[k] {
			t.Errorf("%v from %s: counts %+v, want %+v", r.Minute, src, r.EdgeCounts, want[k])
		}
		if r.Reporter != "destination" || r.DestinationWorkload != "payments" || r.DestinationNamespace != "billing" ||
			r.DestinationService != payments.Service {
			t.Errorf("edge key %+v", r)
		}
		if r.SourceWorkload == "cart" && r.SourceIP != "" {
			t.Errorf("identified source keeps its IP %q: pod IPs would split the edge", r.SourceIP)
		}
		// Durations are uniform on 1..100 ms.
		for _, q := range []struct{ got, want float64 }{{r.DurationP50, 50}, {r.DurationP90, 90}, {r.DurationP99, 99}} {
			if q.got < q.want-5 || q.got > q.want+5 {
				t.Errorf("%v from %s: latency quantiles %v/%v/%v, want about 50/90/99", r.Minute, src, r.DurationP50, r.DurationP90, r.DurationP99)
				break
			}
		}
	}

	// The in-memory store counts the same way, per models.Edge.
	var total EdgeCounts
	for _, c := range want {
		total.Requests += c.Requests
	}
	var memTotal uint64
	for _, c := range mem.EdgeTotals() {
		memTotal += c.Requests
	}
	if memTotal != total.Requests {
		t.Errorf("memory store counts %d requests, edge_minute %d", memTotal, total.Requests)
	}

	// Outside the window: nothing.
	if rows, err := store.EdgeMinutes(ctx, minute.Add(-time.Hour), minute); err != nil || len(rows) != 0 {
		t.Errorf("hour before: %d rows, err %v", len(rows), err)
	}
}

func TestDetectionUpdates(t *testing.T) {
	store, _ := migratedStore(t)
	ctx := context.Background()
	t0 := testenv.Recent()
	d := DetectionRow{
		DetectionID: `det-1'); DROP TABLE detections; --`,
		Version:     1,
		DetectedAt:  t0, WindowStart: t0.Add(-time.Minute), WindowEnd: t0,
		Kind: "credential_stuffing", Severity: "medium", Score: 0.7,
		SourcePrincipal: "cluster.local/ns/shop/sa/cart", SourceWorkload: "cart", SourceNamespace: "shop",
		DestinationWorkload: "auth", DestinationNamespace: "identity",
		Evidence: `{"401s": 120, "note": "quote ' and \\ backslash"}`,
	}
	if err := store.WriteDetection(ctx, d); err != nil {
		t.Fatal(err)
	}
	// The attack goes on: the same detection, wider and worse.
	later := d
	later.Version, later.WindowEnd, later.Severity, later.Score = 2, t0.Add(5*time.Minute), "high", 0.95
	later.Evidence = `{"401s": 900}`
	if err := store.WriteDetection(ctx, later); err != nil {
		t.Fatal(err)
	}
	// A late write of an old version does not win.
	stale := d
	stale.Severity = "stale"
	if err := store.WriteDetection(ctx, stale); err != nil {
		t.Fatal(err)
	}
	got, ok, err := store.Detection(ctx, d.DetectionID)
	if err != nil || !ok {
		t.Fatalf("Detection: %v, found %v", err, ok)
	}
	if !reflect.DeepEqual(got, later) {
		t.Fatalf("detection read back:\n got %+v\nwant %+v", got, later)
	}
	var rows uint64
	if err := store.conn.QueryRow(ctx, "SELECT count() FROM "+store.db+".detections FINAL").Scan(&rows); err != nil || rows != 1 {
		t.Errorf("FINAL sees %d rows (err %v), want 1", rows, err)
	}
	if _, ok, err := store.Detection(ctx, "nope"); ok || err != nil {
		t.Errorf("unknown detection: found %v, err %v", ok, err)
	}

	for _, bad := range []DetectionRow{{}, {DetectionID: "x", Evidence: "{not json"}} {
		if err := store.WriteDetection(ctx, bad); !consumer.IsPermanent(err) {
			t.Errorf("WriteDetection(%+v) = %v, want a permanent error", bad, err)
		}
	}
	// Times left zero stay zero.
	bare := DetectionRow{DetectionID: "bare", Version: 1, Evidence: "[]"}
	if err := store.WriteDetection(ctx, bare); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := store.Detection(ctx, "bare"); err != nil || !ok || !reflect.DeepEqual(got, bare) {
		t.Errorf("detection with zero times read back as %+v (found %v, err %v)", got, ok, err)
	}
	// Version 0 means now, so it beats version 2.
	now := later
	now.Version, now.Severity = 0, "critical"
	if err := store.WriteDetection(ctx, now); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := store.Detection(ctx, d.DetectionID); got.Severity != "critical" {
		t.Errorf("version 0 did not win: %+v", got)
	}
}

func TestWriteAction(t *testing.T) {
	store, _ := migratedStore(t)
	ctx := context.Background()
	at := testenv.Recent()
	actions := []ActionRow{
		{ActionID: "a1", At: at, DetectionID: "det-1", Kind: "deny", Mode: "dry-run", State: "planned", Actor: "meshguard",
			Reason: "credential stuffing\n'quoted'", Target: "cluster.local/ns/shop/sa/cart",
			PolicyName: "meshguard-deny-cart", PolicyNamespace: "identity", ExpiresAt: at.Add(time.Hour)},
		{ActionID: "a2", At: at.Add(time.Second), DetectionID: "det-1", Kind: "alert", Mode: "enforce", State: "sent", Actor: "meshguard"},
	}
	for _, a := range actions {
		if err := store.WriteAction(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := store.conn.Query(ctx, "SELECT action_id, at, detection_id, kind, mode, state, actor, reason, target, "+
		"policy_name, policy_namespace, expires_at FROM "+store.db+".actions ORDER BY at")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []ActionRow
	for rows.Next() {
		var a ActionRow
		if err := rows.Scan(&a.ActionID, &a.At, &a.DetectionID, &a.Kind, &a.Mode, &a.State, &a.Actor, &a.Reason,
			&a.Target, &a.PolicyName, &a.PolicyNamespace, &a.ExpiresAt); err != nil {
			t.Fatal(err)
		}
		a.At, a.ExpiresAt = a.At.UTC(), fromDateTime(a.ExpiresAt)
		got = append(got, a)
	}
	if !reflect.DeepEqual(got, actions) {
		t.Fatalf("actions read back:\n got %+v\nwant %+v", got, actions)
	}
	if err := store.WriteAction(ctx, ActionRow{}); !consumer.IsPermanent(err) {
		t.Errorf("action without id: %v, want a permanent error", err)
	}
}

func TestDropExpiredPartitions(t *testing.T) {
	// No TTL: on a modern server its background merges would race the
	// drops this test counts.
	store, db := migratedStoreKeeping(t, 0)
	ctx := context.Background()
	now := time.Now().UTC()
	// Noon of each day: a test minute never spills into the next day.
	day := func(daysAgo int) time.Time {
		return now.Add(-time.Duration(daysAgo) * 24 * time.Hour).Truncate(24 * time.Hour).Add(12 * time.Hour)
	}
	for _, ago := range []int{0, 1, 6, 8, 9, 40} {
		if err := store.ConsumeFlows(ctx, testFlows(50, day(ago))); err != nil {
			t.Fatal(err)
		}
	}
	partitions := func(table string) []string {
		rows, err := store.conn.Query(ctx, "SELECT DISTINCT partition_id FROM system.parts WHERE database = ? AND table = ? AND active ORDER BY partition_id", db, table)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		return ids
	}

	if n, err := newStore(t, db, 30).DropExpiredPartitions(ctx); err != nil || n != len(retentionTables) {
		t.Fatalf("retention 30 days dropped %d partitions (err %v), want day 40 of %d tables", n, err, len(retentionTables))
	}
	if n, err := store.DropExpiredPartitions(ctx); err != nil || n != 0 {
		t.Fatalf("retention forever dropped %d (err %v), want none", n, err)
	}
	dropped, err := newStore(t, db, 7).DropExpiredPartitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Days 8 and older are gone, days 6 and newer stay.
	for _, tt := range retentionTables {
		table := tt.table
		kept := partitions(table)
		for _, ago := range []int{0, 1, 6} {
			if id := day(ago).Format("20060102"); !contains(kept, id) {
				t.Errorf("%s: partition %s (%d days ago) dropped, retention is 7 days", table, id, ago)
			}
		}
		for _, ago := range []int{8, 9, 40} {
			if id := day(ago).Format("20060102"); contains(kept, id) {
				t.Errorf("%s: partition %s (%d days ago) kept, retention is 7 days", table, id, ago)
			}
		}
	}
	var left uint64
	if err := store.conn.QueryRow(ctx, "SELECT count() FROM "+db+".flows").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 3*50 {
		t.Errorf("%d flows left, want the 150 of the 3 days kept", left)
	}
	if dropped != 2*len(retentionTables) {
		t.Errorf("dropped %d partitions, want %d (days 8 and 9 of %d tables)", dropped, 2*len(retentionTables), len(retentionTables))
	}
	// Again: nothing more to drop.
	if n, err := DropExpiredPartitions(ctx, store.conn, db, 7); err != nil || n != 0 {
		t.Errorf("second run dropped %d (err %v), want 0", n, err)
	}
	if _, err := DropExpiredPartitions(ctx, store.conn, "x; DROP", 7); err == nil {
		t.Error("invalid database name accepted")
	}
	if _, err := DropExpiredPartitions(ctx, store.conn, db, 0); err == nil {
		t.Error("0 days accepted: that would drop today")
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestErrorClassification(t *testing.T) {
	ctx := context.Background()
	flows := testFlows(10, time.Now())

	t.Run("wrong column type is permanent", func(t *testing.T) {
		conn, db := testenv.ClickHouse(t)
		cols := make([]string, len(flowColumnNames))
		for i, c := range flowColumnNames {
			cols[i] = c + " String"
		}
		cols[1] = "ts_ms DateTime" // a type Int64 values cannot go into
		if err := conn.Exec(ctx, "CREATE TABLE "+db+".flows ("+strings.Join(cols, ", ")+") ENGINE = MergeTree ORDER BY tuple()"); err != nil {
			t.Fatal(err)
		}
		err := newStore(t, db, 0).ConsumeFlows(ctx, flows)
		if !consumer.IsPermanent(err) {
			t.Fatalf("insert into wrongly typed table: %v, want a permanent error", err)
		}
		t.Log(err)
	})
	t.Run("unknown column is permanent", func(t *testing.T) {
		conn, db := testenv.ClickHouse(t)
		if err := conn.Exec(ctx, "CREATE TABLE "+db+".flows (ts DateTime, ts_ms Int64) ENGINE = MergeTree ORDER BY ts"); err != nil {
			t.Fatal(err)
		}
		err := newStore(t, db, 0).ConsumeFlows(ctx, flows)
		if !consumer.IsPermanent(err) {
			t.Fatalf("insert with unknown columns: %v, want a permanent error", err)
		}
		t.Log(err)
	})
	t.Run("missing table is permanent", func(t *testing.T) {
		_, db := testenv.ClickHouse(t)
		err := newStore(t, db, 0).ConsumeFlows(ctx, flows)
		if !consumer.IsPermanent(err) {
			t.Fatalf("insert into missing table: %v, want a permanent error", err)
		}
	})
	t.Run("unreachable server is retryable", func(t *testing.T) {
		cfg := DefaultClickHouseConfig()
		cfg.Addr = []string{unusedAddr(t)}
		cfg.DialTimeout = time.Second
		store, err := NewClickHouse(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		err = store.ConsumeFlows(ctx, flows)
		if err == nil || consumer.IsPermanent(err) {
			t.Fatalf("insert to a closed port: %v, want a retryable error", err)
		}
		if err := store.Ping(ctx); err == nil || consumer.IsPermanent(err) {
			t.Fatalf("ping a closed port: %v, want a retryable error", err)
		}
	})
	t.Run("canceled context is retryable", func(t *testing.T) {
		store, _ := migratedStore(t)
		canceled, cancel := context.WithCancel(ctx)
		cancel()
		err := store.ConsumeFlows(canceled, flows)
		if err == nil || consumer.IsPermanent(err) || !errors.Is(err, context.Canceled) {
			t.Fatalf("insert with a canceled context: %v, want a retryable context.Canceled", err)
		}
	})
}

// unusedAddr returns a loopback address nothing listens on.
func unusedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestClickHouseConfigValidate(t *testing.T) {
	ok := DefaultClickHouseConfig()
	ok.Addr = []string{"127.0.0.1:9000"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	dsn := DefaultClickHouseConfig()
	dsn.DSN = "clickhouse://u:secret@db.example:9000/analytics?dial_timeout=2s"
	if err := dsn.Validate(); err != nil {
		t.Fatalf("valid dsn: %v", err)
	}
	store, err := NewClickHouse(dsn)
	if err != nil || store.Database() != "analytics" {
		t.Fatalf("database from the dsn: %v, %v", store, err)
	}
	store.Close()
	store.Close() // safe twice

	// Nothing set means a local server, like the Kafka defaults.
	local := DefaultClickHouseConfig()
	opts, err := local.options()
	if err != nil || len(opts.Addr) != 1 || opts.Addr[0] != DefaultAddr || opts.Auth.Database != DefaultDatabase {
		t.Fatalf("empty config: %v %v, want %s and database %s", opts, err, DefaultAddr, DefaultDatabase)
	}

	for _, tt := range []struct {
		name string
		edit func(*ClickHouseConfig)
		want []string
	}{
		{"both", func(c *ClickHouseConfig) { c.DSN, c.Addr = "clickhouse://h:9000", []string{"h:9000"} }, []string{"dsn: set either"}},
		{"bad dsn keeps the password out", func(c *ClickHouseConfig) { c.DSN = "clickhouse://u:hunter2@h:port/db" }, []string{"dsn: not a valid"}},
		{"everything wrong", func(c *ClickHouseConfig) {
			c.Addr, c.Database, c.DialTimeout, c.QueryTimeout, c.RetentionDays = []string{"nohost"}, "x;y", 0, -1, -3
		}, []string{`addr: "nohost"`, `database: database name "x;y"`, "dial_timeout: 0s", "query_timeout: -1ns", "retention_days: -3"}},
		{"database differs", func(c *ClickHouseConfig) { c.DSN, c.Database = "clickhouse://h:9000/a", "b" }, []string{`database: "b" differs`}},
	} {
		c := DefaultClickHouseConfig()
		tt.edit(&c)
		err := c.Validate()
		if err == nil {
			t.Errorf("%s: accepted", tt.name)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", tt.name, err, w)
			}
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error leaks the password: %v", tt.name, err)
		}
		if _, err := NewClickHouse(c); err == nil {
			t.Errorf("%s: NewClickHouse accepted it", tt.name)
		}
	}
}
