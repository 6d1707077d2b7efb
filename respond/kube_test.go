package respond

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/storage"
	"github.com/meshguard/meshguard/test/testenv"
)

func randSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// kubeEnv is one test's corner of the shared apiserver: an application
// namespace with the Deployments and ServiceAccounts "payments",
// "cart", "web", "api" and "db" (Deployment x selects app=x), a root
// namespace, and an instance label of its own. Sources must exist in the
// cluster to be enforced against: the callers the tests name are there.
type kubeEnv struct {
	cfg      *rest.Config
	cs       kubernetes.Interface
	dyn      dynamic.Interface
	app      string
	root     string
	instance string
}

func newKubeEnv(t *testing.T) *kubeEnv {
	t.Helper()
	cfg := testenv.KubeConfig(t)
	e := &kubeEnv{
		cfg: cfg, cs: kubernetes.NewForConfigOrDie(cfg), dyn: dynamic.NewForConfigOrDie(cfg),
		app: "mg-app-" + randSuffix(), root: "mg-root-" + randSuffix(), instance: "test-" + randSuffix(),
	}
	ctx := context.Background()
	for _, ns := range []string{e.app, e.root} {
		if _, err := e.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, wl := range []string{"payments", "cart", "web", "api", "db"} {
		e.deployment(t, e.app, wl)
		e.serviceAccount(t, e.app, wl)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		sel := metav1.ListOptions{LabelSelector: LabelInstance + "=" + e.instance}
		for _, ns := range []string{e.app, e.root} {
			_ = e.dyn.Resource(authorizationPolicies).Namespace(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, sel)
			_ = e.cs.NetworkingV1().NetworkPolicies(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, sel)
			_ = e.cs.AppsV1().Deployments(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
			_ = e.cs.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}, metav1.ListOptions{})
			_ = e.cs.CoreV1().ServiceAccounts(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
			// No namespace controller runs here: the namespace stays
			// Terminating, empty.
			_ = e.cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
		}
	})
	return e
}

func (e *kubeEnv) deployment(t *testing.T, ns, name string) {
	t.Helper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{ServiceAccountName: name,
					Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app:1"}}},
			},
		},
	}
	if _, err := e.cs.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (e *kubeEnv) serviceAccount(t *testing.T, ns, name string) {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	if _, err := e.cs.CoreV1().ServiceAccounts(ns).Create(context.Background(), sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// pod creates a running pod with IP ip, as the kubelet would report it
// (no kubelet runs here: the test writes the status).
func (e *kubeEnv) pod(t *testing.T, ns, name, ip, sa string, labels map[string]string, hostNetwork bool) {
	t.Helper()
	ctx := context.Background()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: corev1.PodSpec{ServiceAccountName: sa, HostNetwork: hostNetwork, NodeName: "node-1",
			Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app:1"}}},
	}
	p, err := e.cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}
	if _, err := e.cs.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// ip returns an address no other test uses (in 10.100.0.0-10.199.255.255,
// clear of the ranges the tests protect).
func ip() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("10.%d.%d.%d", 100+b[0]%100, b[1], 1+b[2]%250)
}

// config is a respond config scoped to the test.
func (e *kubeEnv) config(mode models.Mode) Config {
	cfg := DefaultConfig()
	cfg.Mode = mode
	cfg.RootNamespace = e.root
	cfg.Instance = e.instance
	cfg.LeaderElection.Enabled = false
	return cfg
}

type harness struct {
	r     *Responder
	store *storage.Memory
	sink  *sink
	clock *clock
}

func (e *kubeEnv) responder(t *testing.T, cfg Config, c *clock, rc *rest.Config) harness {
	t.Helper()
	if c == nil {
		c = &clock{t: time.Now().UTC().Truncate(time.Second)}
	}
	if rc == nil {
		rc = e.cfg
	}
	h := harness{store: storage.NewMemory(16), sink: &sink{}, clock: c}
	r, err := New(cfg, Deps{Kube: rc, Actions: h.store, Blast: h.store, Clock: c.now, Sink: h.sink, Identity: "replica-" + randSuffix()})
	if err != nil {
		t.Fatal(err)
	}
	h.r = r
	return h
}

func (e *kubeEnv) get(t *testing.T, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u, err := e.dyn.Resource(authorizationPolicies).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get %s/%s: %v", ns, name, err)
	}
	return u
}

func (e *kubeEnv) count(t *testing.T) int {
	t.Helper()
	list, err := e.dyn.Resource(authorizationPolicies).Namespace("").List(context.Background(),
		metav1.ListOptions{LabelSelector: LabelInstance + "=" + e.instance})
	if err != nil {
		t.Fatal(err)
	}
	return len(list.Items)
}

func (e *kubeEnv) principal(sa string) string { return "cluster.local/ns/" + e.app + "/sa/" + sa }

func str(u *unstructured.Unstructured, path ...string) string {
	s, _, _ := unstructured.NestedString(u.Object, path...)
	return s
}

func firstSource(t *testing.T, u *unstructured.Unstructured) map[string]any {
	t.Helper()
	rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
	if len(rules) != 1 {
		t.Fatalf("%s: rules = %v", u.GetName(), rules)
	}
	from, _ := rules[0].(map[string]any)["from"].([]any)
	if len(from) != 1 {
		t.Fatalf("%s: from = %v", u.GetName(), from)
	}
	src, _ := from[0].(map[string]any)["source"].(map[string]any)
	return src
}

func TestKubeBlockEdgeEnforceExtendRevoke(t *testing.T) {
	e := newKubeEnv(t)
	h := e.responder(t, e.config(models.ModeEnforce), nil, nil)
	ctx := context.Background()
	d := detection(models.LateralMovement, models.SeverityHigh, e.principal("cart"), e.app, "payments")
	d.Source.Workload = "cart"

	start := time.Now()
	if err := h.r.HandleDetection(ctx, d); err != nil {
		t.Fatal(err)
	}
	t.Logf("detection -> enforced AuthorizationPolicy in %v", time.Since(start))
	a := h.sink.last()
	if a.State != models.StateApplied || a.Mode != models.ModeEnforce || a.PolicyNamespace != e.app {
		t.Fatalf("action %+v", a)
	}
	u := e.get(t, a.PolicyNamespace, a.PolicyName)
	if got := str(u, "spec", "action"); got != "DENY" {
		t.Errorf("action %q", got)
	}
	if sel, _, _ := unstructured.NestedStringMap(u.Object, "spec", "selector", "matchLabels"); len(sel) != 1 || sel["app"] != "payments" {
		t.Errorf("selector %v, want the Deployment's app=payments", sel)
	}
	if ps, _, _ := unstructured.NestedStringSlice(firstSource(t, u), "principals"); len(ps) != 1 || ps[0] != e.principal("cart") {
		t.Errorf("principals %v", ps)
	}
	ann := u.GetAnnotations()
	if u.GetLabels()[LabelManagedBy] != "meshguard" || ann[AnnotationDetectionID] != d.ID || ann[AnnotationReason] == "" {
		t.Errorf("labels %v annotations %v", u.GetLabels(), ann)
	}
	if _, dry := ann[AnnotationDryRun]; dry {
		t.Error("enforced policy carries istio.io/dry-run")
	}
	exp, err := time.Parse(time.RFC3339, ann[AnnotationExpiresAt])
	if err != nil || !exp.Equal(h.clock.now().Add(time.Hour)) {
		t.Errorf("expires-at %q (%v)", ann[AnnotationExpiresAt], err)
	}
	if mf := u.GetManagedFields(); len(mf) != 1 || mf[0].Manager != FieldManager || mf[0].Operation != metav1.ManagedFieldsOperationApply {
		t.Errorf("managed fields %+v, want one server-side apply by meshguard", mf)
	}

	// The same detection, updated 20 minutes later: one policy, later expiry.
	h.clock.add(20 * time.Minute)
	d.Updates = 2
	if err := h.r.HandleDetection(ctx, d); err != nil {
		t.Fatal(err)
	}
	if n := e.count(t); n != 1 {
		t.Errorf("%d policies after an update, want 1", n)
	}
	u = e.get(t, a.PolicyNamespace, a.PolicyName)
	if got := u.GetAnnotations()[AnnotationExpiresAt]; got != h.clock.now().Add(time.Hour).UTC().Format(time.RFC3339) {
		t.Errorf("expires-at after update %s", got)
	}
	list, err := h.r.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != a.ID || list[0].Mode != models.ModeEnforce {
		t.Fatalf("List = %+v, %v", list, err)
	}

	// Revoke: gone, and the ongoing detection does not bring it back.
	if _, err := h.r.Revoke(ctx, a.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	if n := e.count(t); n != 0 {
		t.Errorf("%d policies after revoke", n)
	}
	d.Updates = 3
	_ = h.r.HandleDetection(ctx, d)
	if last := h.sink.last(); last.State != models.StateSkipped || !strings.Contains(last.Reason, "revoked by alice") {
		t.Errorf("after revoke: %+v", last)
	}
	if _, err := h.r.Revoke(ctx, a.ID, "alice"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second revoke: %v", err)
	}
	rows := h.store.Actions()
	var states []string
	for _, r := range rows {
		states = append(states, r.State+"/"+r.Actor)
	}
	if got := strings.Join(states, " "); got != "applied/meshguard extended/meshguard revoked/alice skipped/meshguard" {
		t.Errorf("audit %s", got)
	}
}

func TestKubeQuarantineAndPlaintext(t *testing.T) {
	e := newKubeEnv(t)
	h := e.responder(t, e.config(models.ModeEnforce), nil, nil)
	ctx := context.Background()
	d := detection(models.LateralMovement, models.SeverityCritical, e.principal("cart"), e.app, "payments")
	d.Source.Workload = "cart"
	if err := h.r.HandleDetection(ctx, d); err != nil {
		t.Fatal(err)
	}
	a := h.sink.last()
	if a.State != models.StateApplied || a.Kind != models.ActionQuarantine {
		t.Fatalf("%+v", a)
	}
	out := e.get(t, e.root, a.ID+"-out")
	if _, has, _ := unstructured.NestedMap(out.Object, "spec", "selector"); has {
		t.Error("the mesh-wide outbound DENY has a selector")
	}
	if ps, _, _ := unstructured.NestedStringSlice(firstSource(t, out), "principals"); len(ps) != 1 || ps[0] != e.principal("cart") {
		t.Errorf("outbound principals %v", ps)
	}
	in := e.get(t, e.app, a.ID+"-in")
	rules, _, _ := unstructured.NestedSlice(in.Object, "spec", "rules")
	sel, _, _ := unstructured.NestedStringMap(in.Object, "spec", "selector", "matchLabels")
	if len(rules) != 1 || len(rules[0].(map[string]any)) != 0 || sel["app"] != "cart" || str(in, "spec", "action") != "DENY" {
		t.Errorf("inbound: rules %v selector %v", rules, sel)
	}

	// A plaintext caller has no principal: blocked by IP, its pod's.
	addr := ip()
	e.pod(t, e.app, "web-1", addr, "web", map[string]string{"app": "web"}, false)
	p := models.Detection{ID: "det-plain", Kind: models.CredentialStuffing, Severity: models.SeverityHigh, Score: 8,
		Source: models.Party{IP: addr}, Destination: models.Party{Namespace: e.app, Workload: "payments"}}
	if err := h.r.HandleDetection(ctx, p); err != nil {
		t.Fatal(err)
	}
	a = h.sink.last()
	u := e.get(t, a.PolicyNamespace, a.PolicyName)
	if ips, _, _ := unstructured.NestedStringSlice(firstSource(t, u), "ipBlocks"); len(ips) != 1 || ips[0] != addr+"/32" || a.Mode != models.ModeEnforce {
		t.Errorf("ipBlocks %v, mode %s", ips, a.Mode)
	}

	// Unknown destination: nothing selects it, so nothing is written.
	q := detection(models.LateralMovement, models.SeverityHigh, e.principal("web"), e.app, "ghost")
	_ = h.r.HandleDetection(ctx, q)
	if a := h.sink.last(); a.State != models.StateSkipped || !strings.Contains(a.Reason, "ghost") {
		t.Errorf("unknown workload: %+v", a)
	}
}

func TestKubeDryRunPromotionAndApprove(t *testing.T) {
	e := newKubeEnv(t)
	cfg := e.config(models.ModeEnforce)
	cfg.PromoteAfter = 5 * time.Minute
	h := e.responder(t, cfg, nil, nil)
	ctx := context.Background()
	d := detection(models.LateralMovement, models.SeverityHigh, e.principal("cart"), e.app, "payments")
	if err := h.r.HandleDetection(ctx, d); err != nil {
		t.Fatal(err)
	}
	a := h.sink.last()
	u := e.get(t, a.PolicyNamespace, a.PolicyName)
	if a.Mode != models.ModeDryRun || u.GetAnnotations()[AnnotationDryRun] != "true" || u.GetAnnotations()[AnnotationPromoteAt] == "" {
		t.Fatalf("staged: %+v %v", a, u.GetAnnotations())
	}
	h.clock.add(4 * time.Minute)
	if err := h.r.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if _, dry := e.get(t, a.PolicyNamespace, a.PolicyName).GetAnnotations()[AnnotationDryRun]; !dry {
		t.Fatal("promoted before promote_after")
	}
	h.clock.add(time.Minute)
	if err := h.r.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	ann := e.get(t, a.PolicyNamespace, a.PolicyName).GetAnnotations()
	if _, dry := ann[AnnotationDryRun]; dry || ann[AnnotationPromoteAt] != "" {
		t.Fatalf("after promote_after: %v", ann)
	}
	if last := h.sink.last(); last.State != models.StatePromoted {
		t.Errorf("%+v", last)
	}

	// Global dry-run: a person approves.
	h2 := e.responder(t, e.config(models.ModeDryRun), nil, nil)
	d2 := detection(models.LateralMovement, models.SeverityHigh, e.principal("web"), e.app, "payments")
	if err := h2.r.HandleDetection(ctx, d2); err != nil {
		t.Fatal(err)
	}
	a2 := h2.sink.last()
	if a2.Mode != models.ModeDryRun {
		t.Fatalf("%+v", a2)
	}
	got, err := h2.r.Approve(ctx, a2.ID, "bob")
	if err != nil || got.Mode != models.ModeEnforce {
		t.Fatalf("approve: %+v %v", got, err)
	}
	if _, dry := e.get(t, a2.PolicyNamespace, a2.PolicyName).GetAnnotations()[AnnotationDryRun]; dry {
		t.Error("approved policy still dry-run")
	}
	if last := h2.store.Actions(); last[len(last)-1].State != "promoted" || last[len(last)-1].Actor != "bob" {
		t.Errorf("audit %+v", last[len(last)-1])
	}
}

func TestKubeExpiryAfterRestart(t *testing.T) {
	e := newKubeEnv(t)
	cfg := e.config(models.ModeEnforce)
	cfg.TTL = 10 * time.Minute
	c := &clock{t: time.Now().UTC().Truncate(time.Second)}
	h := e.responder(t, cfg, c, nil)
	ctx := context.Background()
	if err := h.r.HandleDetection(ctx, detection(models.LateralMovement, models.SeverityHigh, e.principal("cart"), e.app, "payments")); err != nil {
		t.Fatal(err)
	}
	if n := e.count(t); n != 1 {
		t.Fatalf("%d policies", n)
	}
	// A new process: it knows nothing but what the API server holds.
	c.add(11 * time.Minute)
	h2 := e.responder(t, cfg, c, nil)
	if err := h2.r.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.count(t); n != 0 {
		t.Errorf("%d policies after expiry", n)
	}
	if rows := h2.store.Actions(); len(rows) != 1 || rows[0].State != "expired" || rows[0].ActionID != h.sink.last().ID {
		t.Errorf("audit %+v", rows)
	}
}

func TestKubeProtectedAndBudget(t *testing.T) {
	e := newKubeEnv(t)
	cfg := e.config(models.ModeEnforce)
	cfg.BudgetPerHour = 1
	cfg.ProtectedWorkloads = append(cfg.ProtectedWorkloads, "cart")
	h := e.responder(t, cfg, nil, nil)
	ctx := context.Background()
	for _, d := range []models.Detection{
		detection(models.LateralMovement, models.SeverityHigh, e.principal("web"), "kube-system", "coredns"),
		detection(models.LateralMovement, models.SeverityHigh, "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account", e.app, "payments"),
		detection(models.LateralMovement, models.SeverityHigh, e.principal("web"), e.root, "istiod"),
		detection(models.LateralMovement, models.SeverityHigh, e.principal("web"), e.app, "cart"),
	} {
		if err := h.r.HandleDetection(ctx, d); err != nil {
			t.Fatal(err)
		}
		if a := h.sink.last(); a.State != models.StateSkipped || !strings.Contains(a.Reason, "protected") {
			t.Errorf("%s -> %s/%s: %+v", d.Source.Principal, d.Destination.Namespace, d.Destination.Workload, a)
		}
	}
	if n := e.count(t); n != 0 {
		t.Fatalf("%d policies in protected places", n)
	}
	_ = h.r.HandleDetection(ctx, detection(models.LateralMovement, models.SeverityHigh, e.principal("web"), e.app, "payments"))
	_ = h.r.HandleDetection(ctx, detection(models.LateralMovement, models.SeverityHigh, e.principal("api"), e.app, "payments"))
	if a := h.sink.last(); a.State != models.StateAlerted || !strings.Contains(a.Reason, "BUDGET EXHAUSTED") {
		t.Errorf("over budget: %+v", a)
	}
	// A restart does not reset the budget: it is counted from the cluster.
	h2 := e.responder(t, cfg, h.clock, nil)
	_ = h2.r.HandleDetection(ctx, detection(models.LateralMovement, models.SeverityHigh, e.principal("db"), e.app, "payments"))
	if a := h2.sink.last(); a.State != models.StateAlerted {
		t.Errorf("over budget after restart: %+v", a)
	}
	if n := e.count(t); n != 1 {
		t.Errorf("%d policies, want 1 (the budget)", n)
	}
}
