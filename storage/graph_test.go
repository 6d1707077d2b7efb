package storage

import (
	"context"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/test/testenv"
)

// dashboardStore is what the dashboard reads besides queryStore; both
// stores must answer alike.
type dashboardStore interface {
	ActionWriter
	consumer.Flows
	GraphEdges(ctx context.Context, from, to time.Time) ([]GraphEdge, error)
	ServiceWorkloads(ctx context.Context, from, to time.Time) ([]ServiceWorkload, error)
	AuditSummary(ctx context.Context, f AuditFilter) ([]AuditGroup, error)
}

func TestDashboardQueriesClickHouseAndMemory(t *testing.T) {
	store, _ := migratedStore(t)
	// The oldest server supported: the same queries must run there.
	_, db18 := testenv.ClickHouse18(t)
	cfg := DefaultClickHouseConfig()
	cfg.Addr, cfg.Database = []string{testenv.ClickHouse18Addr(t)}, db18
	old, err := NewClickHouse(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { old.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := old.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]dashboardStore{"clickhouse": store, "clickhouse-18.16": old, "memory": NewMemory(100)} {
		t.Run(name, func(t *testing.T) {
			testGraphQueries(t, s)
			testAuditSummary(t, s)
		})
	}
}

// TestResolvedDestinationBit: serviceWorkloadsQuery tests bit 8.
func TestResolvedDestinationBit(t *testing.T) {
	if models.ResolvedDestinationWorkload != 8 {
		t.Fatalf("models.ResolvedDestinationWorkload is %d; serviceWorkloadsQuery's bitAnd must follow", models.ResolvedDestinationWorkload)
	}
}

// graphFlows: web calls ads through its Service on both sides (the source
// side reports only the host, the destination side the workload too),
// over mTLS with one 503; a plaintext IP caller reaches ads with a 401;
// a flow resolved to ads-v1 from the host; a claim the cluster
// contradicts (left out of the service map); one flow outside the span.
func graphFlows(from time.Time) []models.Flow {
	base := models.NewFlowIDBase("graph-test", 0, from.UnixNano())
	host := "ads.shop.svc.cluster.local"
	web := models.Source{Workload: "web", Namespace: "front", Principal: "cluster.local/ns/front/sa/web"}
	var flows []models.Flow
	add := func(at time.Duration, rep models.Reporter, src models.Source, dst models.Destination, code uint16, tls models.TLS, n uint32) *models.Flow {
		flows = append(flows, models.Flow{ID: base.ID(len(flows)), TimestampMs: from.Add(at).UnixMilli(), Reporter: rep,
			Source: src, Destination: dst, ResponseCode: code, TLS: tls, Count: n})
		return &flows[len(flows)-1]
	}
	add(10*time.Second, models.ReporterSource, web, models.Destination{Service: host}, 200, models.TLSMutual, 4)
	add(20*time.Second, models.ReporterDestination, web, models.Destination{Service: host, Workload: "ads-v1", Namespace: "shop"}, 200, models.TLSMutual, 4)
	add(30*time.Second, models.ReporterDestination, web, models.Destination{Service: host, Workload: "ads-v1", Namespace: "shop"}, 503, models.TLSMutual, 1)
	add(40*time.Second, models.ReporterDestination, models.Source{IP: netip.MustParseAddr("10.1.2.3")},
		models.Destination{Service: host, Workload: "ads-v1", Namespace: "shop"}, 401, models.TLSPlaintext, 2)
	r := add(50*time.Second, models.ReporterSource, models.Source{Workload: "cart", Namespace: "shop"},
		models.Destination{Service: "pay.shop.svc.cluster.local", Workload: "pay-v2", Namespace: "shop"}, 200, models.TLSUnknown, 3)
	r.Resolved = models.ResolvedDestinationWorkload | models.ResolvedDestinationNamespace
	c := add(55*time.Second, models.ReporterDestination, models.Source{Workload: "cart", Namespace: "shop"},
		models.Destination{Service: "pay.shop.svc.cluster.local", Workload: "evil", Namespace: "shop"}, 200, models.TLSUnknown, 1)
	c.IdentityConflict = true
	add(2*time.Hour, models.ReporterSource, web, models.Destination{Service: host}, 200, models.TLSMutual, 100)
	return flows
}

func testGraphQueries(t *testing.T, s dashboardStore) {
	ctx := context.Background()
	from := testenv.Recent()
	to := from.Add(time.Hour)
	if err := s.ConsumeFlows(ctx, graphFlows(from)); err != nil {
		t.Fatal(err)
	}
	got, err := s.GraphEdges(ctx, from, to)
	if err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) time.Time { return from.Add(d).UTC() }
	host := "ads.shop.svc.cluster.local"
	want := []GraphEdge{
		{SourcePrincipal: "cluster.local/ns/front/sa/web", SourceWorkload: "web", SourceNamespace: "front",
			DestinationWorkload: "ads-v1", DestinationNamespace: "shop", DestinationService: host, Reporter: "destination",
			Requests: 5, Errors5xx: 1, MTLS: 5, FirstSeen: at(20 * time.Second), LastSeen: at(30 * time.Second)},
		{SourcePrincipal: "cluster.local/ns/front/sa/web", SourceWorkload: "web", SourceNamespace: "front",
			DestinationService: host, Reporter: "source", Requests: 4, MTLS: 4, FirstSeen: at(10 * time.Second), LastSeen: at(10 * time.Second)},
		{SourceWorkload: "cart", SourceNamespace: "shop", DestinationWorkload: "pay-v2", DestinationNamespace: "shop",
			DestinationService: "pay.shop.svc.cluster.local", Reporter: "source", Requests: 3, UnknownTLS: 3, FirstSeen: at(50 * time.Second), LastSeen: at(50 * time.Second)},
		{SourceIP: "10.1.2.3", DestinationWorkload: "ads-v1", DestinationNamespace: "shop", DestinationService: host,
			Reporter: "destination", Requests: 2, Errors4xx: 2, Plaintext: 2, FirstSeen: at(40 * time.Second), LastSeen: at(40 * time.Second)},
		{SourceWorkload: "cart", SourceNamespace: "shop", DestinationWorkload: "evil", DestinationNamespace: "shop",
			DestinationService: "pay.shop.svc.cluster.local", Reporter: "destination", Requests: 1, UnknownTLS: 1, FirstSeen: at(55 * time.Second), LastSeen: at(55 * time.Second)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("GraphEdges:\n got %+v\nwant %+v", got, want)
	}
	svcs, err := s.ServiceWorkloads(ctx, from, to)
	if err != nil {
		t.Fatal(err)
	}
	wantSvcs := []ServiceWorkload{
		{Namespace: "shop", Service: host, Workload: "ads-v1", Requests: 7},
		{Namespace: "shop", Service: "pay.shop.svc.cluster.local", Workload: "pay-v2", Requests: 3},
	}
	if !reflect.DeepEqual(svcs, wantSvcs) {
		t.Errorf("ServiceWorkloads:\n got %+v\nwant %+v", svcs, wantSvcs)
	}
	if got, err := s.GraphEdges(ctx, from.Add(time.Minute), to); err != nil || len(got) != 0 {
		t.Errorf("GraphEdges after the flows = %+v, %v; want none", got, err)
	}
}
