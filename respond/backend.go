package respond

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
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
