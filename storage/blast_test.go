package storage

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/models"
)

// blastFlows: cart calls payments 40 times (logged by both sides), web
// calls cart 5 times, and a plaintext 10.9.8.7 calls payments 3 times,
// all within the hour before start; one more cart call is outside it.
func blastFlows(start time.Time) []models.Flow {
	base := models.NewFlowIDBase("test", 0, start.UnixNano())
	var flows []models.Flow
	add := func(at time.Time, rep models.Reporter, src models.Source, dstWL string, count uint32) {
		flows = append(flows, models.Flow{
			ID: base.ID(len(flows)), TimestampMs: at.UnixMilli(), Reporter: rep, Source: src,
			Destination: models.Destination{Workload: dstWL, Namespace: "shop"}, ResponseCode: 200, Count: count,
		})
	}
	cart := models.Source{Principal: "cluster.local/ns/shop/sa/cart", Workload: "cart", Namespace: "shop"}
	web := models.Source{Principal: "cluster.local/ns/shop/sa/web", Workload: "web", Namespace: "shop"}
	plain := models.Source{IP: netip.MustParseAddr("10.9.8.7")}
	for i := range 4 {
		at := start.Add(-time.Duration(i+1) * 10 * time.Minute)
		add(at, models.ReporterSource, cart, "payments", 10)
		add(at, models.ReporterDestination, cart, "payments", 10)
	}
	add(start.Add(-5*time.Minute), models.ReporterDestination, web, "cart", 5)
	add(start.Add(-5*time.Minute), models.ReporterDestination, plain, "payments", 3)
	add(start.Add(time.Minute), models.ReporterDestination, cart, "payments", 1000) // after the window
	return flows
}

func TestBlastRadiusClickHouseAndMemory(t *testing.T) {
	start := time.Now().UTC().Truncate(time.Hour)
	flows := blastFlows(start)
	store, _ := migratedStore(t)
	mem := NewMemory(100)
	ctx := context.Background()
	if err := store.ConsumeFlows(ctx, flows); err != nil {
		t.Fatal(err)
	}
	_ = mem.ConsumeFlows(ctx, flows)
	from, to := start.Add(-24*time.Hour), start
	tests := []struct {
		name string
		q    BlastQuery
		want BlastRadius
	}{
		{"edge", BlastQuery{SourcePrincipal: "cluster.local/ns/shop/sa/cart", DestinationNamespace: "shop", DestinationWorkload: "payments"}, BlastRadius{40, 1}},
		{"quarantine", BlastQuery{SourcePrincipal: "cluster.local/ns/shop/sa/cart", SourceNamespace: "shop", SourceWorkload: "cart", Inbound: true}, BlastRadius{45, 2}},
		{"plaintext", BlastQuery{SourceIP: "10.9.8.7", DestinationNamespace: "shop", DestinationWorkload: "payments"}, BlastRadius{3, 1}},
		{"nothing", BlastQuery{SourcePrincipal: "cluster.local/ns/shop/sa/none"}, BlastRadius{}},
		{"sql in values", BlastQuery{SourcePrincipal: "x' OR 1=1 --"}, BlastRadius{}},
	}
	for _, tt := range tests {
		tt.q.From, tt.q.To = from, to
		for name, b := range map[string]BlastQuerier{"clickhouse": store, "memory": mem} {
			got, err := b.BlastRadius(ctx, tt.q)
			if err != nil || got != tt.want {
				t.Errorf("%s %s: %+v %v, want %+v", name, tt.name, got, err, tt.want)
			}
		}
	}
	if _, err := store.BlastRadius(ctx, BlastQuery{From: from, To: to}); !consumer.IsPermanent(err) {
		t.Errorf("a query naming no source: %v", err)
	}
}
