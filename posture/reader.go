package posture

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshguard/meshguard/storage"
)

// DefaultClusterTTL is how long a Reader reuses what it listed from the
// cluster.
//
// A TTL rather than an informer: posture is read on demand (a view, a
// CLI run, a report), while informers would watch every pod, Deployment,
// StatefulSet and DaemonSet of a 10k-workload cluster all the time,
// holding each whole object (hundreds of MB) for the few labels posture
// uses, and need the watch verb on all of them. The TTL bounds both the
// staleness (a policy applied a moment ago shows within it) and the load
// (one set of lists per TTL however many people look).
const DefaultClusterTTL = 30 * time.Second

// Reader computes postures from a store and, when Kube is set, the
// cluster. It is what `meshguard posture`, GET /api/v1/posture and the
// compliance report use. Goroutine-safe.
type Reader struct {
	Edges storage.PostureQuerier
	// Kube, when nil, leaves modes, gaps and coverage out.
	Kube          *rest.Config
	RootNamespace string
	Options       Options
	// ClusterTTL is how long the cluster's policies and labels are
	// reused: 0 is DefaultClusterTTL, negative lists them on every call.
	ClusterTTL time.Duration

	mu       sync.Mutex
	cached   *Cluster
	listedAt time.Time
	loading  chan struct{} // closed when the listing in flight ends
}

// Posture reads the edges of [from, to) and the cluster's policies now.
func (r *Reader) Posture(ctx context.Context, from, to time.Time) (*Posture, error) {
	p, _, err := r.PostureAndCluster(ctx, from, to)
	return p, err
}

// PostureAndCluster is Posture, and the cluster it read (nil without
// Kube). The cluster may be shared with other callers: read it only.
func (r *Reader) PostureAndCluster(ctx context.Context, from, to time.Time) (*Posture, *Cluster, error) {
	edges, err := r.Edges.PostureEdges(ctx, from, to)
	if err != nil {
		return nil, nil, err
	}
	var cluster *Cluster
	if r.Kube != nil {
		if cluster, err = r.cluster(ctx); err != nil {
			return nil, nil, err
		}
	}
	return Build(edges, cluster, from, to, r.Options), cluster, nil
}

// cluster returns the cluster as listed within the TTL, or lists it; one
// listing at a time, which concurrent callers wait for and share.
func (r *Reader) cluster(ctx context.Context) (*Cluster, error) {
	ttl := r.ClusterTTL
	if ttl == 0 {
		ttl = DefaultClusterTTL
	}
	if ttl < 0 {
		return r.load(ctx)
	}
	for {
		r.mu.Lock()
		if r.cached != nil && time.Since(r.listedAt) < ttl {
			c := r.cached
			r.mu.Unlock()
			return c, nil
		}
		wait := r.loading
		if wait == nil {
			r.loading = make(chan struct{})
			r.mu.Unlock()
			return r.list(ctx)
		}
		r.mu.Unlock()
		// Then the listing's result, or (it failed) a listing of our own.
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// list lists the cluster, keeps it when it succeeded, and ends the
// listing in flight.
func (r *Reader) list(ctx context.Context) (*Cluster, error) {
	listedAt := time.Now()
	c, err := r.load(ctx)
	r.mu.Lock()
	if err == nil {
		r.cached, r.listedAt = c, listedAt
	}
	close(r.loading)
	r.loading = nil
	r.mu.Unlock()
	return c, err
}

func (r *Reader) load(ctx context.Context) (*Cluster, error) {
	dyn, err := dynamic.NewForConfig(r.Kube)
	if err != nil {
		return nil, fmt.Errorf("posture: kubernetes client: %w", err)
	}
	cs, err := kubernetes.NewForConfig(r.Kube)
	if err != nil {
		return nil, fmt.Errorf("posture: kubernetes client: %w", err)
	}
	return LoadCluster(ctx, dyn, cs, r.RootNamespace)
}
