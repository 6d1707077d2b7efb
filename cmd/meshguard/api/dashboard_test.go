package api

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshguard/meshguard/storage"
)

// TestBuildGraphFoldsServices: a host one workload stands for is that
// workload's node; a host seen reaching two (a rollout) keeps its own
// node only for callers the destination side did not see; the two sides
// of one edge count once.
func TestBuildGraphFoldsServices(t *testing.T) {
	from := time.Date(2026, 11, 16, 9, 0, 0, 0, time.UTC)
	to := from.Add(10 * time.Minute)
	web := storage.GraphEdge{SourceWorkload: "web", SourceNamespace: "front", SourcePrincipal: "cluster.local/ns/front/sa/web"}
	edge := func(e storage.GraphEdge, wl, host, rep string, n, mtls, plain uint64) storage.GraphEdge {
		e.DestinationWorkload, e.DestinationService, e.Reporter, e.Requests, e.MTLS, e.Plaintext = wl, host, rep, n, mtls, plain
		if wl != "" {
			e.DestinationNamespace = "shop"
		}
		e.FirstSeen, e.LastSeen = from, to.Add(-time.Second)
		return e
	}
	ads, cart := "ads.shop.svc.cluster.local", "cart.shop.svc.cluster.local"
	rows := []storage.GraphEdge{
		edge(web, "", ads, "source", 10, 0, 0),           // folded into ads-v1
		edge(web, "ads-v1", ads, "destination", 9, 9, 0), // the same requests, seen arriving
		edge(web, "", cart, "source", 6, 6, 0),           // cart-v1 and cart-v2 behind it
		edge(web, "cart-v1", cart, "destination", 3, 0, 3),
		edge(web, "cart-v2", cart, "destination", 3, 3, 0),
		edge(storage.GraphEdge{SourceIP: "10.0.0.9"}, "", cart, "source", 2, 0, 0), // only the host is known
	}
	svcs := []storage.ServiceWorkload{
		{Namespace: "shop", Service: ads, Workload: "ads-v1", Requests: 9},
		{Namespace: "shop", Service: cart, Workload: "cart-v1", Requests: 3},
		{Namespace: "shop", Service: cart, Workload: "cart-v2", Requests: 3},
	}
	g := buildGraph(rows, svcs, from, to)
	var ids []string
	for _, n := range g.Nodes {
		ids = append(ids, n.ID)
	}
	want := []string{"ip:10.0.0.9", "svc:" + cart, "wl:front/web", "wl:shop/ads-v1", "wl:shop/cart-v1", "wl:shop/cart-v2"}
	if !slices.Equal(ids, want) {
		t.Errorf("nodes %q\nwant  %q", ids, want)
	}
	byID := map[string]graphEdgeJSON{}
	for _, e := range g.Edges {
		byID[e.ID] = e
	}
	if len(g.Edges) != 4 {
		t.Errorf("%d edges, want 4: %+v", len(g.Edges), g.Edges)
	}
	e := byID["wl:front/web -> wl:shop/ads-v1"]
	if e.Requests != 10 || e.Reporter != "source" || e.TLS != tlsMutual || e.RPS != 10.0/600 {
		t.Errorf("web -> ads-v1 %+v; want the source side's 10 requests, mTLS from the destination side, 10/600 rps", e)
	}
	if e := byID["wl:front/web -> wl:shop/cart-v1"]; e.TLS != tlsPlaintext || e.Requests != 3 {
		t.Errorf("web -> cart-v1 %+v; want 3 plaintext requests", e)
	}
	if e := byID["ip:10.0.0.9 -> svc:"+cart]; e.TLS != tlsUnknown || e.Requests != 2 {
		t.Errorf("ip -> cart host %+v; want 2 requests, TLS unknown", e)
	}
	for _, n := range g.Nodes {
		if n.ID == "wl:shop/ads-v1" && !slices.Equal(n.Services, []string{ads}) {
			t.Errorf("ads-v1 folds %q, want its host", n.Services)
		}
	}
}

// TestAnnotateFanout: a scan marks only the destinations its evidence
// lists; a detection naming its destination marks that edge.
func TestAnnotateFanout(t *testing.T) {
	from := time.Date(2026, 11, 16, 9, 0, 0, 0, time.UTC)
	src := storage.GraphEdge{SourceWorkload: "cart", SourceNamespace: "shop", Reporter: "destination", Requests: 1}
	var rows []storage.GraphEdge
	for _, d := range []string{"a", "b", "c"} {
		e := src
		e.DestinationWorkload, e.DestinationNamespace = d, "shop"
		rows = append(rows, e)
	}
	g := buildGraph(rows, nil, from, from.Add(time.Minute))
	annotate(&g, []storage.DetectionRow{
		{DetectionID: "scan-1", Kind: "scan", WindowEnd: from.Add(time.Minute), SourceWorkload: "cart", SourceNamespace: "shop",
			Evidence: `{"destinations":["shop/a","shop/b"]}`},
		{DetectionID: "old", Kind: "scan", WindowEnd: from.Add(-time.Minute), SourceWorkload: "cart", SourceNamespace: "shop", Evidence: `{}`},
		{DetectionID: "lm-1", IncidentID: "scan-1", Kind: "lateral_movement", WindowEnd: from.Add(time.Minute), SourceWorkload: "cart",
			SourceNamespace: "shop", DestinationWorkload: "b", DestinationNamespace: "shop", Evidence: `{}`},
	}, from)
	got := map[string]graphEdgeJSON{}
	for _, e := range g.Edges {
		got[e.Destination] = e
	}
	if e := got["wl:shop/a"]; !e.Anomalous || !e.Fanout || !slices.Equal(e.Detections, []string{"scan-1"}) {
		t.Errorf("cart -> a %+v; want the scan's fan-out", e)
	}
	if e := got["wl:shop/b"]; !e.Anomalous || e.Fanout || !slices.Equal(e.Incidents, []string{"scan-1"}) || !slices.Equal(e.Kinds, []string{"scan", "lateral_movement"}) {
		t.Errorf("cart -> b %+v; want named by lm-1 (not only fan-out), one incident, two kinds", e)
	}
	if e := got["wl:shop/c"]; e.Anomalous {
		t.Errorf("cart -> c %+v: not probed, not anomalous", e)
	}
	if !slices.Equal(g.Kinds, []string{"lateral_movement", "scan"}) {
		t.Errorf("kinds %q", g.Kinds)
	}
}

func TestGraphEndpoint(t *testing.T) {
	e := newEnv(t, nil)
	var g graphJSON
	w := do(e.h, "GET", "/api/v1/graph?since=15m", viewerToken, nil)
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &g) != nil {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if len(g.Nodes) != 5 || len(g.Edges) != 4 || !slices.Equal(g.Namespaces, []string{"", "frontend", "payments", "shop"}) {
		t.Errorf("graph %d nodes, %d edges, namespaces %q; want 5, 4, the seed's", len(g.Nodes), len(g.Edges), g.Namespaces)
	}
	w = do(e.h, "GET", "/api/v1/graph?namespace=frontend", viewerToken, nil)
	if json.Unmarshal(w.Body.Bytes(), &g) != nil || len(g.Edges) != 1 || g.Edges[0].Source != "wl:frontend/web" || !g.Edges[0].Anomalous {
		t.Errorf("namespace frontend: %+v; want web -> cart, anomalous", g.Edges)
	}
	w = do(e.h, "GET", "/api/v1/graph?kind=credential_stuffing", viewerToken, nil)
	if json.Unmarshal(w.Body.Bytes(), &g) != nil || len(g.Edges) != 1 || len(g.Nodes) != 2 {
		t.Errorf("kind credential_stuffing: %d edges, %d nodes; want 1, 2", len(g.Edges), len(g.Nodes))
	}
	for _, bad := range []string{"since=0s", "since=48h", "since=x"} {
		if w := do(e.h, "GET", "/api/v1/graph?"+bad, viewerToken, nil); w.Code != 400 {
			t.Errorf("%s: %d, want 400", bad, w.Code)
		}
	}
	q := url.Values{"source": {"wl:frontend/web"}, "destination": {"wl:shop/cart"}}
	var v edgeViewJSON
	w = do(e.h, "GET", "/api/v1/graph/edge?"+q.Encode(), viewerToken, nil)
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &v) != nil || v.Edge == nil || v.Edge.Requests != 7 || v.Baseline != nil ||
		len(v.Detections) != 1 || v.Detections[0].ID != "det-1" {
		t.Errorf("edge view %d %s; want web -> cart now (7 requests), no baseline, det-1", w.Code, w.Body)
	}
	q.Set("destination", "wl:shop/nothing")
	if w := do(e.h, "GET", "/api/v1/graph/edge?"+q.Encode(), viewerToken, nil); w.Code != 404 {
		t.Errorf("unknown edge: %d, want 404", w.Code)
	}
	if w := do(e.h, "GET", "/api/v1/graph", "", nil); w.Code != 401 {
		t.Errorf("without a token: %d, want 401", w.Code)
	}
}

// storeOnly is a Store without the dashboard's queries.
type storeOnly struct{ Store }

func TestDashboardNeedsItsQueries(t *testing.T) {
	e := newEnv(t, func(_ *Config, d *Deps) { d.Store = storeOnly{d.Store} })
	for _, p := range []string{"/api/v1/graph", "/api/v1/audit"} {
		if w := do(e.h, "GET", p, viewerToken, nil); w.Code != 501 {
			t.Errorf("%s on a store without them: %d, want 501", p, w.Code)
		}
	}
}

func TestAuditEndpoint(t *testing.T) {
	e := newEnv(t, nil)
	for range 3 {
		if err := e.store.WriteAction(context.Background(), storage.ActionRow{ActionID: "act-1", At: e.now, DetectionID: "det-1",
			Kind: "block_edge", Mode: "dry-run", State: "skipped", Actor: "meshguard", Reason: "held"}); err != nil {
			t.Fatal(err)
		}
	}
	var body struct{ Groups []auditGroupJSON }
	w := do(e.h, "GET", "/api/v1/audit?action=skipped&actor=meshguard", viewerToken, nil)
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &body) != nil || len(body.Groups) != 1 || body.Groups[0].Count != 3 {
		t.Errorf("audit %d %s; want one group of 3 skips", w.Code, w.Body)
	}
	w = do(e.h, "GET", "/api/v1/audit", viewerToken, nil)
	if json.Unmarshal(w.Body.Bytes(), &body) != nil || len(body.Groups) != 2 {
		t.Errorf("audit unfiltered: %s; want the seed's row and the skips", w.Body)
	}
}

// TestIngestEndpoint reads the metrics under the names registerConsumer
// gives them (cmd/meshguard/server.go).
func TestIngestEndpoint(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, func(_ *Config, d *Deps) { d.Registry = reg })
	var s ingestJSON
	if w := do(e.h, "GET", "/api/v1/ingest", viewerToken, nil); json.Unmarshal(w.Body.Bytes(), &s) != nil || s.Running {
		t.Errorf("without ingest metrics: %s; want running false", w.Body)
	}
	fetched := time.Unix(1_800_000_000, 0).UTC()
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "meshguard_ingest_assigned_partitions"}, func() float64 { return 2 }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "meshguard_ingest_stalled"}, func() float64 { return 1 }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "meshguard_ingest_last_fetch_timestamp_seconds"}, func() float64 { return float64(fetched.Unix()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "meshguard_ingest_last_commit_timestamp_seconds"}, func() float64 { return 0 }),
	)
	lag := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "meshguard_ingest_lag"}, []string{"topic", "partition"})
	lag.WithLabelValues("otlp_logs", "1").Set(40)
	lag.WithLabelValues("otlp_logs", "0").Set(2)
	hist := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "meshguard_ingest_batch_latency_seconds", Buckets: prometheus.ExponentialBuckets(0.05, 2, 12)})
	for range 99 {
		hist.Observe(0.07)
	}
	hist.Observe(3)
	reg.MustRegister(lag, hist)
	w := do(e.h, "GET", "/api/v1/ingest", viewerToken, nil)
	if err := json.Unmarshal(w.Body.Bytes(), &s); err != nil {
		t.Fatal(err)
	}
	if !s.Running || s.AssignedPartitions != 2 || !s.Stalled || s.LagTotal != 42 || len(s.Partitions) != 2 || s.Partitions[0].Partition != 0 ||
		s.LastFetch == nil || !s.LastFetch.Equal(fetched) || s.LastCommit != nil || s.Batches != 100 || s.BatchLatencyP99 != 0.1 {
		t.Errorf("ingest view %s", w.Body)
	}
}
