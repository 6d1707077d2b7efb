package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"

	"github.com/meshguard/meshguard/identity"
	"github.com/meshguard/meshguard/scenario"
)

// cluster is a mixed mesh's Kubernetes objects: namespaces, service
// accounts, Deployments, ReplicaSets, pods and Services, as the API would
// list them, built from the scenario's inventory.
type cluster struct {
	mesh     scenario.Mesh
	pods     []scenario.Pod
	deploys  map[string]*appsv1.Deployment // ns/name
	accounts map[string]bool               // ns/name
}

func newCluster(mesh scenario.Mesh, pods []scenario.Pod) *cluster {
	c := &cluster{mesh: mesh, pods: pods, deploys: map[string]*appsv1.Deployment{}, accounts: map[string]bool{}}
	for _, p := range pods {
		c.accounts[p.Namespace+"/"+p.SA] = true
		if c.deploys[p.Namespace+"/"+p.Workload] == nil {
			sel := map[string]string{"app": p.App, "version": p.Version}
			c.deploys[p.Namespace+"/"+p.Workload] = &appsv1.Deployment{
				TypeMeta:   metav1.TypeMeta{Kind: "Deployment", APIVersion: "apps/v1"},
				ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Workload, UID: types.UID("deploy-" + p.Namespace + "-" + p.Workload)},
				Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: sel},
					Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel}, Spec: corev1.PodSpec{ServiceAccountName: p.SA}}},
			}
		}
	}
	return c
}

func controllerRef(kind, apiVersion, name string) []metav1.OwnerReference {
	yes := true
	return []metav1.OwnerReference{{Kind: kind, APIVersion: apiVersion, Name: name, UID: types.UID(kind + "-" + name), Controller: &yes}}
}

func (c *cluster) podObject(p scenario.Pod) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name, UID: types.UID(p.UID),
			CreationTimestamp: metav1.NewTime(p.From),
			Labels:            map[string]string{"app": p.App, "version": p.Version, "pod-template-hash": p.Hash},
			OwnerReferences:   controllerRef("ReplicaSet", "apps/v1", p.ReplicaSet)},
		Spec:   corev1.PodSpec{ServiceAccountName: p.SA, NodeName: p.Node},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: p.IP.String(), PodIPs: []corev1.PodIP{{IP: p.IP.String()}}},
	}
}

// objects are what the cluster holds at the start: everything but the
// pods created later.
func (c *cluster) objects(start time.Time) []runtime.Object {
	var out []runtime.Object
	nss, rsets, svcs := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, p := range c.pods {
		if !nss[p.Namespace] {
			nss[p.Namespace] = true
			out = append(out, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: p.Namespace}})
		}
		if k := p.Namespace + "/" + p.ReplicaSet; !rsets[k] {
			rsets[k] = true
			out = append(out, &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.ReplicaSet,
				OwnerReferences: controllerRef("Deployment", "apps/v1", p.Workload)}})
		}
		if k := p.Namespace + "/" + p.App; !svcs[k] {
			svcs[k] = true
			out = append(out, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.App},
				Spec: corev1.ServiceSpec{Selector: map[string]string{"app": p.App}}})
		}
		if !p.From.After(start) {
			out = append(out, c.podObject(p))
		}
	}
	for k := range c.accounts {
		ns, name, _ := cutSlash(k)
		out = append(out, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})
	}
	return out
}

func cutSlash(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// startResolver runs identity's resolver on client-go's fake clientset
// holding the cluster: the start's objects listed, the pods created later
// then created in the order they were, each waited for, so that an
// address reused by a later pod ends the earlier pod's tenure where the
// later one's begins. Deletions are not played: the resolver stamps them
// with the wall clock, not the record's event time, and a later pod's
// creation already ends the tenure of the address it takes.
func startResolver(ctx context.Context, c *cluster, start time.Time, trustDomain string) (*identity.Resolver, error) {
	cs := fake.NewClientset(c.objects(start)...)
	cfg := identity.DefaultConfig()
	cfg.TrustDomain = trustDomain
	// Tenures are kept as long as the run: the resolver prunes by the
	// wall clock, and the scenario's event time is in the past.
	cfg.Remember = 1 << 62
	r := identity.New(cfg)
	if err := r.Start(ctx, cs, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		return nil, err
	}
	if err := waitFor(ctx, r.Synced); err != nil {
		return nil, fmt.Errorf("identity resolver on the scenario's cluster: %w", err)
	}
	later := slices.DeleteFunc(slices.Clone(c.pods), func(p scenario.Pod) bool { return !p.From.After(start) })
	slices.SortStableFunc(later, func(a, b scenario.Pod) int { return a.From.Compare(b.From) })
	for _, p := range later {
		if _, err := cs.CoreV1().Pods(p.Namespace).Create(ctx, c.podObject(p), metav1.CreateOptions{}); err != nil {
			return nil, err
		}
		if err := waitFor(ctx, func() bool {
			id, ok := r.ResolveIP(p.IP, p.From)
			return ok && id.Workload == p.Workload
		}); err != nil {
			return nil, fmt.Errorf("pod %s/%s never resolved: %w", p.Namespace, p.Name, err)
		}
	}
	return r, nil
}

func waitFor(ctx context.Context, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	return nil
}

// apiServer answers the reads respond makes to confirm identities (a
// service account, a Deployment, pods by address or labels) from the
// cluster as it stands at the responder's clock: pods that have not
// started or have ended are not listed. respond takes a *rest.Config
// only (respond.Deps.Kube), so the cluster is served over HTTP,
// in-process.
type apiServer struct {
	c       *cluster
	now     func() time.Time
	srv     *httptest.Server
	unknown atomic.Int64 // requests for anything else
}

func newAPIServer(c *cluster, now func() time.Time) *apiServer {
	a := &apiServer{c: c, now: now}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/namespaces/{ns}/serviceaccounts/{name}", a.serviceAccount)
	mux.HandleFunc("GET /apis/apps/v1/namespaces/{ns}/deployments/{name}", a.deployment)
	mux.HandleFunc("GET /api/v1/pods", a.listPods)
	mux.HandleFunc("GET /api/v1/namespaces/{ns}/pods", a.listPods)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		a.unknown.Add(1)
		writeStatus(w, apierrors.NewNotFound(schema.GroupResource{Resource: r.URL.Path}, ""))
	})
	a.srv = httptest.NewServer(mux)
	return a
}

func (a *apiServer) config() *rest.Config { return &rest.Config{Host: a.srv.URL} }
func (a *apiServer) Close()               { a.srv.Close() }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func writeStatus(w http.ResponseWriter, err *apierrors.StatusError) {
	st := err.ErrStatus
	st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(int(st.Code))
	_ = json.NewEncoder(w).Encode(st)
}

func (a *apiServer) serviceAccount(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("ns"), r.PathValue("name")
	if !a.c.accounts[ns+"/"+name] {
		writeStatus(w, apierrors.NewNotFound(schema.GroupResource{Resource: "serviceaccounts"}, name))
		return
	}
	writeJSON(w, &corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{Kind: "ServiceAccount", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})
}

func (a *apiServer) deployment(w http.ResponseWriter, r *http.Request) {
	d := a.c.deploys[r.PathValue("ns")+"/"+r.PathValue("name")]
	if d == nil {
		writeStatus(w, apierrors.NewNotFound(schema.GroupResource{Group: "apps", Resource: "deployments"}, r.PathValue("name")))
		return
	}
	writeJSON(w, d)
}

func (a *apiServer) listPods(w http.ResponseWriter, r *http.Request) {
	ns := r.PathValue("ns")
	ls, err := labels.Parse(r.URL.Query().Get("labelSelector"))
	if err != nil {
		writeStatus(w, apierrors.NewBadRequest(err.Error()))
		return
	}
	fs, err := fields.ParseSelector(r.URL.Query().Get("fieldSelector"))
	if err != nil {
		writeStatus(w, apierrors.NewBadRequest(err.Error()))
		return
	}
	ipStr, byIP := fs.RequiresExactMatch("status.podIP")
	ip, _ := netip.ParseAddr(ipStr)
	now := a.now()
	list := &corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}}
	for _, p := range a.c.pods {
		if !p.Running(now) || (ns != "" && p.Namespace != ns) || (byIP && p.IP != ip) {
			continue
		}
		o := a.c.podObject(p)
		if !ls.Matches(labels.Set(o.Labels)) {
			continue
		}
		list.Items = append(list.Items, *o)
	}
	writeJSON(w, list)
}
