package posture

import (
	"context"
	"fmt"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshguard/meshguard/storage"
)

// Reader computes postures from a store and, when Kube is set, the
// cluster. It is what `meshguard posture`, GET /api/v1/posture and the
// compliance report use. Goroutine-safe.
type Reader struct {
	Edges storage.PostureQuerier
	// Kube, when nil, leaves modes, gaps and coverage out.
	Kube          *rest.Config
	RootNamespace string
	Options       Options
}

// Posture reads the edges of [from, to) and the cluster's policies now.
func (r *Reader) Posture(ctx context.Context, from, to time.Time) (*Posture, error) {
	p, _, err := r.PostureAndCluster(ctx, from, to)
	return p, err
}

// PostureAndCluster is Posture, and the cluster it read (nil without Kube).
func (r *Reader) PostureAndCluster(ctx context.Context, from, to time.Time) (*Posture, *Cluster, error) {
	edges, err := r.Edges.PostureEdges(ctx, from, to)
	if err != nil {
		return nil, nil, err
	}
	var cluster *Cluster
	if r.Kube != nil {
		dyn, err := dynamic.NewForConfig(r.Kube)
		if err != nil {
			return nil, nil, fmt.Errorf("posture: kubernetes client: %w", err)
		}
		cs, err := kubernetes.NewForConfig(r.Kube)
		if err != nil {
			return nil, nil, fmt.Errorf("posture: kubernetes client: %w", err)
		}
		if cluster, err = LoadCluster(ctx, dyn, cs, r.RootNamespace); err != nil {
			return nil, nil, err
		}
	}
	return Build(edges, cluster, from, to, r.Options), cluster, nil
}
