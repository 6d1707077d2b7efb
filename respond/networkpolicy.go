package respond

import (
	"context"
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"
	"k8s.io/client-go/kubernetes"
)

var networkPolicies = schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "networkpolicies"}

// networkPolicyBackend quarantines workloads outside the mesh: a
// NetworkPolicy that selects the pods for Ingress and Egress with no rule
// isolates them both ways. NetworkPolicy has no deny rule and no
// dry-run, so it can neither block one edge nor shadow a policy.
type networkPolicyBackend struct {
	cs kubernetes.Interface
}

// NewNetworkPolicyBackend returns the networkpolicy backend on cs.
func NewNetworkPolicyBackend(cs kubernetes.Interface) Backend { return &networkPolicyBackend{cs: cs} }

func (b *networkPolicyBackend) Name() string { return BackendNetworkPolicy }

func (b *networkPolicyBackend) Supports(p Policy) error {
	if p.Role != RoleIsolate {
		return fmt.Errorf("the networkpolicy backend cannot express %s (only quarantine by isolation)", p.Role)
	}
	if p.DryRun {
		return fmt.Errorf("the networkpolicy backend has no dry-run")
	}
	if len(p.Selector) == 0 {
		return fmt.Errorf("networkpolicy %s: no selector (it would isolate the whole namespace)", p.Name)
	}
	return nil
}

func (b *networkPolicyBackend) Apply(ctx context.Context, p Policy) error {
	if err := b.Supports(p); err != nil {
		return err
	}
	ac := networkingv1ac.NetworkPolicy(p.Name, p.Namespace).
		WithLabels(p.labels()).
		WithAnnotations(p.annotations()).
		WithSpec(networkingv1ac.NetworkPolicySpec().
			WithPodSelector(metav1ac.LabelSelector().WithMatchLabels(p.Selector)).
			WithPolicyTypes(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress))
	_, err := b.cs.NetworkingV1().NetworkPolicies(p.Namespace).Apply(ctx, ac,
		metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	return kubeErr(err, "patch", networkPolicies, p.Namespace)
}

func (b *networkPolicyBackend) Delete(ctx context.Context, p Policy) error {
	err := b.cs.NetworkingV1().NetworkPolicies(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return kubeErr(err, "delete", networkPolicies, p.Namespace)
}

func (b *networkPolicyBackend) List(ctx context.Context, instance, actionID string) ([]Policy, error) {
	list, err := b.cs.NetworkingV1().NetworkPolicies("").List(ctx, metav1.ListOptions{LabelSelector: selectorFor(instance, actionID)})
	if err != nil {
		return nil, kubeErr(err, "list", networkPolicies, "")
	}
	var out []Policy
	var errs []error
	for _, np := range list.Items {
		meta, _, err := metaFrom(np.Labels, np.Annotations)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s/%s: %w", np.Namespace, np.Name, err))
			continue
		}
		out = append(out, Policy{
			Name: np.Name, Namespace: np.Namespace, Role: Role(np.Labels[LabelRole]),
			Selector: cloneMap(np.Spec.PodSelector.MatchLabels), Meta: meta,
		})
	}
	sortPolicies(out)
	if len(errs) > 0 {
		return out, fmt.Errorf("networkpolicies: %v", errs)
	}
	return out, nil
}
