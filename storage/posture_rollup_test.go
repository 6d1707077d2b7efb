package storage

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/test/testenv"
)

// setRollupSince fixes where c's rollups start: 0 reads them for every
// whole bucket, math.MaxInt64 never.
func (c *ClickHouse) setRollupSince(s int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rollupKnown, c.rollupFrom = true, s
}

func TestPlanRollup(t *testing.T) {
	at := func(h, m, s int) int64 { return int64(h*3600 + m*60 + s) }
	sp := func(a, b int64) []span { return []span{{a, b}} }
	for _, c := range []struct {
		name            string
		from, to, since int64
		want            rollupPlan
	}{
		{"hours, minutes and seconds at both ends", at(10, 0, 30), at(13, 2, 20), 0,
			rollupPlan{sp(at(11, 0, 0), at(13, 0, 0)), {{at(10, 1, 0), at(11, 0, 0)}, {at(13, 0, 0), at(13, 2, 0)}},
				{{at(10, 0, 30), at(10, 1, 0)}, {at(13, 2, 0), at(13, 2, 20)}}}},
		{"aligned on hours", at(10, 0, 0), at(12, 0, 0), 0, rollupPlan{sp(at(10, 0, 0), at(12, 0, 0)), nil, nil}},
		{"less than an hour", at(10, 0, 30), at(10, 59, 59), 0,
			rollupPlan{nil, sp(at(10, 1, 0), at(10, 59, 0)), {{at(10, 0, 30), at(10, 1, 0)}, {at(10, 59, 0), at(10, 59, 59)}}}},
		{"within a minute", at(10, 0, 5), at(10, 0, 50), 0, rollupPlan{nil, nil, sp(at(10, 0, 5), at(10, 0, 50))}},
		{"before the rollups started: flows", at(10, 0, 30), at(13, 2, 20), at(12, 0, 0),
			rollupPlan{sp(at(12, 0, 0), at(13, 0, 0)), sp(at(13, 0, 0), at(13, 2, 0)), {{at(10, 0, 30), at(12, 0, 0)}, {at(13, 2, 0), at(13, 2, 20)}}}},
		{"no rollups", at(10, 0, 30), at(13, 2, 20), math.MaxInt64, rollupPlan{nil, nil, sp(at(10, 0, 30), at(13, 2, 20))}},
		{"empty", at(10, 0, 0), at(10, 0, 0), 0, rollupPlan{nil, nil, nil}},
	} {
		if got := planRollup(c.from, c.to, c.since); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: planRollup(%d, %d, %d) =\n %v\nwant %v", c.name, c.from, c.to, c.since, got, c.want)
		}
	}
	// Any span: every second read once, from the finest level the
	// rollups' start allows, rollup spans on their buckets.
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		from := r.Int64N(5 * 86400)
		to := from + r.Int64N(2*86400)
		since := []int64{0, math.MaxInt64, r.Int64N(7 * 86400)}[r.IntN(3)]
		plan := planRollup(from, to, since)
		var all []span
		for level, spans := range plan {
			for _, s := range spans {
				if level < len(rollupTiers) && (s.lo%rollupTiers[level].width != 0 || s.hi%rollupTiers[level].width != 0 || s.lo < since) {
					t.Fatalf("planRollup(%d, %d, %d): %s span %v off its buckets or before the rollups", from, to, since, rollupTiers[level].table, s)
				}
				all = append(all, s)
			}
		}
		slices.SortFunc(all, func(a, b span) int { return cmp.Compare(a.lo, b.lo) })
		at := from
		for _, s := range all {
			if s.lo != at || s.hi <= s.lo {
				t.Fatalf("planRollup(%d, %d, %d) = %v: a gap, an overlap or an empty span at %d", from, to, since, plan, at)
			}
			at = s.hi
		}
		if at != to && from < to {
			t.Fatalf("planRollup(%d, %d, %d) = %v ends at %d", from, to, since, plan, at)
		}
	}
}

// rollupFlows: four hours of a small mesh from start on, every field the
// rollups key or count on varied: both reporters, two ports, the three
// TLS states, answers, IP-only callers, changing destination principals,
// resolved and contradicted Service hosts, plaintext edges with more and
// fewer than MaxPostureSamples ids, some without an id.
func rollupFlows(start time.Time) []models.Flow {
	r := rand.New(rand.NewPCG(7, 11))
	base := models.NewFlowIDBase("rollup-test", 0, start.UnixNano())
	srcs := []string{"web", "cart", "legacy", "batch", ""}
	dsts := []string{"ads-v1", "pay-v2", "cart"}
	flows := make([]models.Flow, 3000)
	for i := range flows {
		src, dst := srcs[r.IntN(len(srcs))], dsts[r.IntN(len(dsts))]
		f := models.Flow{ID: base.ID(i), TimestampMs: start.UnixMilli() + r.Int64N(4*3600_000), Count: uint32(1 + r.IntN(3)),
			Reporter:     models.Reporter(1 + r.IntN(2)),
			Destination:  models.Destination{Workload: dst, Namespace: "shop", Service: dst + ".shop.svc.cluster.local", Port: []uint16{8080, 9090}[r.IntN(2)]},
			ResponseCode: []uint16{200, 200, 204, 404, 401, 503, 500, 0}[r.IntN(8)],
			TLS:          models.TLS(r.IntN(3)),
			RequestID:    []string{"", fmt.Sprintf("req-%04d", i)}[min(r.IntN(5), 1)],
		}
		if src != "" {
			f.Source = models.Source{Workload: src, Namespace: "front", IP: netip.AddrFrom4([4]byte{10, 0, 0, byte(r.IntN(4))})}
		} else {
			f.Source.IP = netip.AddrFrom4([4]byte{192, 168, 0, byte(r.IntN(3))})
		}
		switch src {
		case "legacy":
			f.TLS = models.TLSPlaintext // many plaintext ids on one edge
		case "batch":
			if r.IntN(20) != 0 {
				f.TLS = models.TLSMutual // few
			}
		}
		if f.TLS == models.TLSMutual {
			f.Source.Principal = "cluster.local/ns/front/sa/" + src
			f.Destination.Principal = fmt.Sprintf("cluster.local/ns/shop/sa/%s-%d", dst, r.IntN(3))
		}
		if f.Reporter == models.ReporterSource && r.IntN(2) == 0 {
			f.Destination.Workload, f.Destination.Namespace = "", "" // the host only
			if r.IntN(2) == 0 {
				f.Destination.Workload, f.Destination.Namespace = dst, "shop"
				f.Resolved = models.ResolvedDestinationWorkload
			}
		}
		if r.IntN(30) == 0 {
			f.Destination.Workload, f.IdentityConflict = "evil", true
		}
		flows[i] = f
	}
	return flows
}

// TestEdgeRollupMatchesFlows: the posture, the trend, the graph and the
// Service map read from the rollups answer what the queries over flows
// they replace (kept below) answer, on spans cut anywhere, on the modern
// server and on 18.16; and the memory store answers the same.
func TestEdgeRollupMatchesFlows(t *testing.T) {
	servers := map[string]func(testing.TB) (string, string){
		"clickhouse": func(t testing.TB) (string, string) {
			_, db := testenv.ClickHouse(t)
			return testenv.ClickHouseAddr(t), db
		},
		"clickhouse-18.16": func(t testing.TB) (string, string) {
			_, db := testenv.ClickHouse18(t)
			return testenv.ClickHouse18Addr(t), db
		},
	}
	for name, server := range servers {
		t.Run(name, func(t *testing.T) {
			addr, db := server(t)
			open := func(since int64) *ClickHouse {
				cfg := DefaultClickHouseConfig()
				cfg.Addr, cfg.Database = []string{addr}, db
				s, err := NewClickHouse(cfg)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				s.setRollupSince(since)
				return s
			}
			rollup, flows := open(0), open(math.MaxInt64)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			if err := rollup.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			start := testenv.Recent().Add(-2 * time.Hour)
			data := rollupFlows(start)
			// Two inserts: rows of one key in two parts until they merge.
			if err := rollup.ConsumeFlows(ctx, data[:1000]); err != nil {
				t.Fatal(err)
			}
			if err := rollup.ConsumeFlows(ctx, data[1000:]); err != nil {
				t.Fatal(err)
			}
			for _, sp := range [][2]time.Duration{
				{0, 4 * time.Hour},
				{17 * time.Second, 2*time.Hour + 41*time.Minute + 13*time.Second},
				{59*time.Minute + 30*time.Second, time.Hour + 30*time.Second},
				{90 * time.Minute, 150 * time.Minute},
				{3*time.Hour + 5*time.Second, 3*time.Hour + 55*time.Second},
			} {
				from, to := start.Add(sp[0]), start.Add(sp[1])
				t.Run(fmt.Sprintf("%v-%v", sp[0], sp[1]), func(t *testing.T) {
					compareRollupReads(t, ctx, rollup, flows, data, from, to, name != "clickhouse")
				})
			}
			// The rollups are what the reads read: a row only they hold
			// shows in the rollup answer, not in the flows'.
			hour := start.Add(time.Hour).Unix()
			if err := rollup.conn.Exec(ctx, "INSERT INTO "+db+".edge_tls_hour (hour, reporter, source_workload, source_namespace, destination_workload, destination_namespace, requests) "+
				"SELECT toDateTime("+strconv.FormatInt(hour, 10)+"), 'destination', 'ghost', 'front', 'ads-v1', 'shop', sumState(toUInt64(7))"); err != nil {
				t.Fatal(err)
			}
			g, err := rollup.GraphEdges(ctx, start, start.Add(4*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(g, func(e GraphEdge) bool { return e.SourceWorkload == "ghost" && e.Requests == 7 }) {
				t.Error("a row put into edge_tls_hour alone does not show in GraphEdges: the rollup is not read")
			}
			if g, err := flows.GraphEdges(ctx, start, start.Add(4*time.Hour)); err != nil || slices.ContainsFunc(g, func(e GraphEdge) bool { return e.SourceWorkload == "ghost" }) {
				t.Errorf("GraphEdges from flows alone shows the rollup's row (err %v)", err)
			}
		})
	}
}

func compareRollupReads(t *testing.T, ctx context.Context, rollup, flows *ClickHouse, data []models.Flow, from, to time.Time, legacy bool) {
	// The old posture query never ran on 18.16 (its groupUniqArray takes
	// no size): there the flows' side is the new query reading only flows.
	ref, err := referencePostureEdges(ctx, flows, from, to)
	if legacy {
		ref, err = flows.PostureEdges(ctx, from, to)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(ref) == 0 {
		t.Fatal("no edges in the span: the comparison would prove nothing")
	}
	want := postureSamples(data, from, to)
	wide := to.Sub(from) > 10*time.Minute
	mem := NewMemory(len(data))
	if err := mem.ConsumeFlows(ctx, data); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]PostureQuerier{"rollup": rollup, "flows": flows, "memory": mem} {
		got, err := s.PostureEdges(ctx, from, to)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checkSamples(t, name, got, want, wide)
		if g, r := stripSamples(got), stripSamples(ref); !reflect.DeepEqual(g, r) {
			t.Errorf("%s PostureEdges differs from the flows' query (%d and %d edges):\n got %+v\nwant %+v", name, len(g), len(r), g, r)
		}
	}
	checkSamples(t, "flows' query", ref, want, wide)

	refTrend, err := referenceTrend(ctx, flows, from, to)
	if err != nil {
		t.Fatal(err)
	}
	refGraph, err := referenceGraph(ctx, flows, from, to)
	if err != nil {
		t.Fatal(err)
	}
	refSvc, err := referenceServices(ctx, flows, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if len(refSvc) == 0 && wide {
		t.Fatal("no Service evidence in the span")
	}
	for name, s := range map[string]*ClickHouse{"rollup": rollup, "flows": flows} {
		trend, err := s.PostureTrend(ctx, from, to)
		if err != nil || !reflect.DeepEqual(trend, refTrend) {
			t.Errorf("%s PostureTrend = %+v, %v;\nthe flows' query %+v", name, trend, err, refTrend)
		}
	}
	for name, s := range map[string]dashboardStore{"rollup": rollup, "flows": flows, "memory": mem} {
		graph, err := s.GraphEdges(ctx, from, to)
		if err != nil || !reflect.DeepEqual(sortedGraph(graph), sortedGraph(refGraph)) {
			t.Errorf("%s GraphEdges = %+v, %v;\nthe flows' query %+v", name, graph, err, refGraph)
		}
		svc, err := s.ServiceWorkloads(ctx, from, to)
		if err != nil || !reflect.DeepEqual(svc, refSvc) {
			t.Errorf("%s ServiceWorkloads = %+v, %v;\nthe flows' query %+v", name, svc, err, refSvc)
		}
	}
}

// postureSamples: every plaintext request id of each edge and side in
// [from, to), from the flows themselves.
func postureSamples(data []models.Flow, from, to time.Time) map[postureKey]map[string]map[string]bool {
	out := map[postureKey]map[string]map[string]bool{}
	for i := range data {
		f := &data[i]
		at := time.Unix(f.TimestampMs/1000, 0)
		if at.Before(from.Truncate(time.Second)) || !at.Before(to.Truncate(time.Second)) || f.TLS != models.TLSPlaintext || f.RequestID == "" {
			continue
		}
		k := postureKey{f.Source.Principal, f.Source.Workload, f.Source.Namespace, plaintextIP(f),
			f.Destination.Workload, f.Destination.Namespace, f.Destination.Port}
		if out[k] == nil {
			out[k] = map[string]map[string]bool{}
		}
		if out[k][f.Reporter.String()] == nil {
			out[k][f.Reporter.String()] = map[string]bool{}
		}
		out[k][f.Reporter.String()][f.RequestID] = true
	}
	return out
}

// checkSamples: each edge's samples are min(MaxPostureSamples, all) of
// its side's plaintext ids, and, when choosing is wanted, some edge has
// more than that to choose from.
func checkSamples(t *testing.T, name string, got []PostureEdge, want map[postureKey]map[string]map[string]bool, wantChoosing bool) {
	t.Helper()
	choosing := false
	for _, e := range got {
		all := want[postureKeyOf(&e)][e.Reporter]
		choosing = choosing || len(all) > MaxPostureSamples
		ok := len(e.SampleRequestIDs) == min(len(all), MaxPostureSamples) && slices.IsSorted(e.SampleRequestIDs)
		for _, id := range e.SampleRequestIDs {
			ok = ok && all[id]
		}
		if !ok {
			t.Errorf("%s: %s/%s -> %s:%d (%s) samples %q of %d plaintext ids", name, e.SourceWorkload, e.SourceIP,
				e.DestinationWorkload, e.DestinationPort, e.Reporter, e.SampleRequestIDs, len(all))
		}
	}
	if wantChoosing && !choosing {
		t.Errorf("%s: no edge with more than %d plaintext ids", name, MaxPostureSamples)
	}
}

// stripSamples: the edges without their samples (which of more than
// MaxPostureSamples ids is any, in both queries; checkSamples holds them).
func stripSamples(edges []PostureEdge) []PostureEdge {
	out := slices.Clone(edges)
	for i := range out {
		out[i].SampleRequestIDs = nil
	}
	return out
}

// sortedGraph orders edges fully (the queries order by requests only).
func sortedGraph(edges []GraphEdge) []GraphEdge {
	out := slices.Clone(edges)
	slices.SortFunc(out, func(a, b GraphEdge) int {
		if ka, kb := a.key(), b.key(); ka != kb {
			if lessKey(ka, kb) {
				return -1
			}
			return 1
		}
		if a.Reporter < b.Reporter {
			return -1
		}
		if a.Reporter > b.Reporter {
			return 1
		}
		return 0
	})
	return out
}

// The queries over flows the rollups replaced (commit 4098fc0), verbatim
// but for the database, as references.

// referencePostureSQL names the samples (for TestModernClickHouseRollupReads).
func referencePostureSQL(db string) string {
	return fmt.Sprintf(`SELECT source_principal, source_workload, source_namespace,
    if(source_workload = '' AND source_principal = '', source_ip, '') AS sip,
    max(destination_principal), destination_workload, destination_namespace, destination_port, reporter,
    sumIf(toUInt64(count), mtls = 1), sumIf(toUInt64(count), mtls = 2), sumIf(toUInt64(count), mtls NOT IN (1, 2)),
    min(ts), max(ts), minIf(ts, mtls = 2), maxIf(ts, mtls = 2),
    groupUniqArrayIf(%d)(request_id, mtls = 2 AND request_id != '') AS samples
FROM %s.flows
WHERE ts >= toDateTime(?) AND ts < toDateTime(?)
GROUP BY source_principal, source_workload, source_namespace, sip,
    destination_workload, destination_namespace, destination_port, reporter`, MaxPostureSamples, db)
}

func referencePostureEdges(ctx context.Context, c *ClickHouse, from, to time.Time) ([]PostureEdge, error) {
	rows, err := c.conn.Query(ctx, referencePostureSQL(c.db), from.Unix(), to.Unix())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanPostureEdges(rows)
}

func referenceTrendSQL(db string) string {
	return `SELECT day, sum(m), sum(p), sum(u) FROM (
    SELECT day,
        multiIf(countIf(reporter = 'destination') > 0, sumIf(m, reporter = 'destination'),
                countIf(reporter = 'source') > 0, sumIf(m, reporter = 'source'), sum(m)) AS m,
        multiIf(countIf(reporter = 'destination') > 0, sumIf(p, reporter = 'destination'),
                countIf(reporter = 'source') > 0, sumIf(p, reporter = 'source'), sum(p)) AS p,
        multiIf(countIf(reporter = 'destination') > 0, sumIf(u, reporter = 'destination'),
                countIf(reporter = 'source') > 0, sumIf(u, reporter = 'source'), sum(u)) AS u
    FROM (
        SELECT toDate(ts) AS day, reporter,
            source_principal, source_workload, source_namespace,
            if(source_workload = '' AND source_principal = '', source_ip, '') AS sip,
            destination_workload, destination_namespace, destination_port,
            sumIf(toUInt64(count), mtls = 1) AS m, sumIf(toUInt64(count), mtls = 2) AS p,
            sumIf(toUInt64(count), mtls NOT IN (1, 2)) AS u
        FROM ` + db + `.flows
        WHERE ts >= toDateTime(?) AND ts < toDateTime(?)
        GROUP BY day, reporter, source_principal, source_workload, source_namespace, sip,
            destination_workload, destination_namespace, destination_port
    )
    GROUP BY day, source_principal, source_workload, source_namespace, sip,
        destination_workload, destination_namespace, destination_port
)
GROUP BY day
ORDER BY day`
}

func referenceTrend(ctx context.Context, c *ClickHouse, from, to time.Time) ([]PostureDay, error) {
	rows, err := c.conn.Query(ctx, referenceTrendSQL(c.db), from.Unix(), to.Unix())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanPostureDays(rows)
}

func referenceGraphSQL(db string) string {
	return `SELECT source_principal, source_workload, source_namespace,
    if(source_workload = '' AND source_principal = '', source_ip, '') AS sip,
    destination_workload, destination_namespace, destination_service, reporter,
    sum(count) AS r, sumIf(count, response_code >= 500 AND response_code < 600),
    sumIf(count, response_code >= 400 AND response_code < 500),
    sumIf(count, mtls = 1), sumIf(count, mtls = 2), sumIf(count, mtls = 0), min(ts), max(ts)
FROM ` + db + `.flows_by_source
WHERE ts >= toDateTime(?) AND ts < toDateTime(?)
GROUP BY source_principal, source_workload, source_namespace, sip,
    destination_workload, destination_namespace, destination_service, reporter
ORDER BY r DESC
LIMIT ` + strconv.Itoa(maxGraphRows)
}

func referenceGraph(ctx context.Context, c *ClickHouse, from, to time.Time) ([]GraphEdge, error) {
	rows, err := c.conn.Query(ctx, referenceGraphSQL(c.db), from.Unix(), to.Unix())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanGraphEdges(rows)
}

func referenceServicesSQL(db string) string {
	return `SELECT destination_namespace, destination_service, destination_workload, sum(count) AS r
FROM ` + db + `.flows
WHERE ts >= toDateTime(?) AND ts < toDateTime(?)
    AND destination_service != '' AND destination_workload != '' AND identity_conflict = 0
    AND (reporter = 'destination' OR bitAnd(identity_resolved, ` + strconv.Itoa(int(models.ResolvedDestinationWorkload)) + `) != 0)
GROUP BY destination_namespace, destination_service, destination_workload
ORDER BY destination_namespace, destination_service, destination_workload`
}

func referenceServices(ctx context.Context, c *ClickHouse, from, to time.Time) ([]ServiceWorkload, error) {
	rows, err := c.conn.Query(ctx, referenceServicesSQL(c.db), from.Unix(), to.Unix())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanServiceWorkloads(rows)
}

// TestModernClickHouseRollupReads: on 26.7 through chDB (the schema of
// TestModernClickHouseSchema), the four reads from the rollups give the
// rows the queries over flows give, for a span cut at seconds.
func TestModernClickHouseRollupReads(t *testing.T) {
	run := testenv.CHDB(t)
	const db = DefaultDatabase
	mustRun(t, run, modernSchema(t, db)...)
	start := testenv.Recent().Add(-2 * time.Hour)
	data := rollupFlows(start)
	for i := 0; i < len(data); i += 1000 {
		mustRun(t, run, insertFlowsSQL(db, data[i:min(i+1000, len(data))], nil))
	}
	from, to := start.Add(17*time.Second), start.Add(2*time.Hour+41*time.Minute+13*time.Second)
	plan := planRollup(from.Unix(), to.Unix(), 0)
	if len(plan[0]) == 0 || len(plan[1]) == 0 || len(plan[2]) == 0 {
		t.Fatalf("plan %v does not read every level", plan)
	}
	bind := func(q string) string {
		q = strings.Replace(q, "?", strconv.FormatInt(from.Unix(), 10), 1)
		return strings.Replace(q, "?", strconv.FormatInt(to.Unix(), 10), 1)
	}
	rolled := func(outer string, states []string, day bool) string {
		return strings.Replace(outer, "{rollup}", rollupSource(db, plan, states, day), 1)
	}
	// Which of more than MaxPostureSamples ids is any: compare how many.
	samples := func(q string) string {
		return "SELECT * REPLACE (length(samples) AS samples) FROM (" + q + ") ORDER BY ALL"
	}
	sorted := func(q string) string { return "SELECT * FROM (" + q + ") ORDER BY ALL" }
	for _, c := range []struct{ name, rollup, flows string }{
		{"posture", samples(rolled(postureQuery, postureStates, false)), samples(bind(referencePostureSQL(db)))},
		{"trend", rolled(postureTrendQuery, postureTrendStates, true), bind(referenceTrendSQL(db))},
		{"graph", sorted(rolled(graphEdgesQuery, graphEdgesStates, false)), sorted(bind(referenceGraphSQL(db)))},
		{"services", rolled(serviceWorkloadsQuery, serviceWorkloadsStates, false), bind(referenceServicesSQL(db))},
	} {
		got, want := mustRun(t, run, c.rollup), mustRun(t, run, c.flows)
		if got != want || want == "" {
			t.Errorf("%s from the rollups:\n%s\nfrom flows:\n%s", c.name, got, want)
		}
	}
}
