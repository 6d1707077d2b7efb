package respond

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
)

var (
	deploymentsGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	podsGVR        = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
)

// Resolver returns the labels that select a workload's pods.
type Resolver func(ctx context.Context, namespace, workload string) (map[string]string, error)

// errNoWorkload: nothing in the cluster is the workload.
var errNoWorkload = errors.New("workload not found")

// KubeResolver looks the workload up in the cluster: a Deployment of
// that name (its selector, when it is plain matchLabels), else pods
// labelled app, app.kubernetes.io/name or service.istio.io/canonical-name
// with the workload's name (Istio names workloads by these).
func KubeResolver(cs kubernetes.Interface) Resolver {
	return func(ctx context.Context, ns, wl string) (map[string]string, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, wl, metav1.GetOptions{})
		switch {
		case err == nil && d.Spec.Selector != nil && len(d.Spec.Selector.MatchExpressions) == 0 && len(d.Spec.Selector.MatchLabels) > 0:
			return cloneMap(d.Spec.Selector.MatchLabels), nil
		case err != nil && !apierrors.IsNotFound(err):
			return nil, kubeErr(err, "get", deploymentsGVR, ns)
		}
		for _, key := range []string{"app", "app.kubernetes.io/name", "service.istio.io/canonical-name"} {
			sel := map[string]string{key: wl}
			pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{
				LabelSelector: labels.SelectorFromSet(sel).String(), Limit: 1})
			if err != nil {
				return nil, kubeErr(err, "list", podsGVR, ns)
			}
			if len(pods.Items) > 0 {
				return sel, nil
			}
		}
		return nil, fmt.Errorf("%w: no Deployment %s/%s with a matchLabels selector and no pods labelled app=%s", errNoWorkload, ns, wl, wl)
	}
}

// ConventionResolver assumes pods are labelled app=<workload>; for the
// gitops backend without a cluster to ask.
func ConventionResolver(_ context.Context, _, wl string) (map[string]string, error) {
	return map[string]string{"app": wl}, nil
}
