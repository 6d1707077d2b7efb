package identity

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/meshguard/meshguard/models"
)

const benchPods = 100_000

// benchPod is a pod as the API lists it, with what real pods carry that
// resolution drops (containers, conditions, annotations, managed fields
// aside), so that the transform has something to strip.
func benchPod(i int, created time.Time) *corev1.Pod {
	ns := fmt.Sprintf("team-%d", i%100)
	wl := fmt.Sprintf("svc-%d", i%2000)
	hash := fmt.Sprintf("%08x", i%2000*7919)
	ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String()
	yes := true
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: fmt.Sprintf("%s-%s-%05x", wl, hash, i), UID: types.UID(fmt.Sprintf("00000000-0000-0000-0000-%012d", i)),
			ResourceVersion: fmt.Sprint(1000 + i), CreationTimestamp: metav1.NewTime(created),
			Labels: map[string]string{"app": wl, "version": "v1", "pod-template-hash": hash, "security.istio.io/tlsMode": "istio",
				"service.istio.io/canonical-name": wl},
			Annotations:     map[string]string{"sidecar.istio.io/status": `{"initContainers":["istio-init"],"containers":["istio-proxy"]}`},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: wl + "-" + hash, UID: "rs", Controller: &yes}},
		},
		Spec: corev1.PodSpec{ServiceAccountName: wl, NodeName: "node-1",
			Containers: []corev1.Container{{Name: "app", Image: "registry.example/" + wl + ":1.2.3"}, {Name: "istio-proxy", Image: "istio/proxyv2:1.27"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}, HostIP: "192.168.0.1"},
	}
}

// BenchmarkResolverMemory100kPods: what the informers' store and the
// resolver keep for 100k running pods (2,000 workloads in 100
// namespaces), in bytes per pod, measured as the live heap after GC.
func BenchmarkResolverMemory100kPods(b *testing.B) {
	created := time.Now().Add(-time.Hour)
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		r := New(DefaultConfig())
		store := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
		for i := 0; i < benchPods; i++ {
			// The API's object is garbage once transformed, as in the
			// informer.
			obj, _ := r.transform(benchPod(i, created))
			if err := store.Add(obj); err != nil {
				b.Fatal(err)
			}
			r.onPod(obj, false)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/benchPods, "bytes/pod")
		if _, ok := r.ResolveIP(netip.AddrFrom4([4]byte{10, 0, 0, 7}), time.Now()); !ok || len(store.ListKeys()) != benchPods {
			b.Fatal("not resolvable")
		}
		runtime.KeepAlive(store)
	}
}

// BenchmarkApply: resolving flows (source IP and destination Service)
// against 100k pods.
func BenchmarkApply(b *testing.B) {
	created := time.Now().Add(-time.Hour)
	r := New(DefaultConfig())
	for i := 0; i < benchPods; i++ {
		obj, _ := r.transform(benchPod(i, created))
		r.onPod(obj, false)
	}
	for i := 0; i < 2000; i++ {
		svc, _ := r.transform(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("team-%d", i%100), Name: fmt.Sprintf("svc-%d", i)},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": fmt.Sprintf("svc-%d", i)}}})
		r.onService(svc, false)
	}
	flows := make([]models.Flow, 1000)
	tmpl := make([]models.Flow, len(flows))
	now := time.Now().UnixMilli()
	for i := range tmpl {
		j := i * 97 % benchPods
		tmpl[i] = models.Flow{TimestampMs: now, Source: models.Source{IP: netip.AddrFrom4([4]byte{10, byte(j >> 16), byte(j >> 8), byte(j)})},
			Destination: models.Destination{Service: fmt.Sprintf("svc-%d.team-%d.svc.cluster.local", (j+1)%2000, (j+1)%2000%100)}}
	}
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		copy(flows, tmpl)
		r.Apply(flows)
	}
	if flows[0].Source.Workload == "" || flows[0].Destination.Workload == "" {
		b.Fatalf("not resolved: %+v", flows[0])
	}
	b.ReportMetric(float64(b.N*len(flows))/time.Since(start).Seconds(), "flows/s")
}
