package respond

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// Backend writes, lists and deletes the policies of actions. Every method
// is idempotent and safe for concurrent use. The backend is the state:
// respond keeps nothing it cannot read back from List.
type Backend interface {
	// Name is "istio", "networkpolicy" or "gitops".
	Name() string
	// Supports says whether the backend can express p, and why not.
	Supports(p Policy) error
	// Apply creates p or makes the stored object equal to it.
	Apply(ctx context.Context, p Policy) error
	// Delete removes p; a policy already gone is not an error.
	Delete(ctx context.Context, p Policy) error
	// List returns the policies of instance, of one action when actionID
	// is set. Objects it cannot read back are returned with an error
	// joined to the others.
	List(ctx context.Context, instance, actionID string) ([]Policy, error)
}

// PermissionError says which permission the API server refused:
// deploy/kubernetes/rbac.yaml grants every one respond needs.
type PermissionError struct {
	Verb, Group, Resource, Namespace string
	Err                              error
}

func (e *PermissionError) Error() string {
	res := e.Resource
	if e.Group != "" {
		res += "." + e.Group
	}
	where := "cluster-wide"
	if e.Namespace != "" {
		where = "in namespace " + e.Namespace
	}
	return fmt.Sprintf("missing permission: %s %s %s (deploy/kubernetes/rbac.yaml grants it): %v", e.Verb, res, where, e.Err)
}

func (e *PermissionError) Unwrap() error { return e.Err }

// kubeErr names the refused permission when err is Forbidden.
func kubeErr(err error, verb string, gvr schema.GroupVersionResource, ns string) error {
	if err == nil {
		return nil
	}
	if apierrors.IsForbidden(err) {
		// The server may have checked another verb than the request's
		// (server-side apply of a new object needs create as well as
		// patch); its message says which, for people to read.
		if m := refusedVerb.FindStringSubmatch(err.Error()); m != nil {
			verb = m[1]
		}
		return &PermissionError{Verb: verb, Group: gvr.Group, Resource: gvr.Resource, Namespace: ns, Err: err}
	}
	return fmt.Errorf("%s %s in %q: %w", verb, gvr.Resource, ns, err)
}

var refusedVerb = regexp.MustCompile(`cannot ([a-z]+) resource`)

var authorizationPolicies = schema.GroupVersionResource{Group: istioGroup, Version: "v1", Resource: "authorizationpolicies"}

// istioBackend writes AuthorizationPolicies with server-side apply.
type istioBackend struct {
	dyn dynamic.Interface
}

// NewIstioBackend returns the istio backend on dyn.
func NewIstioBackend(dyn dynamic.Interface) Backend { return &istioBackend{dyn: dyn} }

func (b *istioBackend) Name() string { return BackendIstio }

func (b *istioBackend) Supports(p Policy) error {
	if p.Role == RoleIsolate {
		return errors.New("istio backend: isolate is a NetworkPolicy role")
	}
	return nil
}

func (b *istioBackend) Apply(ctx context.Context, p Policy) error {
	u, err := p.istioObject()
	if err != nil {
		return err
	}
	_, err = b.dyn.Resource(authorizationPolicies).Namespace(p.Namespace).Apply(ctx, p.Name, u,
		metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	return kubeErr(err, "patch", authorizationPolicies, p.Namespace)
}

func (b *istioBackend) Delete(ctx context.Context, p Policy) error {
	err := b.dyn.Resource(authorizationPolicies).Namespace(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return kubeErr(err, "delete", authorizationPolicies, p.Namespace)
}

func (b *istioBackend) List(ctx context.Context, instance, actionID string) ([]Policy, error) {
	list, err := b.dyn.Resource(authorizationPolicies).Namespace("").List(ctx,
		metav1.ListOptions{LabelSelector: selectorFor(instance, actionID)})
	if err != nil {
		return nil, kubeErr(err, "list", authorizationPolicies, "")
	}
	return policiesFromObjects(list.Items)
}

func policiesFromObjects(items []unstructured.Unstructured) ([]Policy, error) {
	var out []Policy
	var errs []error
	for i := range items {
		p, err := policyFromIstio(&items[i])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, p)
	}
	sortPolicies(out)
	return out, errors.Join(errs...)
}

func sortPolicies(ps []Policy) {
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Namespace != ps[j].Namespace {
			return ps[i].Namespace < ps[j].Namespace
		}
		return ps[i].Name < ps[j].Name
	})
}

// selectorFor selects the objects of instance (and of one action).
func selectorFor(instance, actionID string) string {
	set := labels.Set{LabelManagedBy: ManagedBy, LabelInstance: instance}
	if actionID != "" {
		set[LabelActionID] = actionID
	}
	return labels.SelectorFromSet(set).String()
}

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
