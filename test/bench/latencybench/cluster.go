package main

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
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

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/meshguard/meshguard/scenario"
)

var authzGVR = schema.GroupVersionResource{Group: "security.istio.io", Version: "v1", Resource: "authorizationpolicies"}

// cluster is the round's part of the shared kube-apiserver.
type cluster struct {
	cs         kubernetes.Interface
	dyn        dynamic.Interface
	namespaces []string
	instance   string            // respond.instance: the label on every policy serve writes
	sa         map[string]string // namespace/workload -> its ServiceAccount
	pods       map[podKey]bool   // the pods created so far
}

// podKey is a pod of the mesh as its records show it: a workload at one
// address.
type podKey struct {
	namespace, workload string
	ip                  netip.Addr
}

// prepare creates the mesh's namespaces, and in them every workload's
// ServiceAccount and a Deployment selecting app=WORKLOAD: the responder
// enforces only against identities the cluster confirms, and selects pods
// by their Deployment's labels (as test/e2e prepares them).
func (c *cluster) prepare(ctx context.Context, mesh scenario.Mesh) error {
	c.sa, c.pods = map[string]string{}, map[podKey]bool{}
	for _, s := range mesh.Services {
		c.sa[s.Namespace+"/"+s.Name] = s.SA
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

// ensurePods creates, as running pods of their Deployments, the workloads
// at the addresses records are about to use, before they are sent: in a
// cluster a pod exists before its proxy reports a request. The responder
// blocks a plaintext caller by its pods' IPs as the cluster lists them,
// so without pods an mTLS downgrade could be detected but never blocked.
// Pods whose address a rollout retired stay (test/infra runs no kubelet
// or controllers); they add addresses to such a policy, never remove one.
func (c *cluster) ensurePods(ctx context.Context, records plog.LogRecordSlice) error {
	for i := range records.Len() {
		attrs := records.At(i).Attributes()
		get := func(k string) string {
			v, _ := attrs.Get(k)
			return v.Str()
		}
		src, dst := get("upstream_local_address"), get("downstream_local_address")
		if get("reporter") == "destination" {
			src = get("downstream_remote_address")
		}
		for _, k := range []podKey{
			{get("source_namespace"), get("source_workload"), addrOf(src)},
			{get("destination_namespace"), get("destination_workload"), addrOf(dst)},
		} {
			if c.pods[k] || !k.ip.IsValid() || k.ip.IsLoopback() {
				continue
			}
			sa, ok := c.sa[k.namespace+"/"+k.workload]
			if !ok {
				continue // not a workload of the mesh (an unknown destination)
			}
			if err := c.createPod(ctx, k, sa); err != nil {
				return err
			}
			c.pods[k] = true
		}
	}
	return nil
}

// addrOf is the address of an "ip:port" attribute, invalid when it has none.
func addrOf(hostPort string) netip.Addr {
	ap, err := netip.ParseAddrPort(hostPort)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr()
}

// createPod creates k's pod with the labels its Deployment selects, then
// gives it a running status with k's address, as the kubelet would.
func (c *cluster) createPod(ctx context.Context, k podKey, sa string) error {
	name := k.workload + "-" + strings.NewReplacer(".", "-", ":", "-").Replace(k.ip.String())
	pod, err := c.cs.CoreV1().Pods(k.namespace).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": k.workload}},
		Spec:       corev1.PodSpec{ServiceAccountName: sa, Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create pod %s/%s: %w", k.namespace, name, err)
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: k.ip.String(), PodIPs: []corev1.PodIP{{IP: k.ip.String()}}}
	if _, err := c.cs.CoreV1().Pods(k.namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("set the address of pod %s/%s: %w", k.namespace, name, err)
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
		_ = c.cs.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
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
