package policy_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/policy"
	"github.com/meshguard/meshguard/policy/policytest"
	"github.com/meshguard/meshguard/respond"
	"github.com/meshguard/meshguard/test/testenv"
)

var aps = schema.GroupVersionResource{Group: "security.istio.io", Version: "v1", Resource: "authorizationpolicies"}

// flowsTo returns n destination-side flows from caller (a principal, or
// "" for plaintext) to ns/api at t, with dry-run verdict v.
func flowsTo(ns, caller string, n int, t time.Time, v models.DryRun) []models.Flow {
	base := models.NewFlowIDBase("kubetest", 0, t.UnixNano()+int64(len(caller)))
	out := make([]models.Flow, n)
	for i := range out {
		tls := models.TLSMutual
		if caller == "" {
			tls = models.TLSPlaintext
		}
		wl := "web"
		if caller != "" {
			wl = caller[strings.LastIndex(caller, "/")+1:]
		}
		out[i] = models.Flow{ID: base.ID(i), TimestampMs: t.Add(time.Duration(i) * time.Second).UnixMilli(),
			Reporter: models.ReporterDestination,
			Source:   models.Source{Principal: caller, Workload: wl, Namespace: ns, IP: netip.MustParseAddr("10.1.2.3")},
			Destination: models.Destination{Workload: "api", Namespace: ns, Service: "api." + ns + ".svc.cluster.local", Port: 8080,
				Principal: "cluster.local/ns/" + ns + "/sa/api"},
			Protocol: "HTTP/1.1", Method: "GET", Path: "/v1/items/" + fmt.Sprint(i), PathTemplate: "/v1/items/{id}",
			ResponseCode: 200, TLS: tls, Count: 1, DryRunAllow: v}
	}
	return out
}

// The dry-run round trip against the real kube-apiserver: a suggestion
// selecting the workload by its Deployment's labels is applied with
// istio.io/dry-run, read back, left alone by respond's reconcile loop,
// refused promotion while its verdicts are missing or show a denial,
// revoked, applied again, and promoted after a clean soak; each step is
// in the actions table.
func TestRolloutRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	kube := testenv.KubeConfig(t)
	cs := kubernetes.NewForConfigOrDie(kube)
	dyn := dynamic.NewForConfigOrDie(kube)
	ns := fmt.Sprintf("allow-%d", time.Now().UnixNano()%1_000_000_000)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	testenv.CreateWorkload(t, cs, testenv.Workload{NS: ns, Name: "api", SA: "api", Labels: map[string]string{"app": "api-server", "tier": "backend"}})

	store, _ := policytest.NewStore(t)
	web, batch := "cluster.local/ns/"+ns+"/sa/web", "cluster.local/ns/"+ns+"/sa/batch"
	learned := testenv.Now().Add(-3 * time.Hour).Truncate(time.Minute)
	var history []models.Flow
	history = append(history, flowsTo(ns, web, 50, learned, models.DryRunUnknown)...)
	history = append(history, flowsTo(ns, batch, 20, learned.Add(10*time.Minute), models.DryRunUnknown)...)
	history = append(history, flowsTo(ns, "", 5, learned.Add(20*time.Minute), models.DryRunUnknown)...)
	if err := store.ConsumeFlows(ctx, history); err != nil {
		t.Fatal(err)
	}

	guard := respond.DefaultConfig()
	guard.Instance = "allow-" + ns
	o := policy.DefaultOptions(learned, learned.Add(2*time.Hour))
	ss, err := policy.Learn(ctx, store, policy.Scope{Namespace: ns}, o, respond.KubeResolver(cs), guard)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 || ss[0].Skipped != "" || len(ss[0].Rules) != 2 {
		t.Fatalf("suggestions: %+v", ss)
	}
	s := ss[0]
	if s.BlastRequests != 5 || s.BlastCallers != 1 || s.NotAdmitted[0].Reason != policy.ExcludedUnattested {
		t.Errorf("blast radius %d from %d callers, not admitted %+v; want the 5 plaintext requests", s.BlastRequests, s.BlastCallers, s.NotAdmitted)
	}

	now := learned.Add(2 * time.Hour)
	r := policy.NewRollout(dyn, guard, store, store, nil)
	r.Now = func() time.Time { return now }
	r.MinSoak = 10 * time.Minute
	if _, err := r.Apply(ctx, s, "alice"); err != nil {
		t.Fatal(err)
	}
	got, err := dyn.Resource(aps).Namespace(ns).Get(ctx, s.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkObject(t, got, true, map[string]string{"app": "api-server", "tier": "backend"}, []string{batch, web})

	// respond's reconcile loop (same cluster, its own instance label)
	// never lists, expires or promotes it.
	rcfg := guard
	rcfg.LeaderElection.Enabled = false // reconcile at once, as the only replica
	resp, err := respond.New(rcfg, respond.Deps{Kube: kube, Backend: respond.NewIstioBackend(dyn), Resolver: respond.KubeResolver(cs)})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Leading() {
		t.Fatal("the responder does not lead: its reconcile would do nothing")
	}
	if err := resp.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(aps).Namespace(ns).Get(ctx, s.Name, metav1.GetOptions{}); err != nil {
		t.Fatalf("after respond's reconcile: %v", err)
	}

	// No verdict logged yet: silence is not a clean soak.
	now = now.Add(15 * time.Minute)
	if _, err := r.Promote(ctx, s.Name, "alice"); !errors.Is(err, policy.ErrNotClean) || !strings.Contains(err.Error(), "dry_run_allow_result") {
		t.Fatalf("promote without verdicts: %v", err)
	}
	// The proxy logs a shadow denial (a caller the policy leaves out).
	soak := learned.Add(2*time.Hour + time.Minute)
	verdicts := append(flowsTo(ns, web, 30, soak, models.DryRunAllowed), flowsTo(ns, "", 3, soak, models.DryRunDenied)...)
	if err := store.ConsumeFlows(ctx, verdicts); err != nil {
		t.Fatal(err)
	}
	_, v, err := r.Verdicts(ctx, s.Name)
	if err != nil {
		t.Fatal(err)
	}
	if v.Allowed != 30 || v.Denied != 3 || len(v.DeniedCallers) != 1 || v.DeniedCallers[0].Caller != ns+"/web" {
		t.Errorf("verdicts %+v, want 30 allowed, 3 denied from %s/web", v, ns)
	}
	if _, err := r.Promote(ctx, s.Name, "alice"); !errors.Is(err, policy.ErrNotClean) || !strings.Contains(err.Error(), "would have denied 3") {
		t.Fatalf("promote after a shadow denial: %v", err)
	}
	if got, _ := dyn.Resource(aps).Namespace(ns).Get(ctx, s.Name, metav1.GetOptions{}); got.GetAnnotations()[respond.AnnotationDryRun] != "true" {
		t.Fatal("a refused promotion changed the policy")
	}

	now = now.Add(time.Minute)
	if _, err := r.Revoke(ctx, s.Name, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(aps).Namespace(ns).Get(ctx, s.Name, metav1.GetOptions{}); err == nil {
		t.Fatal("revoked policy still there")
	}

	// Applied again after the denial; a clean soak follows.
	now = now.Add(10 * time.Minute)
	if _, err := r.Apply(ctx, s, "alice"); err != nil {
		t.Fatal(err)
	}
	clean := flowsTo(ns, batch, 40, now.Add(time.Minute), models.DryRunAllowed)
	if err := store.ConsumeFlows(ctx, clean); err != nil {
		t.Fatal(err)
	}
	now = now.Add(20 * time.Minute)
	a, err := r.Promote(ctx, s.Name, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if a.Mode != models.ModeEnforce || a.State != models.StatePromoted {
		t.Errorf("promoted action %+v", a)
	}
	got, err = dyn.Resource(aps).Namespace(ns).Get(ctx, s.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkObject(t, got, false, map[string]string{"app": "api-server", "tier": "backend"}, []string{batch, web})
	now = now.Add(time.Minute)
	if _, err := r.Revoke(ctx, s.Name, "bob"); err != nil {
		t.Fatal(err)
	}

	rows, err := store.RecentActions(ctx, 50)
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	for i := len(rows) - 1; i >= 0; i-- {
		if rows[i].ActionID == s.Name {
			states = append(states, rows[i].State+"/"+rows[i].Actor)
		}
	}
	want := "applied/alice skipped/alice skipped/alice revoked/bob applied/alice promoted/alice revoked/bob"
	if strings.Join(states, " ") != want {
		t.Errorf("audit: %v, want %s", states, want)
	}
}

func checkObject(t *testing.T, u *unstructured.Unstructured, dryRun bool, selector map[string]string, principals []string) {
	t.Helper()
	if action, _, _ := unstructured.NestedString(u.Object, "spec", "action"); action != "ALLOW" {
		t.Errorf("action %q", action)
	}
	if got := u.GetAnnotations()[respond.AnnotationDryRun] == "true"; got != dryRun {
		t.Errorf("dry-run annotation %v, want %v", got, dryRun)
	}
	sel, _, _ := unstructured.NestedStringMap(u.Object, "spec", "selector", "matchLabels")
	if fmt.Sprint(sel) != fmt.Sprint(selector) {
		t.Errorf("selector %v, want %v", sel, selector)
	}
	rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
	var got []string
	for _, r := range rules {
		from := r.(map[string]any)["from"].([]any)
		p, _, _ := unstructured.NestedStringSlice(from[0].(map[string]any), "source", "principals")
		got = append(got, p...)
	}
	if fmt.Sprint(got) != fmt.Sprint(principals) {
		t.Errorf("principals %v, want %v", got, principals)
	}
	if u.GetLabels()[respond.LabelInstance] != "" || u.GetLabels()[policy.LabelAllowInstance] == "" {
		t.Errorf("labels %v: want %s and not respond's %s", u.GetLabels(), policy.LabelAllowInstance, respond.LabelInstance)
	}
	if u.GetAnnotations()["meshguard.io/rule-0-confidence"] == "" || !strings.Contains(u.GetAnnotations()["meshguard.io/rule-0-evidence"], `"requests":`) {
		t.Errorf("rule evidence annotations missing: %v", u.GetAnnotations())
	}
}
