package respond

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/storage"
	"github.com/meshguard/meshguard/test/testenv"
)

// enforced counts the test's policies that are not dry-run.
func (e *kubeEnv) enforced(t *testing.T) int {
	t.Helper()
	list, err := e.dyn.Resource(authorizationPolicies).Namespace("").List(context.Background(),
		metav1.ListOptions{LabelSelector: LabelInstance + "=" + e.instance})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, u := range list.Items {
		if u.GetAnnotations()[AnnotationDryRun] != "true" {
			n++
		}
	}
	return n
}

func (e *kubeEnv) namespace(t *testing.T) string {
	t.Helper()
	ns := "mg-other-" + randSuffix()
	if _, err := e.cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_ = e.cs.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}, metav1.ListOptions{})
		_ = e.cs.CoreV1().ServiceAccounts(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
		_ = e.cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
	})
	return ns
}

// The cases of issue 13: identities a record claims are guarded one by
// one and checked against the cluster; none of these may enforce.
func TestKubeForgedIdentitiesNeverEnforce(t *testing.T) {
	e := newKubeEnv(t)
	other := e.namespace(t)
	e.serviceAccount(t, other, "web")
	e.serviceAccount(t, e.app, "istio-ingressgateway-service-account")
	cfg := e.config(models.ModeEnforce)
	cfg.ProtectedCIDRs = append(cfg.ProtectedCIDRs, "172.20.0.0/16", "192.168.49.0/24")
	cfg.BudgetPerHour = 20 // room for every dry-run below
	h := e.responder(t, cfg, nil, nil)
	ctx := context.Background()

	rootPodIP, nodePodIP, gatewayPodIP, otherPodIP := ip(), ip(), ip(), ip()
	e.pod(t, e.root, "istiod-1", rootPodIP, "istiod", map[string]string{"app": "istiod"}, false)
	e.pod(t, e.app, "node-agent-1", nodePodIP, "web", map[string]string{"app": "node-agent"}, true)
	e.pod(t, e.app, "gw-1", gatewayPodIP, "default", map[string]string{"app": "istio-ingressgateway"}, false)
	e.pod(t, other, "web-1", otherPodIP, "web", map[string]string{"app": "web"}, false)

	src := func(p models.Party) models.Detection {
		return models.Detection{ID: "det-" + randSuffix(), Kind: models.LateralMovement, Severity: models.SeverityCritical, Score: 9,
			Source: p, Destination: models.Party{Namespace: e.app, Workload: "payments"}, Updates: 1}
	}
	for _, c := range []struct {
		name  string
		d     models.Detection
		state models.ActionState
		why   string
	}{
		// The record: workload shop/frontend, principal istiod's.
		{"istiod principal behind an app workload", src(models.Party{Principal: "cluster.local/ns/istio-system/sa/istiod", Namespace: e.app, Workload: "web"}),
			models.StateSkipped, "the source principal's namespace istio-system"},
		{"istio-ingress namespace", src(models.Party{Principal: "cluster.local/ns/istio-ingress/sa/gateway"}),
			models.StateSkipped, "namespace istio-ingress"},
		{"protected service account", src(models.Party{Principal: "cluster.local/ns/" + e.app + "/sa/istio-ingressgateway-service-account"}),
			models.StateSkipped, "respond.protected_workloads"},
		{"workload in the root namespace", src(models.Party{Namespace: e.root, Workload: "istiod"}),
			models.StateSkipped, "namespace " + e.root},
		{"service range", src(models.Party{IP: "172.20.0.10"}), models.StateSkipped, "respond.protected_cidrs 172.20.0.0/16"},
		{"node range", src(models.Party{IP: "192.168.49.2"}), models.StateSkipped, "respond.protected_cidrs"},
		{"loopback", src(models.Party{IP: "127.0.0.1"}), models.StateSkipped, "respond.protected_cidrs"},
		{"ip of a pod in a protected namespace", src(models.Party{IP: rootPodIP}), models.StateSkipped, "in protected namespace " + e.root},
		{"ip of a host-network pod", src(models.Party{IP: nodePodIP}), models.StateSkipped, "host-network pod"},
		{"ip of a protected workload's pod", src(models.Party{IP: gatewayPodIP}), models.StateSkipped, "istio-ingressgateway, in respond.protected_workloads"},
		// Unprotected, but the cluster does not confirm the claims.
		{"identity conflict", src(models.Party{Principal: "cluster.local/ns/" + other + "/sa/web", Namespace: e.app, Workload: "web"}),
			models.StateApplied, "identity conflict: the principal is in namespace " + other},
		{"workload paired with another's principal", src(models.Party{Principal: e.principal("payments"), Namespace: e.app, Workload: "web"}),
			models.StateApplied, "workload " + e.app + "/web runs as service account web, not the principal's payments"},
		{"ip of no pod", src(models.Party{IP: ip()}), models.StateApplied, "is no running pod's"},
		{"ip of a pod elsewhere than claimed", src(models.Party{IP: otherPodIP, Namespace: e.app, Workload: "web"}),
			models.StateApplied, "not in the claimed namespace " + e.app},
		{"principal with no service account", src(models.Party{Principal: "cluster.local/ns/" + e.app + "/sa/ghost"}),
			models.StateApplied, "no service account " + e.app + "/ghost"},
		{"workload not in the cluster", src(models.Party{Principal: e.principal("web"), Namespace: e.app, Workload: "ghost"}),
			models.StateApplied, "the source workload is not in the cluster"},
	} {
		if err := h.r.HandleDetection(ctx, c.d); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		a := h.sink.last()
		written := a.State == models.StateApplied
		if a.State != c.state || written && a.Mode != models.ModeDryRun || !written && a.PolicyName != "" || !strings.Contains(a.Reason, c.why) {
			t.Errorf("%s: %s %s %q; want %s, not enforced, saying %q", c.name, a.State, a.Mode, a.Reason, c.state, c.why)
		}
		if a.State == models.StateApplied && !strings.Contains(a.Reason, "NOT ENFORCED") {
			t.Errorf("%s: the dry-run's alert does not say it is not enforced: %q", c.name, a.Reason)
		}
	}
	if n := e.enforced(t); n != 0 {
		t.Errorf("%d enforced policies from forged identities", n)
	}
	// Nothing above spent the budget: a real attacker is still enforced.
	if err := h.r.HandleDetection(ctx, src(models.Party{Principal: e.principal("cart"), Namespace: e.app, Workload: "cart"})); err != nil {
		t.Fatal(err)
	}
	if a := h.sink.last(); a.State != models.StateApplied || a.Mode != models.ModeEnforce {
		t.Errorf("the real attacker: %+v", a)
	}
	// An address the policy does not name (it names the principal)
	// shields no one: claiming loopback does not make an attacker safe.
	if err := h.r.HandleDetection(ctx, src(models.Party{Principal: e.principal("db"), IP: "127.0.0.1"})); err != nil {
		t.Fatal(err)
	}
	if a := h.sink.last(); a.State != models.StateApplied || a.Mode != models.ModeEnforce {
		t.Errorf("a real principal claiming a protected address: %+v", a)
	}
}

// Five forged scans from made-up IPs used to exhaust the hourly budget so
// that a real lateral movement was only alerted.
func TestKubeForgedScansCannotBurnTheBudget(t *testing.T) {
	e := newKubeEnv(t)
	cfg := e.config(models.ModeEnforce)
	cfg.BudgetPerHour = 5
	h := e.responder(t, cfg, nil, nil)
	ctx := context.Background()
	scan := func(addr string) models.Detection {
		return models.Detection{ID: "det-scan-" + addr, Kind: models.Scan, Severity: models.SeverityHigh, Score: 9,
			Source: models.Party{IP: addr}, Updates: 1}
	}
	for i := 0; i < 5; i++ {
		if err := h.r.HandleDetection(ctx, scan(ip())); err != nil {
			t.Fatal(err)
		}
		if a := h.sink.last(); a.Mode == models.ModeEnforce {
			t.Fatalf("forged scan %d enforced: %+v", i, a)
		}
	}
	// More forgeries only alert: they cannot fill the mesh with objects.
	if err := h.r.HandleDetection(ctx, scan(ip())); err != nil {
		t.Fatal(err)
	}
	if a := h.sink.last(); a.State != models.StateAlerted || !strings.Contains(a.Reason, "unconfirmed identities") {
		t.Errorf("sixth forged scan: %+v", a)
	}
	lateral := detection(models.LateralMovement, models.SeverityHigh, e.principal("cart"), e.app, "payments")
	if err := h.r.HandleDetection(ctx, lateral); err != nil {
		t.Fatal(err)
	}
	if a := h.sink.last(); a.State != models.StateApplied || a.Mode != models.ModeEnforce {
		t.Errorf("the real lateral movement after five forged scans: %+v", a)
	}
	// A restart counts the budget from the cluster the same way.
	h2 := e.responder(t, cfg, h.clock, nil)
	if err := h2.r.HandleDetection(ctx, detection(models.LateralMovement, models.SeverityHigh, e.principal("web"), e.app, "payments")); err != nil {
		t.Fatal(err)
	}
	if a := h2.sink.last(); a.State != models.StateApplied || a.Mode != models.ModeEnforce {
		t.Errorf("after a restart: %+v", a)
	}
	if n, all := e.enforced(t), e.count(t); n != 2 || all != 7 {
		t.Errorf("%d enforced of %d policies, want 2 of 7 (five forged dry-runs)", n, all)
	}
}

func TestKubeRepeatedDetectionsExtendAtMostToMaxTTL(t *testing.T) {
	e := newKubeEnv(t)
	cfg := e.config(models.ModeEnforce)
	cfg.TTL, cfg.MaxTTL = time.Hour, 2*time.Hour
	h := e.responder(t, cfg, nil, nil)
	ctx := context.Background()
	t0 := h.clock.now()
	d := detection(models.LateralMovement, models.SeverityHigh, e.principal("cart"), e.app, "payments")
	for i := 0; i < 4; i++ {
		if err := h.r.HandleDetection(ctx, d); err != nil {
			t.Fatal(err)
		}
		h.clock.add(50 * time.Minute)
		d.Updates++
	}
	a := h.sink.last()
	got := e.get(t, a.PolicyNamespace, a.PolicyName).GetAnnotations()[AnnotationExpiresAt]
	if want := t0.Add(2 * time.Hour).UTC().Format(time.RFC3339); got != want {
		t.Errorf("expires-at %s after repeats for 150m, want %s (created + max_ttl)", got, want)
	}
	if a.State != models.StateExtended || !strings.Contains(a.Reason, "respond.max_ttl") {
		t.Errorf("last repeat: %+v", a)
	}
}

// newCHStore is a migrated ClickHouse store on a fresh database.
func newCHStore(t *testing.T) *storage.ClickHouse {
	t.Helper()
	_, db := testenv.ClickHouse(t)
	cfg := storage.DefaultClickHouseConfig()
	cfg.Addr = []string{testenv.ClickHouseAddr(t)}
	cfg.Database = db
	store, err := storage.NewClickHouse(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return store
}

// A revoke holds for every replica and across restarts: it is read back
// from ClickHouse, not from one process's memory.
func TestKubeRevokeHoldsAcrossReplicasAndRestarts(t *testing.T) {
	e := newKubeEnv(t)
	store := newCHStore(t)
	cfg := e.config(models.ModeEnforce)
	c := &clock{t: testenv.Now().Truncate(time.Second)}
	newReplica := func() (*Responder, *sink) {
		s := &sink{}
		r, err := New(cfg, Deps{Kube: e.cfg, Actions: store, Blast: store, Clock: c.now, Sink: s, Identity: "replica-" + randSuffix()})
		if err != nil {
			t.Fatal(err)
		}
		return r, s
	}
	ctx := context.Background()
	leader, leaderSink := newReplica()
	d := detection(models.LateralMovement, models.SeverityHigh, e.principal("cart"), e.app, "payments")
	if err := leader.HandleDetection(ctx, d); err != nil {
		t.Fatal(err)
	}
	id := leaderSink.last().ID
	if e.count(t) != 1 {
		t.Fatal("no policy applied")
	}
	// The revoke comes from elsewhere: the CLI, or another replica.
	cli, _ := newReplica()
	c.add(time.Minute)
	if _, err := cli.Revoke(ctx, id, "cli:alice"); err != nil {
		t.Fatal(err)
	}
	if n := e.count(t); n != 0 {
		t.Fatalf("%d policies after the revoke", n)
	}
	// The leader, which never saw the revoke, and a restarted process
	// both refuse the same detection.
	restarted, restartedSink := newReplica()
	c.add(time.Hour)
	for name, r := range map[string]struct {
		r *Responder
		s *sink
	}{"leader": {leader, leaderSink}, "restarted": {restarted, restartedSink}} {
		d.Updates++
		if err := r.r.HandleDetection(ctx, d); err != nil {
			t.Fatal(err)
		}
		if a := r.s.last(); a.State != models.StateSkipped || !strings.Contains(a.Reason, "revoked by cli:alice") {
			t.Errorf("%s after the revoke: %+v", name, a)
		}
	}
	if n := e.count(t); n != 0 {
		t.Fatalf("%d policies re-applied after the revoke", n)
	}
	// A person approving again lifts the hold; the next detection applies.
	if _, err := restarted.Approve(ctx, id, "bob"); err != nil {
		t.Fatal(err)
	}
	c.add(time.Minute)
	if err := leader.HandleDetection(ctx, d); err != nil {
		t.Fatal(err)
	}
	if a := leaderSink.last(); a.State != models.StateApplied || e.count(t) != 1 {
		t.Errorf("after bob approved again: %+v", a)
	}
	// Revoked again, the hold lasts respond.revoke_hold (24h), then ends.
	c.add(time.Minute)
	if _, err := restarted.Revoke(ctx, id, "carol"); err != nil {
		t.Fatal(err)
	}
	c.add(23 * time.Hour)
	if err := leader.HandleDetection(ctx, d); err != nil {
		t.Fatal(err)
	}
	if a := leaderSink.last(); a.State != models.StateSkipped || !strings.Contains(a.Reason, "revoked by carol") {
		t.Errorf("23h after carol's revoke: %+v", a)
	}
	c.add(time.Hour + time.Minute)
	if err := leader.HandleDetection(ctx, d); err != nil {
		t.Fatal(err)
	}
	if a := leaderSink.last(); a.State != models.StateApplied {
		t.Errorf("after respond.revoke_hold: %+v", a)
	}
}

func TestConfigValidatesGuardKeys(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ProtectedCIDRs = []string{"10.0.0.0/33", "node-range"}
	cfg.MaxTTL = 30 * time.Minute
	cfg.RevokeHold = -time.Hour
	err := cfg.Validate()
	for _, want := range []string{`respond.protected_cidrs: "10.0.0.0/33"`, `respond.protected_cidrs: "node-range"`,
		"respond.max_ttl: 30m0s is less than respond.ttl", "respond.revoke_hold: -1h0m0s"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want it to say %q", err, want)
		}
	}
	def := DefaultConfig()
	for _, ns := range []string{"istio-system", "istio-ingress", "kube-system", "meshguard"} {
		if !strings.Contains(strings.Join(def.ProtectedNamespaces, ","), ns) {
			t.Errorf("default protected namespaces %v lack %s", def.ProtectedNamespaces, ns)
		}
	}
}

// meshguard's own namespace is protected whatever the list says.
func TestOwnNamespaceIsProtected(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "security-tools")
	cfg := DefaultConfig()
	cfg.ProtectedNamespaces = nil
	cfg.Backend, cfg.GitOpsDir = BackendGitOps, t.TempDir()
	cfg.LeaderElection.Enabled = false
	r, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	src, _ := parseSource(models.Party{Principal: "cluster.local/ns/security-tools/sa/meshguard"})
	if why := r.protected(models.ActionQuarantine, src, "", ""); !strings.Contains(why, "security-tools") {
		t.Errorf("protected = %q, want meshguard's own namespace refused", why)
	}
	src, _ = parseSource(models.Party{Principal: "cluster.local/ns/shop/sa/cart"})
	if why := r.protected(models.ActionQuarantine, src, "", ""); why != "" {
		t.Errorf("protected = %q for an ordinary namespace", why)
	}
}
