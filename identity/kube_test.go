package identity

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/test/testenv"
)

func testNamespace(t *testing.T, cs kubernetes.Interface) string {
	t.Helper()
	ns := fmt.Sprintf("identity-%d", time.Now().UnixNano())
	if _, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	return ns
}

// Against the real kube-apiserver: informers list and watch what the
// controllers would have made, and the resolver names a pod IP's
// Deployment, namespace and principal, a Service's workload, and keeps
// what a reused IP meant before.
func TestResolverAgainstKubeAPIServer(t *testing.T) {
	cs, err := kubernetes.NewForConfig(testenv.KubeConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	ns := testNamespace(t, cs)
	// IPs unique to this run: the apiserver is shared with other tests.
	base := byte(time.Now().UnixNano()%200) + 20
	ipA, ipB := fmt.Sprintf("10.%d.7.1", base), fmt.Sprintf("10.%d.7.2", base)
	pods := testenv.CreateWorkload(t, cs, testenv.Workload{NS: ns, Name: "frontend", SA: "frontend-sa", Labels: map[string]string{"app": "frontend"}, IPs: []string{ipA}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := New(Config{TrustDomain: "example.org", Remember: time.Hour})
	if err := r.Start(ctx, cs, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "informers synced", r.Synced)
	want := Identity{Workload: "frontend", Namespace: ns, Principal: "example.org/ns/" + ns + "/sa/frontend-sa"}
	if id, ok := r.ResolveIP(netip.MustParseAddr(ipA), time.Now()); !ok || id != want {
		t.Fatalf("%s after the first list: %+v %v, want %+v", ipA, id, ok, want)
	}

	// Watched, not only listed: a workload and its Service created now.
	testenv.CreateWorkload(t, cs, testenv.Workload{NS: ns, Name: "catalog", SA: "catalog", Labels: map[string]string{"app": "catalog"}, IPs: []string{ipB}})
	if _, err := cs.CoreV1().Services(ns).Create(context.Background(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "catalog"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "catalog"}, Ports: []corev1.ServicePort{{Port: 8080}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the Service's workload", func() bool {
		w, _, _, ok := r.ResolveService("catalog." + ns + ".svc.cluster.local")
		return ok && len(w) == 1 && w[0] == "catalog"
	})
	flows := []models.Flow{{TimestampMs: time.Now().UnixMilli(), Source: models.Source{IP: netip.MustParseAddr(ipA)},
		Destination: models.Destination{Service: "catalog." + ns + ".svc.cluster.local"}}}
	r.Apply(flows)
	if f := flows[0]; f.Source.Workload != "frontend" || f.Source.Principal != want.Principal || f.Destination.Workload != "catalog" ||
		f.Destination.Principal != "example.org/ns/"+ns+"/sa/catalog" || f.IdentityConflict {
		t.Errorf("IP-only flow resolved to %+v", f)
	}

	// The frontend pod is deleted and its IP goes to a catalog pod: a
	// record from before still names frontend, one from after catalog.
	before := time.Now()
	if err := cs.CoreV1().Pods(ns).Delete(context.Background(), pods[0], metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the delete", func() bool {
		_, ok := r.ResolveIP(netip.MustParseAddr(ipA), time.Now())
		return !ok
	})
	time.Sleep(5 * time.Millisecond) // the new tenure starts after the old one ended
	rs, err := cs.AppsV1().ReplicaSets(ns).Get(context.Background(), "catalog-5f7c9d8b4", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	pod, err := cs.CoreV1().Pods(ns).Create(context.Background(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "catalog-5f7c9d8b4-new", Labels: rs.Spec.Template.Labels, OwnerReferences: []metav1.OwnerReference{
			{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: &yes}}},
		Spec: rs.Spec.Template.Spec,
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	testenv.SetPodIP(t, cs, pod, ipA)
	waitFor(t, "the reused IP", func() bool {
		id, _ := r.ResolveIP(netip.MustParseAddr(ipA), time.Now())
		return id.Workload == "catalog"
	})
	if id, ok := r.ResolveIP(netip.MustParseAddr(ipA), before); !ok || id.Workload != "frontend" {
		t.Errorf("a record from before the reuse resolved to %+v %v, want frontend", id, ok)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
