package storage

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/test/testenv"
)

// postureFlow is one request from src to dst in namespace shop over tls,
// logged by reporter at t.
func postureFlow(base models.FlowIDBase, i int, t time.Time, reporter models.Reporter, src, dst string, tls models.TLS) models.Flow {
	f := models.Flow{
		ID: base.ID(i), TimestampMs: t.UnixMilli(), Reporter: reporter,
		Source:      models.Source{Workload: src, Namespace: "shop", IP: netip.MustParseAddr("10.0.0.7")},
		Destination: models.Destination{Workload: dst, Namespace: "shop", Service: dst + ".shop.svc.cluster.local", Port: 8080},
		Method:      "GET", Path: "/", ResponseCode: 200, TLS: tls, Count: 1,
		RequestID: fmt.Sprintf("req-%03d", i),
	}
	if tls == models.TLSMutual {
		f.Source.Principal = "cluster.local/ns/shop/sa/" + src
		f.Destination.Principal = "cluster.local/ns/shop/sa/" + dst
	}
	return f
}

func TestPostureEdgesCountsTLSStatesOnOneSide(t *testing.T) {
	store, _ := migratedStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := testenv.Recent().Truncate(time.Minute)
	base := models.NewFlowIDBase("otlp_logs", 0, start.UnixNano())
	var flows []models.Flow
	// frontend -> cart: 3 mTLS requests, logged on both sides; the client
	// side's records carry no TLS evidence.
	for i := range 3 {
		at := start.Add(time.Duration(i) * time.Second)
		flows = append(flows, postureFlow(base, len(flows), at, models.ReporterDestination, "frontend", "cart", models.TLSMutual),
			postureFlow(base, len(flows)+1, at, models.ReporterSource, "frontend", "cart", models.TLSUnknown))
		flows[len(flows)-1].Source.Principal = "cluster.local/ns/shop/sa/frontend"
	}
	// legacy -> cart: 2 plaintext and 1 unknown, destination only.
	for i, tls := range []models.TLS{models.TLSPlaintext, models.TLSUnknown, models.TLSPlaintext} {
		flows = append(flows, postureFlow(base, len(flows), start.Add(time.Duration(10+i)*time.Second), models.ReporterDestination, "legacy", "cart", tls))
	}
	// batch -> cart: source side only, unknown.
	flows = append(flows, postureFlow(base, len(flows), start.Add(20*time.Second), models.ReporterSource, "batch", "cart", models.TLSUnknown))
	// outside the span
	flows = append(flows, postureFlow(base, len(flows), start.Add(-2*time.Hour), models.ReporterDestination, "legacy", "cart", models.TLSPlaintext))
	if err := store.ConsumeFlows(ctx, flows); err != nil {
		t.Fatal(err)
	}

	edges, err := store.PostureEdges(ctx, start.Add(-time.Hour), start.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]PostureEdge{}
	for _, e := range edges {
		got[e.SourceWorkload] = e
	}
	if len(edges) != 3 {
		t.Fatalf("got %d edges, want 3 (frontend, legacy, batch): %+v", len(edges), edges)
	}
	fe := got["frontend"]
	if fe.Reporter != "destination" || fe.MTLS != 3 || fe.Unknown != 0 || fe.Plaintext != 0 {
		t.Errorf("frontend->cart = %s side %d/%d/%d (mtls/plaintext/unknown), want the destination's 3/0/0", fe.Reporter, fe.MTLS, fe.Plaintext, fe.Unknown)
	}
	if fe.DestinationPrincipal != "cluster.local/ns/shop/sa/cart" || fe.DestinationPort != 8080 {
		t.Errorf("frontend->cart destination principal %q port %d", fe.DestinationPrincipal, fe.DestinationPort)
	}
	lg := got["legacy"]
	if lg.Plaintext != 2 || lg.Unknown != 1 || lg.MTLS != 0 {
		t.Errorf("legacy->cart = %d/%d/%d, want 0/2/1", lg.MTLS, lg.Plaintext, lg.Unknown)
	}
	if want := []string{"req-006", "req-008"}; fmt.Sprint(lg.SampleRequestIDs) != fmt.Sprint(want) {
		t.Errorf("legacy->cart plaintext samples %v, want %v (the unknown request is not one)", lg.SampleRequestIDs, want)
	}
	if !lg.PlaintextFirstSeen.Equal(start.Add(10*time.Second)) || !lg.PlaintextLastSeen.Equal(start.Add(12*time.Second)) {
		t.Errorf("legacy->cart plaintext seen %v..%v, want %v..%v", lg.PlaintextFirstSeen, lg.PlaintextLastSeen,
			start.Add(10*time.Second), start.Add(12*time.Second))
	}
	b := got["batch"]
	if b.Reporter != "source" || b.Unknown != 1 || !b.PlaintextFirstSeen.IsZero() || len(b.SampleRequestIDs) != 0 {
		t.Errorf("batch->cart = %+v, want the source side's 1 unknown, no plaintext", b)
	}
}
