package posture

import (
	"context"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/meshguard/meshguard/storage"
	"github.com/meshguard/meshguard/test/testenv"
	"github.com/meshguard/meshguard/test/zerotrust"
)

// TestReaderReusesTheClusterWithinItsTTL: against the real
// kube-apiserver, a Reader lists the cluster once per ClusterTTL, shared
// by concurrent callers, and a policy applied since shows once the TTL is
// over (here: at once, with a negative TTL).
func TestReaderReusesTheClusterWithinItsTTL(t *testing.T) {
	cfg := testenv.KubeConfig(t)
	n := zerotrust.ApplyCluster(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store := storage.NewMemory(1)
	to := testenv.Now()
	cached := &Reader{Edges: store, Kube: cfg, RootNamespace: n.Root, ClusterTTL: time.Hour}
	clusters := make([]*Cluster, 8)
	var wg sync.WaitGroup
	for i := range clusters {
		wg.Go(func() {
			_, c, err := cached.PostureAndCluster(ctx, to.Add(-time.Hour), to)
			if err != nil {
				t.Error(err)
			}
			clusters[i] = c
		})
	}
	wg.Wait()
	for _, c := range clusters[1:] {
		if c != clusters[0] || c == nil {
			t.Fatal("concurrent callers got different listings: the cluster was listed more than once")
		}
	}
	// Other tests share the apiserver: count the fixture's namespace only.
	inShop := func(c *Cluster) int {
		count := 0
		for _, p := range c.PeerAuthentications {
			if p.Namespace == n.Shop {
				count++
			}
		}
		return count
	}
	before := inShop(clusters[0])

	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pa := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
		"metadata": map[string]any{"name": "late", "namespace": n.Shop},
		"spec":     map[string]any{"selector": map[string]any{"matchLabels": map[string]any{"app": "late"}}, "mtls": map[string]any{"mode": "STRICT"}},
	}}
	if _, err := dyn.Resource(peerAuthenticationsGVR).Namespace(n.Shop).Create(ctx, pa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, again, err := cached.PostureAndCluster(ctx, to.Add(-time.Hour), to)
	if err != nil || again != clusters[0] {
		t.Errorf("within the TTL the cluster was listed again (err %v)", err)
	}
	fresh := &Reader{Edges: store, Kube: cfg, RootNamespace: n.Root, ClusterTTL: -1}
	_, c, err := fresh.PostureAndCluster(ctx, to.Add(-time.Hour), to)
	if err != nil || inShop(c) != before+1 {
		t.Fatalf("without reuse: %v, %d PeerAuthentications in %s, want %d (the late one)", err, inShop(c), n.Shop, before+1)
	}
	if inShop(again) != before {
		t.Errorf("the reused listing changed: %d PeerAuthentications in %s, want %d", inShop(again), n.Shop, before)
	}
}
