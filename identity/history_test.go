package identity

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/models"
)

func TestHistoryResolvesByEventTime(t *testing.T) {
	ip := netip.MustParseAddr("10.1.2.3")
	a, b := &podRec{name: "a"}, &podRec{name: "b"}
	h := newHistory()
	h.assign(ip, a, 1000)
	a.spans++
	h.release(ip, a, 5000)
	h.assign(ip, b, 7000)
	b.spans++
	for _, c := range []struct {
		t    int64
		want *podRec
	}{{999, nil}, {1000, a}, {4999, a}, {5000, nil}, {6999, nil}, {7000, b}, {1 << 50, b}} {
		if got := h.lookup(ip, c.t); got != c.want {
			t.Errorf("lookup at %d: %v, want %v", c.t, got, c.want)
		}
	}
	// A newer pod that takes the IP before the old one's delete arrived
	// ends the old tenure where the new one starts.
	c := &podRec{name: "c"}
	h.assign(ip, c, 9000)
	c.spans++
	if got := h.lookup(ip, 8999); got != b {
		t.Errorf("before the reuse: %v, want b", got)
	}
	if got := h.lookup(ip, 9000); got != c {
		t.Errorf("after the reuse: %v, want c", got)
	}
	// A creation time before the newest tenure cannot reach back into it.
	d := &podRec{name: "d"}
	h.assign(ip, d, 8000)
	if got := h.lookup(ip, 8500); got != b {
		t.Errorf("an older creation time rewrote history: %v at 8500, want b", got)
	}
	// Pruning forgets tenures that ended before the horizon and names the
	// pods that have none left.
	var gone []string
	h.prune(6000, func(p *podRec) { gone = append(gone, p.name) })
	if len(gone) != 1 || gone[0] != "a" || h.lookup(ip, 2000) != nil || h.lookup(ip, 8999) != b {
		t.Errorf("prune: gone %v; at 2000 %v; at 8999 %v", gone, h.lookup(ip, 2000), h.lookup(ip, 8999))
	}
}

// clock is a settable now for the resolver.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func testPod(ns, name, uid, ip, sa string, owner *metav1.OwnerReference, labels map[string]string, created time.Time) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid), Labels: labels, CreationTimestamp: metav1.NewTime(created)},
		Spec:       corev1.PodSpec{ServiceAccountName: sa},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}},
	}
	if owner != nil {
		p.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	return p
}

func controller(kind, name string) *metav1.OwnerReference {
	yes := true
	return &metav1.OwnerReference{Kind: kind, Name: name, Controller: &yes, APIVersion: "apps/v1", UID: "x"}
}

func TestResolverReusedIPAndOwners(t *testing.T) {
	clk := &clock{t: time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)}
	r := New(Config{TrustDomain: "cluster.local", Remember: 10 * time.Minute})
	r.now = clk.now
	add := func(obj any) any {
		o, err := r.transform(obj)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	start := clk.t.Add(-time.Hour)
	r.onPod(add(testPod("shop", "frontend-7d9-abc", "u1", "10.0.0.5", "frontend",
		controller("ReplicaSet", "frontend-7d9"), map[string]string{"app": "frontend", "pod-template-hash": "7d9"}, start)), false)
	r.onPod(add(testPod("shop", "batch-1-x", "u2", "10.0.0.6", "", controller("Job", "batch-1"), map[string]string{"app": "batch"}, start)), false)

	// The ReplicaSet is not listed yet: its name and the template hash
	// still give the Deployment.
	id, ok := r.ResolveIP(netip.MustParseAddr("10.0.0.5"), clk.t)
	if !ok || id.Workload != "frontend" || id.Namespace != "shop" || id.Principal != "cluster.local/ns/shop/sa/frontend" {
		t.Fatalf("10.0.0.5: %+v %v", id, ok)
	}
	if id, _ := r.ResolveIP(netip.MustParseAddr("10.0.0.6"), clk.t); id.Workload != "batch-1" || id.Principal != "cluster.local/ns/shop/sa/default" {
		t.Errorf("a Job's pod: %+v", id)
	}
	if _, ok := r.ResolveIP(netip.MustParseAddr("10.0.0.5"), start.Add(-time.Second)); ok {
		t.Error("resolved before the pod existed")
	}

	// The frontend pod goes; a pod of another workload gets its IP.
	deletedAt := clk.t
	old := add(testPod("shop", "frontend-7d9-abc", "u1", "10.0.0.5", "frontend",
		controller("ReplicaSet", "frontend-7d9"), map[string]string{"app": "frontend", "pod-template-hash": "7d9"}, start))
	r.onPod(old, true)
	clk.t = clk.t.Add(30 * time.Second)
	fresh := testPod("billing", "payments-55-q", "u3", "", "payments", controller("ReplicaSet", "payments-55"), map[string]string{"app": "payments"}, clk.t)
	fresh.Status.PodIP, fresh.Status.PodIPs = "", nil
	r.onPod(add(fresh), false) // pending, no IP yet
	clk.t = clk.t.Add(2 * time.Second)
	fresh = fresh.DeepCopy()
	fresh.Status.PodIP, fresh.Status.PodIPs = "10.0.0.5", []corev1.PodIP{{IP: "10.0.0.5"}}
	r.onPod(add(fresh), false)

	at := func(t time.Time) string {
		id, _ := r.ResolveIP(netip.MustParseAddr("10.0.0.5"), t)
		return id.Workload
	}
	if got := at(deletedAt.Add(-time.Second)); got != "frontend" {
		t.Errorf("a record from before the delete: %q, want frontend", got)
	}
	if got := at(deletedAt.Add(10 * time.Second)); got != "" {
		t.Errorf("a record between the pods: %q, want none", got)
	}
	if got := at(clk.t); got != "payments-55" {
		t.Errorf("a record after the reuse: %q, want payments-55 (its ReplicaSet unlisted, no template hash)", got)
	}
	// The ReplicaSet arrives, owned by a Deployment.
	rset := &ownerObj{owner: ownerRef{kind: "Deployment", name: "payments"}}
	rset.Namespace, rset.Name = "billing", "payments-55"
	r.onOwner(r.rsets, rset, false)
	if got := at(clk.t); got != "payments" {
		t.Errorf("after its ReplicaSet was listed: %q, want payments", got)
	}

	// Remembered for Remember after the delete, then forgotten.
	clk.t = deletedAt.Add(9 * time.Minute)
	r.Prune()
	if got := at(deletedAt.Add(-time.Second)); got != "frontend" {
		t.Errorf("forgotten before Remember passed: %q", got)
	}
	clk.t = deletedAt.Add(11 * time.Minute)
	r.Prune()
	if got := at(deletedAt.Add(-time.Second)); got != "" {
		t.Errorf("remembered past Remember: %q", got)
	}
	r.mu.RLock()
	for _, g := range r.groups {
		if g.owner.name == "frontend-7d9" {
			t.Errorf("the deleted pod's group outlived it: %+v", g)
		}
	}
	r.mu.RUnlock()
}

func TestApplyFillsConflictsAndAttested(t *testing.T) {
	clk := &clock{t: time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)}
	r := New(Config{TrustDomain: "cluster.local", Remember: time.Hour})
	r.now = clk.now
	tr := func(obj any) any { o, _ := r.transform(obj); return o }
	start := clk.t.Add(-time.Hour)
	r.onPod(tr(testPod("shop", "frontend-1", "u1", "10.0.0.5", "frontend", controller("StatefulSet", "frontend"), map[string]string{"app": "frontend"}, start)), false)
	r.onPod(tr(testPod("shop", "catalog-a", "u2", "10.0.0.7", "catalog", controller("DaemonSet", "catalog"), map[string]string{"app": "catalog"}, start)), false)
	r.onPod(tr(testPod("shop", "reviews-a", "u3", "10.0.0.8", "reviews", controller("DaemonSet", "reviews-v1"), map[string]string{"app": "reviews", "v": "1"}, start)), false)
	r.onPod(tr(testPod("shop", "reviews-b", "u4", "10.0.0.9", "reviews", controller("DaemonSet", "reviews-v2"), map[string]string{"app": "reviews", "v": "2"}, start)), false)
	for _, svc := range []struct{ name, app string }{{"catalog", "catalog"}, {"reviews", "reviews"}} {
		r.onService(tr(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: svc.name}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": svc.app}}}), false)
	}
	r.onService(tr(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "manual"}}), false)

	now := clk.t.UnixMilli()
	ip := netip.MustParseAddr("10.0.0.5")
	flows := []models.Flow{
		// 0: IP only, text format: everything filled.
		{TimestampMs: now, Source: models.Source{IP: ip}, Destination: models.Destination{Service: "catalog.shop.svc.cluster.local"}},
		// 1: attested by the destination proxy, another identity than
		// the IP's: kept, marked; the caller's workload and namespace
		// come from its address (the record named none).
		{TimestampMs: now, Reporter: models.ReporterDestination, TLS: models.TLSMutual,
			Source:      models.Source{IP: ip, Principal: "cluster.local/ns/billing/sa/payments"},
			Destination: models.Destination{Service: "catalog.shop.svc.cluster.local"}},
		// 2: claims agree; only the missing fields are filled.
		{TimestampMs: now, Source: models.Source{IP: ip, Workload: "frontend", Principal: "spiffe://cluster.local/ns/shop/sa/frontend"},
			Destination: models.Destination{Service: "reviews.shop.svc.cluster.local", Workload: "reviews-v2"}},
		// 3: a destination workload the Service does not select.
		{TimestampMs: now, Destination: models.Destination{Service: "reviews.shop.svc.cluster.local", Workload: "payments"}},
		// 4: an unknown IP, a Service with no selector (only its
		// namespace is known); 5: a host that is no Service; 6: before
		// the pod existed. Nothing else filled.
		{TimestampMs: now, Source: models.Source{IP: netip.MustParseAddr("192.0.2.1")}, Destination: models.Destination{Service: "manual.shop.svc.cluster.local"}},
		{TimestampMs: now, Destination: models.Destination{Service: "api.example.com"}},
		{TimestampMs: start.Add(-time.Minute).UnixMilli(), Source: models.Source{IP: ip}},
	}
	r.synced.Store(true)
	r.Apply(flows)
	f := flows[0]
	if f.Source.Workload != "frontend" || f.Source.Namespace != "shop" || f.Source.Principal != "cluster.local/ns/shop/sa/frontend" ||
		f.Destination.Workload != "catalog" || f.Destination.Namespace != "shop" || f.Destination.Principal != "cluster.local/ns/shop/sa/catalog" ||
		f.Resolved != models.ResolvedSourceWorkload|models.ResolvedSourceNamespace|models.ResolvedSourcePrincipal|models.ResolvedDestinationWorkload|models.ResolvedDestinationNamespace|models.ResolvedDestinationPrincipal ||
		f.IdentityConflict {
		t.Errorf("IP-only flow: %+v", f)
	}
	f = flows[1]
	if !f.IdentityConflict || f.Source.Principal != "cluster.local/ns/billing/sa/payments" || f.Source.Workload != "frontend" || f.Source.Namespace != "shop" ||
		f.Resolved != models.ResolvedSourceWorkload|models.ResolvedSourceNamespace|models.ResolvedDestinationWorkload|models.ResolvedDestinationNamespace|models.ResolvedDestinationPrincipal {
		t.Errorf("attested principal overridden, not marked, or its pod not named: %+v (resolved %v)", f, f.Resolved.Fields())
	}
	f = flows[2]
	if f.IdentityConflict || f.Resolved != models.ResolvedSourceNamespace|models.ResolvedDestinationNamespace|models.ResolvedDestinationPrincipal || f.Source.Namespace != "shop" ||
		f.Source.Principal != "spiffe://cluster.local/ns/shop/sa/frontend" || f.Destination.Principal != "cluster.local/ns/shop/sa/reviews" {
		t.Errorf("agreeing claims: %+v (resolved %v)", f, f.Resolved.Fields())
	}
	if !flows[3].IdentityConflict {
		t.Errorf("a workload the Service does not select is no conflict: %+v", flows[3])
	}
	if f := flows[4]; f.Resolved != models.ResolvedDestinationNamespace || f.Destination.Namespace != "shop" || f.Source.Workload != "" {
		t.Errorf("unknown IP, Service without selector: %+v", f)
	}
	for i := 5; i < 7; i++ {
		if f := flows[i]; f.Resolved != 0 || f.IdentityConflict || f.Source.Workload != "" || f.Destination.Workload != "" {
			t.Errorf("flow %d resolved from nothing: %+v", i, f)
		}
	}
	// Redelivery after a failed store resolves to the same.
	again := append([]models.Flow(nil), flows...)
	r.Apply(again)
	for i := range flows {
		if again[i] != flows[i] {
			t.Errorf("flow %d changed on redelivery: %+v -> %+v", i, flows[i], again[i])
		}
	}
}

// A trust domain unlike the mesh's is no conflict (namespace and account
// agree) but is said once, naming the key.
func TestStageWarnsOfAnotherTrustDomain(t *testing.T) {
	r := New(Config{TrustDomain: "example.org", Remember: time.Hour})
	obj, _ := r.transform(testPod("shop", "frontend-1", "u1", "10.0.0.5", "frontend", controller("StatefulSet", "frontend"), nil, time.Now().Add(-time.Hour)))
	r.onPod(obj, false)
	r.synced.Store(true)
	var logs strings.Builder
	var got []models.Flow
	s := NewStage(r, consumer.FlowsFunc(func(_ context.Context, f []models.Flow) error { got = append(got, f...); return nil }),
		slog.New(slog.NewTextHandler(&logs, nil)))
	flows := []models.Flow{{TimestampMs: time.Now().UnixMilli(), Source: models.Source{IP: netip.MustParseAddr("10.0.0.5"), Principal: "cluster.local/ns/shop/sa/frontend"}}}
	for range 2 {
		if err := s.ConsumeFlows(context.Background(), flows); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 2 || got[0].IdentityConflict || got[0].Source.Workload != "frontend" || got[0].Source.Principal != "cluster.local/ns/shop/sa/frontend" {
		t.Errorf("passed on: %+v", got)
	}
	if n := strings.Count(logs.String(), "identity.trust_domain differs"); n != 1 {
		t.Errorf("warned %d times, want once:\n%s", n, logs.String())
	}
	// Not synced: the batch is refused, retryably, and next sees nothing.
	r2 := New(DefaultConfig())
	if err := NewStage(r2, consumer.FlowsFunc(func(context.Context, []models.Flow) error { t.Error("next called"); return nil }), nil).
		ConsumeFlows(context.Background(), flows); err != ErrNotSynced || consumer.IsPermanent(err) {
		t.Errorf("before sync: %v, want ErrNotSynced", err)
	}
}

// Issue 12's mixed-mesh evaluation: a stolen certificate on a label-form
// server-side record (the caller known by principal alone) was left
// without a workload, so detection never saw a known workload presenting
// another's principal. The pod behind the address names the caller; the
// claimed principal stays; a claimed workload the address contradicts is
// still not replaced.
func TestConflictOfAPrincipalAloneNamesThePod(t *testing.T) {
	clk := &clock{t: time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)}
	r := New(Config{TrustDomain: "cluster.local", Remember: time.Hour})
	r.now = clk.now
	obj, _ := r.transform(testPod("identity", "loyalty-v1-abc-1", "u1", "10.0.0.5", "loyalty",
		controller("ReplicaSet", "loyalty-v1-abc"), map[string]string{"app": "loyalty", "pod-template-hash": "abc"}, clk.t.Add(-time.Hour)))
	r.onPod(obj, false)
	ip, now := netip.MustParseAddr("10.0.0.5"), clk.t.UnixMilli()
	flows := []models.Flow{
		{TimestampMs: now, Reporter: models.ReporterDestination, TLS: models.TLSMutual,
			Source: models.Source{IP: ip, Principal: "spiffe://cluster.local/ns/identity/sa/users"}},
		{TimestampMs: now, Source: models.Source{IP: ip, Workload: "users-v1", Principal: "cluster.local/ns/identity/sa/users"}},
	}
	r.Apply(flows)
	f := flows[0]
	if !f.IdentityConflict || f.Source.Workload != "loyalty-v1" || f.Source.Namespace != "identity" ||
		f.Source.Principal != "spiffe://cluster.local/ns/identity/sa/users" || f.Resolved.Has(models.ResolvedSourcePrincipal) {
		t.Errorf("principal-only claim: %+v (resolved %v)", f, f.Resolved.Fields())
	}
	if f := flows[1]; !f.IdentityConflict || f.Source.Workload != "users-v1" || f.Source.Namespace != "" || f.Resolved != 0 {
		t.Errorf("a claimed workload was replaced or filled beside: %+v", f)
	}
	again := append([]models.Flow(nil), flows...)
	r.Apply(again)
	for i := range flows {
		if again[i] != flows[i] {
			t.Errorf("flow %d changed on redelivery: %+v -> %+v", i, flows[i], again[i])
		}
	}
}
