package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/meshguard/meshguard/scenario"
)

var authzGVR = schema.GroupVersionResource{Group: "security.istio.io", Version: "v1", Resource: "authorizationpolicies"}

// cluster is the round's part of the shared kube-apiserver.
type cluster struct {
	cs         kubernetes.Interface
	dyn        dynamic.Interface
	namespaces []string
	instance   string // respond.instance: the label on every policy serve writes
}

// prepare creates the mesh's namespaces, and in them every workload's
// ServiceAccount and a Deployment selecting app=WORKLOAD: the responder
// enforces only against identities the cluster confirms, and selects pods
// by their Deployment's labels (as test/e2e prepares them).
func (c *cluster) prepare(ctx context.Context, mesh scenario.Mesh) error {
	for _, s := range mesh.Services {
		if !slices.Contains(c.namespaces, s.Namespace) {
			_, err := c.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.Namespace}}, metav1.CreateOptions{})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("create namespace %s: %w", s.Namespace, err)
			}
			c.namespaces = append(c.namespaces, s.Namespace)
		}
		_, err := c.cs.CoreV1().ServiceAccounts(s.Namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: s.SA}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create service account %s/%s: %w", s.Namespace, s.SA, err)
		}
		labels := map[string]string{"app": s.Name}
		dep := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: s.Namespace},
			Spec: appsv1.DeploymentSpec{
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{ServiceAccountName: s.SA, Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}},
				},
			},
		}
		if _, err := c.cs.AppsV1().Deployments(s.Namespace).Create(ctx, dep, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create deployment %s/%s: %w", s.Namespace, s.Name, err)
		}
	}
	return nil
}

// clean deletes what prepare and serve created. The namespaces stay
// Terminating: test/infra runs no namespace controller to finalize them.
func (c *cluster) clean() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, ns := range c.namespaces {
		_ = c.dyn.Resource(authzGVR).Namespace(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "meshguard.io/instance=" + c.instance})
		_ = c.cs.AppsV1().Deployments(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
		_ = c.cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
	}
}

// applied is a policy serve wrote, as polling saw it arrive.
type applied struct {
	namespace, name string
	detectionID     string
	seen            time.Time // when a list first returned it
	created         time.Time // its creationTimestamp (whole seconds)
}

// policyPoll records every AuthorizationPolicy of the instance as it
// appears, cluster-wide, by listing every 200 ms. Not a watch: on
// test/infra's kube-apiserver a watch of the CRD from "now" fails with
// "Too large resource version" (its watch cache lags etcd), while a list
// reads etcd itself.
type policyPoll struct {
	mu  sync.Mutex
	got []applied
}

func (c *cluster) pollPolicies(ctx context.Context) (*policyPoll, error) {
	pw := &policyPoll{}
	if err := c.collect(ctx, pw); err != nil {
		return nil, err
	}
	go func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			_ = c.collect(ctx, pw) // a failed list is retried on the next tick
		}
	}()
	return pw, nil
}

// collect lists the instance's policies and adds those not seen yet.
func (c *cluster) collect(ctx context.Context, pw *policyPoll) error {
	list, err := c.dyn.Resource(authzGVR).List(ctx, metav1.ListOptions{LabelSelector: "meshguard.io/instance=" + c.instance})
	if err != nil {
		return fmt.Errorf("list authorizationpolicies: %w", err)
	}
	now := time.Now()
	for i := range list.Items {
		pw.add(&list.Items[i], now)
	}
	return nil
}

func (pw *policyPoll) add(u *unstructured.Unstructured, seen time.Time) {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	for _, p := range pw.got {
		if p.namespace == u.GetNamespace() && p.name == u.GetName() {
			return
		}
	}
	pw.got = append(pw.got, applied{namespace: u.GetNamespace(), name: u.GetName(),
		detectionID: u.GetAnnotations()["meshguard.io/detection-id"], seen: seen, created: u.GetCreationTimestamp().Time})
}

// first is the earliest policy for detection id.
func (pw *policyPoll) first(id string) (applied, bool) {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	for _, p := range pw.got {
		if p.detectionID == id {
			return p, true
		}
	}
	return applied{}, false
}
