package posture

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/meshguard/meshguard/storage"
	"github.com/meshguard/meshguard/test/testenv"
	"github.com/meshguard/meshguard/test/zerotrust"
)

func edge(srcNS, src, ip, dstNS, dst string, port uint16, mtls, plain, unknown uint64) storage.PostureEdge {
	e := storage.PostureEdge{SourceWorkload: src, SourceNamespace: srcNS, SourceIP: ip,
		DestinationWorkload: dst, DestinationNamespace: dstNS, DestinationPort: port,
		Reporter: "destination", MTLS: mtls, Plaintext: plain, Unknown: unknown}
	if mtls > 0 && src != "" {
		e.SourcePrincipal = "cluster.local/ns/" + srcNS + "/sa/" + src
		e.DestinationPrincipal = "cluster.local/ns/" + dstNS + "/sa/" + dst
	}
	return e
}

func TestPostureAgainstTheCluster(t *testing.T) {
	cfg := testenv.KubeConfig(t)
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := zerotrust.ApplyCluster(t, cfg)
	root, shop, ops := n.Root, n.Shop, n.Ops
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cluster, err := LoadCluster(ctx, dyn, cs, root)
	if err != nil {
		t.Fatal(err)
	}
	edges := []storage.PostureEdge{
		edge(shop, "frontend", "", shop, "cart", 8080, 8, 2, 0),
		edge("", "", "10.1.1.1", shop, "cart", 9090, 0, 5, 0),
		edge(shop, "frontend", "", shop, "payments", 8080, 20, 0, 0),
		edge(shop, "batch", "", shop, "frontend", 8080, 0, 0, 4),
		edge(ops, "metrics", "", ops, "scraper", 8080, 0, 1, 0),
	}
	to := testenv.Now()
	p := Build(edges, cluster, to.Add(-time.Hour), to, Options{})

	wl := map[string]Workload{}
	for _, w := range p.Workloads {
		wl[w.Namespace+"/"+w.Name] = w
	}
	modes := []struct {
		workload string
		port     uint16
		want     ModeInForce
	}{
		// cart's UNSET inherits the namespace's PERMISSIVE; the root
		// namespace's DISABLE selector is ignored.
		{shop + "/cart", 0, ModeInForce{Mode: ModePermissive, Level: LevelNamespace, Policy: shop + "/default"}},
		{shop + "/cart", 9090, ModeInForce{Mode: ModeDisable, Level: LevelPort, Policy: shop + "/cart"}},
		{shop + "/payments", 0, ModeInForce{Mode: ModeStrict, Level: LevelWorkload, Policy: shop + "/payments"}},
		{shop + "/frontend", 0, ModeInForce{Mode: ModePermissive, Level: LevelNamespace, Policy: shop + "/default"}},
		{ops + "/metrics", 0, ModeInForce{Mode: ModeStrict, Level: LevelMesh, Policy: root + "/default"}},
		// no Deployment: labels unknown, but OPS has no selector policies
		{ops + "/scraper", 0, ModeInForce{Mode: ModeStrict, Level: LevelMesh, Policy: root + "/default"}},
	}
	for _, m := range modes {
		w, ok := wl[m.workload]
		if !ok {
			t.Fatalf("workload %s missing from %+v", m.workload, p.Workloads)
		}
		got := *w.Mode
		if m.port != 0 {
			got = w.PortModes[m.port]
		}
		if got != m.want {
			t.Errorf("%s port %d: mode %+v, want %+v", m.workload, m.port, got, m.want)
		}
	}
	if w := wl[ops+"/scraper"]; w.LabelsKnown {
		t.Errorf("scraper has no Deployment, yet its labels are known")
	}

	// scraper's labels are unknown and the root namespace's selector
	// policy applies in every namespace: it may cover scraper.
	cover := map[string]string{shop + "/payments": Covered, shop + "/cart": Uncovered, shop + "/frontend": Uncovered,
		ops + "/metrics": Covered, ops + "/scraper": Unknown}
	for name, want := range cover {
		if got := wl[name].Allow.State; got != want {
			t.Errorf("%s ALLOW coverage %s (%+v), want %s", name, got, wl[name].Allow, want)
		}
	}
	if got := wl[shop+"/cart"].Allow.DryRun; len(got) != 1 || got[0] != shop+"/cart-allow" {
		t.Errorf("cart's dry-run ALLOW policies %v, want [%s/cart-allow]", got, shop)
	}
	if got := wl[ops+"/metrics"].Allow.Policies; len(got) != 1 || got[0] != root+"/metrics-allow" {
		t.Errorf("metrics' ALLOW policies %v, want the root namespace's [%s/metrics-allow]", got, root)
	}

	gaps := map[string]Gap{}
	for _, g := range p.Gaps {
		gaps[g.Namespace] = g
	}
	names := func(es []Edge) string {
		var s []string
		for _, e := range es {
			s = append(s, fmt.Sprintf("%s->%s:%d", e.Source.Name(), e.Destination.Workload, e.Port))
		}
		return strings.Join(s, " ")
	}
	g := gaps[shop]
	if got, want := names(g.Breaks), shop+"/frontend->cart:8080"; got != want {
		t.Errorf("%s STRICT breaks %q, want %q", shop, got, want)
	}
	if got, want := names(g.Unverified), shop+"/batch->frontend:8080"; got != want {
		t.Errorf("%s STRICT unverified %q, want %q", shop, got, want)
	}
	if got, want := names(g.Exempt), "10.1.1.1->cart:9090"; got != want {
		t.Errorf("%s STRICT exempt %q, want %q (port 9090 stays DISABLE)", shop, got, want)
	}
	if got, want := names(gaps[ops].Breaks), ops+"/metrics->scraper:8080"; got != want {
		t.Errorf("%s STRICT breaks %q, want %q", ops, got, want)
	}
	if len(p.PlaintextEdges) != 3 {
		t.Errorf("%d plaintext edges, want 3: %+v", len(p.PlaintextEdges), p.PlaintextEdges)
	}
	var noID []string
	for _, n := range p.NoIdentity {
		noID = append(noID, n.Name())
	}
	// metrics and scraper sent and got plaintext and never showed a
	// principal; batch showed nothing either way (unknown, not listed).
	if got, want := strings.Join(noID, " "), "10.1.1.1 "+ops+"/metrics "+ops+"/scraper"; got != want {
		t.Errorf("no mesh identity %q, want %q", got, want)
	}
	if w := wl[shop+"/batch"]; w.Identity != IdentityUnknown {
		t.Errorf("batch identity %q, want unknown", w.Identity)
	}
	if p.Total.Requests != 40 || p.Total.Plaintext != 8 || p.Total.Unknown != 4 {
		t.Errorf("total %+v, want 40 requests, 8 plaintext, 4 unknown", p.Total)
	}
}

// TestLoadClusterUnderShippedRBAC reads the cluster as meshguard's own
// ServiceAccount, with only what deploy/kubernetes/rbac.yaml grants.
func TestLoadClusterUnderShippedRBAC(t *testing.T) {
	sa := testenv.ShippedRBAC(t)
	n := zerotrust.ApplyCluster(t, testenv.KubeConfig(t))
	dyn, err := dynamic.NewForConfig(sa)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(sa)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var c *Cluster
	// The authorizer follows new bindings within moments.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if c, err = LoadCluster(ctx, dyn, cs, n.Root); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("as meshguard/meshguard under the shipped RBAC: %v", err)
	}
	if _, ok := c.labelsOf(n.Shop, "cart"); !ok || len(c.PeerAuthentications) == 0 || len(c.AuthorizationPolicies) == 0 {
		t.Errorf("read %d PeerAuthentications, %d AuthorizationPolicies, cart's labels known %v", len(c.PeerAuthentications), len(c.AuthorizationPolicies), ok)
	}
}
