package respond

import (
	"context"
	"errors"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

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
