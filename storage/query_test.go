package storage

import (
	"context"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/models"
)

// queryStore is what the API reads; both stores must answer alike.
type queryStore interface {
	DetectionWriter
	ActionWriter
	consumer.Flows
	RecentDetections(ctx context.Context, limit int) ([]DetectionRow, error)
	RecentActions(ctx context.Context, limit int) ([]ActionRow, error)
	EdgeSummary(ctx context.Context, since time.Time) ([]EdgeSummary, error)
}

// summaryFlows: cart -> payments logged by both sides (destination 30,
// source 20: the proxies disagree), web -> cart by the destination only,
// a plaintext 10.9.8.7 -> payments, and an old cart -> payments call
// before since; written in two inserts so that ClickHouse holds one key
// in two parts.
func summaryFlows(since time.Time) (first, second []models.Flow) {
	base := models.NewFlowIDBase("query", 0, since.UnixNano())
	n := 0
	flow := func(at time.Time, rep models.Reporter, src models.Source, dstWL string, code uint16, count uint32) models.Flow {
		n++
		return models.Flow{
			ID: base.ID(n), TimestampMs: at.UnixMilli(), Reporter: rep, Source: src,
			Destination:  models.Destination{Workload: dstWL, Namespace: "shop", Service: dstWL + ".shop.svc.cluster.local"},
			ResponseCode: code, BytesSent: 100, BytesReceived: 10, Count: count,
		}
	}
	cart := models.Source{Principal: "cluster.local/ns/shop/sa/cart", Workload: "cart", Namespace: "shop", IP: netip.MustParseAddr("10.1.1.1")}
	web := models.Source{Principal: "cluster.local/ns/shop/sa/web", Workload: "web", Namespace: "shop"}
	plain := models.Source{IP: netip.MustParseAddr("10.9.8.7")}
	first = []models.Flow{
		flow(since.Add(time.Minute), models.ReporterDestination, cart, "payments", 200, 10),
		flow(since.Add(time.Minute), models.ReporterSource, cart, "payments", 200, 10),
		flow(since.Add(2*time.Minute), models.ReporterDestination, web, "cart", 403, 4),
		flow(since.Add(-2*time.Minute), models.ReporterDestination, cart, "payments", 200, 500), // before since
	}
	second = []models.Flow{
		flow(since.Add(3*time.Minute+10*time.Second), models.ReporterDestination, cart, "payments", 500, 20),
		flow(since.Add(3*time.Minute), models.ReporterSource, cart, "payments", 200, 10),
		flow(since.Add(2*time.Minute), models.ReporterDestination, plain, "payments", 401, 3),
	}
	return first, second
}

func TestQueriesClickHouseAndMemory(t *testing.T) {
	store, _ := migratedStore(t)
	for name, s := range map[string]queryStore{"clickhouse": store, "memory": NewMemory(100)} {
		t.Run(name, func(t *testing.T) { testQueries(t, s) })
	}
}

func testQueries(t *testing.T, s queryStore) {
	ctx := context.Background()
	since := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	first, second := summaryFlows(since)
	for _, batch := range [][]models.Flow{first, second} {
		if err := s.ConsumeFlows(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.EdgeSummary(ctx, since)
	if err != nil {
		t.Fatal(err)
	}
	svc := func(wl string) string { return wl + ".shop.svc.cluster.local" }
	want := []EdgeSummary{
		{
			SourcePrincipal: "cluster.local/ns/shop/sa/cart", SourceWorkload: "cart", SourceNamespace: "shop",
			DestinationWorkload: "payments", DestinationNamespace: "shop", DestinationService: svc("payments"),
			Reporter:   "destination",
			EdgeCounts: EdgeCounts{Requests: 30, Responses2xx: 10, Responses5xx: 20, BytesSent: 200, BytesReceived: 20},
			LastSeen:   since.Add(3 * time.Minute),
		},
		{
			SourcePrincipal: "cluster.local/ns/shop/sa/web", SourceWorkload: "web", SourceNamespace: "shop",
			DestinationWorkload: "cart", DestinationNamespace: "shop", DestinationService: svc("cart"),
			Reporter:   "destination",
			EdgeCounts: EdgeCounts{Requests: 4, Responses4xx: 4, Responses403: 4, BytesSent: 100, BytesReceived: 10},
			LastSeen:   since.Add(2 * time.Minute),
		},
		{
			SourceIP:            "10.9.8.7",
			DestinationWorkload: "payments", DestinationNamespace: "shop", DestinationService: svc("payments"),
			Reporter:   "destination",
			EdgeCounts: EdgeCounts{Requests: 3, Responses4xx: 3, Responses401: 3, BytesSent: 100, BytesReceived: 10},
			LastSeen:   since.Add(2 * time.Minute),
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("EdgeSummary(since):\n got %+v\nwant %+v", got, want)
	}
	// From minute 3 on, the two sides saw 20 and 10: still the busier one.
	got, err = s.EdgeSummary(ctx, since.Add(3*time.Minute))
	if err != nil || len(got) != 1 || got[0].Requests != 20 || got[0].Reporter != "destination" {
		t.Errorf("EdgeSummary(since+3m) = %+v, %v; want the cart -> payments destination side, 20 requests", got, err)
	}
	if got, err := s.EdgeSummary(ctx, since.Add(time.Hour)); err != nil || len(got) != 0 {
		t.Errorf("EdgeSummary(later) = %+v, %v; want none", got, err)
	}

	// Detections: the newest version of the newest ones.
	det := func(id string, version uint64, at time.Time, score float64) DetectionRow {
		return DetectionRow{DetectionID: id, Version: version, DetectedAt: at, WindowStart: at.Add(-time.Minute),
			WindowEnd: at, Kind: "scan", Severity: "high", Score: score, SourceWorkload: "cart", SourceNamespace: "shop",
			Evidence: `{"summary":"<img src=x onerror=alert(1)>"}`}
	}
	for _, d := range []DetectionRow{
		det("d-old", 1, since, 1),
		det("d-mid", 1, since.Add(time.Minute), 2),
		det("d-new", 1, since.Add(2*time.Minute), 3),
		det("d-mid", 2, since.Add(time.Minute), 9), // a later version of d-mid, detected at the same time
	} {
		if err := s.WriteDetection(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := s.RecentDetections(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0].DetectionID != "d-new" || ds[1].DetectionID != "d-mid" || ds[1].Score != 9 || ds[1].Version != 2 {
		t.Errorf("RecentDetections(2) = %+v; want d-new, then d-mid version 2", ds)
	}
	if len(ds) > 0 && (ds[0].Evidence != `{"summary":"<img src=x onerror=alert(1)>"}` || !ds[0].DetectedAt.Equal(since.Add(2*time.Minute))) {
		t.Errorf("RecentDetections: %+v does not read back what was written", ds[0])
	}
	if ds, err := s.RecentDetections(ctx, 100); err != nil || len(ds) != 3 {
		t.Errorf("RecentDetections(100) = %d rows, %v; want 3 (one per detection)", len(ds), err)
	}

	// Actions: the newest rows first.
	for i, state := range []string{"applied", "promoted", "revoked"} {
		a := ActionRow{ActionID: "a1", At: since.Add(time.Duration(i) * time.Minute), Kind: "block_edge",
			Mode: "enforce", State: state, Actor: "alice", Reason: "r" + state, Target: "shop/cart"}
		if i == 0 {
			a.ExpiresAt = since.Add(time.Hour)
		}
		if err := s.WriteAction(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	as, err := s.RecentActions(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 2 || as[0].State != "revoked" || as[1].State != "promoted" || !as[0].At.Equal(since.Add(2*time.Minute)) || !as[1].ExpiresAt.IsZero() {
		t.Errorf("RecentActions(2) = %+v; want revoked, then promoted (no expiry)", as)
	}
	if as, err := s.RecentActions(ctx, 0); err != nil || len(as) != 1 {
		t.Errorf("RecentActions(0) = %d rows, %v; want 1 (limits are at least 1)", len(as), err)
	}
	if as, err := s.RecentActions(ctx, 100); err != nil || len(as) != 3 || !as[2].ExpiresAt.Equal(since.Add(time.Hour)) {
		t.Errorf("RecentActions(100) = %+v, %v; want all 3, the oldest with its expiry", as, err)
	}
}
