package models

import (
	"net/netip"
	"testing"
)

func TestParsePrincipal(t *testing.T) {
	tests := []struct {
		in     string
		want   Principal
		wantOK bool
	}{
		{"spiffe://cluster.local/ns/shop/sa/cart", Principal{"cluster.local", "shop", "cart"}, true},
		{"cluster.local/ns/shop/sa/cart", Principal{"cluster.local", "shop", "cart"}, true},
		{"td.example/ns/a-b/sa/default", Principal{"td.example", "a-b", "default"}, true},
		{"", Principal{}, false},
		{"-", Principal{}, false},
		{"spiffe://cluster.local/ns//sa/cart", Principal{}, false},
		{"spiffe://cluster.local/ns/shop/sa/", Principal{}, false},
		{"spiffe:///ns/shop/sa/cart", Principal{}, false},
		{"cluster.local/ns/shop/sa/cart/extra", Principal{}, false},
		{"cluster.local/x/ns/shop/sa/cart", Principal{}, false},
		{"cluster.local/sa/cart/ns/shop", Principal{}, false},
	}
	for _, tt := range tests {
		got, ok := ParsePrincipal(tt.in)
		if ok != tt.wantOK || got != tt.want {
			t.Errorf("ParsePrincipal(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
	if got := NormalizePrincipal("spiffe://cluster.local/ns/shop/sa/cart"); got != "cluster.local/ns/shop/sa/cart" {
		t.Errorf("NormalizePrincipal = %q", got)
	}
	if got := NormalizePrincipal("<!channel>"); got != "" {
		t.Errorf("NormalizePrincipal(junk) = %q, want empty", got)
	}
	p, _ := ParsePrincipal("spiffe://cluster.local/ns/shop/sa/cart")
	if p.String() != "cluster.local/ns/shop/sa/cart" {
		t.Errorf("String() = %q", p.String())
	}
}

func TestServiceName(t *testing.T) {
	tests := []struct {
		in, name, ns string
		ok           bool
	}{
		{"httpbin.foo.svc.cluster.local", "httpbin", "foo", true},
		{"httpbin.foo.svc", "httpbin", "foo", true},
		{"httpbin.foo", "", "", false},
		{"api.example.com", "", "", false},
		{"httpbin", "", "", false},
		{".foo.svc.cluster.local", "", "", false},
		{"a..svc", "", "", false},
	}
	for _, tt := range tests {
		name, ns, ok := ServiceName(tt.in)
		if name != tt.name || ns != tt.ns || ok != tt.ok {
			t.Errorf("ServiceName(%q) = %q, %q, %v", tt.in, name, ns, ok)
		}
	}
}

func TestEdgePrefersMostSpecificIdentity(t *testing.T) {
	ip := netip.MustParseAddr("10.44.1.23")
	tests := []struct {
		name string
		flow Flow
		want string
	}{
		{"workloads", Flow{
			Source:      Source{Workload: "productpage-v1", Namespace: "bookinfo", Principal: "cluster.local/ns/bookinfo/sa/productpage", IP: ip},
			Destination: Destination{Workload: "reviews-v2", Namespace: "bookinfo", Service: "reviews.bookinfo.svc.cluster.local"},
		}, "bookinfo/productpage-v1 -> bookinfo/reviews-v2"},
		{"principal and service only", Flow{
			Source:      Source{Principal: "cluster.local/ns/shop/sa/cart", IP: ip},
			Destination: Destination{Service: "payments.billing.svc.cluster.local"},
		}, "shop/sa:cart -> billing/payments"},
		{"plaintext ip", Flow{
			Source:      Source{IP: ip},
			Destination: Destination{Principal: "cluster.local/ns/billing/sa/payments"},
		}, "10.44.1.23 -> billing/sa:payments"},
		{"nothing known", Flow{}, "unknown -> unknown"},
	}
	for _, tt := range tests {
		if got := tt.flow.Edge().String(); got != tt.want {
			t.Errorf("%s: Edge() = %q, want %q", tt.name, got, tt.want)
		}
	}
	a := Flow{Source: Source{Workload: "a", Namespace: "x"}, Destination: Destination{Workload: "b", Namespace: "y"}}
	b := a
	b.Path = "/other"
	m := map[Edge]int{a.Edge(): 1}
	if m[b.Edge()] != 1 {
		t.Error("flows on the same edge must share the map key")
	}
}

func TestReporter(t *testing.T) {
	for _, r := range []Reporter{ReporterUnknown, ReporterSource, ReporterDestination} {
		if got := ParseReporter(r.String()); got != r {
			t.Errorf("ParseReporter(%q) = %v", r.String(), got)
		}
	}
	if ParseReporter("server") != ReporterDestination || ParseReporter("client") != ReporterSource {
		t.Error("Envoy side names not understood")
	}
	if ParseReporter("evil") != ReporterUnknown || Reporter(9).String() != "unknown" {
		t.Error("unknown reporter not mapped to unknown")
	}
}

func TestFlowIDStableAndDistinct(t *testing.T) {
	a := NewFlowIDBase("otlp_logs", 3, 1000)
	if a.ID(7) != NewFlowIDBase("otlp_logs", 3, 1000).ID(7) {
		t.Fatal("same coordinates must give the same id (redelivery)")
	}
	seen := map[FlowID]string{}
	add := func(id FlowID, what string) {
		if prev, dup := seen[id]; dup {
			t.Fatalf("id collision: %s and %s", prev, what)
		}
		seen[id] = what
	}
	for _, topic := range []string{"otlp_logs", "otlp_spans", "otlp_logs2"} {
		for p := int32(0); p < 4; p++ {
			for off := int64(0); off < 50; off++ {
				b := NewFlowIDBase(topic, p, off)
				for i := 0; i < 50; i++ {
					add(b.ID(i), topic)
				}
			}
		}
	}
	if len(NewFlowIDBase("t", 0, 0).ID(0).String()) != 32 {
		t.Error("FlowID.String must be 32 hex characters")
	}
}

func TestHotPathDoesNotAllocate(t *testing.T) {
	f := Flow{
		Source:      Source{Principal: "cluster.local/ns/shop/sa/cart"},
		Destination: Destination{Service: "payments.billing.svc.cluster.local"},
	}
	var sink Edge
	var id FlowID
	allocs := testing.AllocsPerRun(100, func() {
		sink = f.Edge()
		id = NewFlowIDBase("otlp_logs", 1, 42).ID(3)
	})
	if allocs != 0 {
		t.Errorf("Edge+FlowID allocate %v times per flow, want 0", allocs)
	}
	_, _ = sink, id
}

func BenchmarkEdge(b *testing.B) {
	f := Flow{
		Source:      Source{Principal: "cluster.local/ns/shop/sa/cart"},
		Destination: Destination{Service: "payments.billing.svc.cluster.local"},
	}
	m := map[Edge]int{}
	b.ReportAllocs()
	for b.Loop() {
		m[f.Edge()]++
	}
}

func BenchmarkFlowID(b *testing.B) {
	b.ReportAllocs()
	var id FlowID
	for i := 0; b.Loop(); i++ {
		base := NewFlowIDBase("otlp_logs", 1, int64(i))
		for j := 0; j < 100; j++ {
			id = base.ID(j)
		}
	}
	_ = id
}
