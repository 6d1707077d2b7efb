package respond

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/test/testenv"
)

func TestKubeLeaderElectionTwoReplicas(t *testing.T) {
	e := newKubeEnv(t)
	cfg := e.config(models.ModeEnforce)
	cfg.LeaderElection = LeaderElectionConfig{
		Enabled: true, Namespace: e.root, LeaseName: "meshguard-respond",
		LeaseDuration: 2 * time.Second, RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 300 * time.Millisecond,
	}
	a, b := e.responder(t, cfg, nil, nil), e.responder(t, cfg, nil, nil)
	ctxA, stopA := context.WithCancel(context.Background())
	ctxB, stopB := context.WithCancel(context.Background())
	doneA, doneB := make(chan error, 1), make(chan error, 1)
	go func() { doneA <- a.r.Run(ctxA) }()
	go func() { doneB <- b.r.Run(ctxB) }()
	defer func() { stopA(); stopB(); <-doneA; <-doneB }()

	leaders := func() (n int, leader, follower harness) {
		for _, h := range []harness{a, b} {
			if h.r.Leading() {
				n++
				leader = h
			} else {
				follower = h
			}
		}
		return
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("a leader", func() bool { n, _, _ := leaders(); return n == 1 })
	// Stays one for a few renewals.
	for range 10 {
		if n, _, _ := leaders(); n != 1 {
			t.Fatalf("%d leaders", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, leader, follower := leaders()
	ctx := context.Background()
	d := detection(models.LateralMovement, models.SeverityHigh, e.principal("cart"), e.app, "payments")
	if err := follower.r.HandleDetection(ctx, d); err != nil {
		t.Fatal(err)
	}
	if s := follower.sink.last(); s.State != models.StateSkipped || !strings.Contains(s.Reason, "not the leader") {
		t.Errorf("follower: %+v", s)
	}
	if err := leader.r.HandleDetection(ctx, d); err != nil {
		t.Fatal(err)
	}
	if s := leader.sink.last(); s.State != models.StateApplied {
		t.Errorf("leader: %+v", s)
	}
	// The leader stops (releasing the Lease): the other takes over.
	start := time.Now()
	if leader.r == a.r {
		stopA()
		<-doneA
		doneA <- nil
	} else {
		stopB()
		<-doneB
		doneB <- nil
	}
	waitFor("the follower to lead", follower.r.Leading)
	t.Logf("failover after the leader stopped: %v", time.Since(start))
	if leader.r.Leading() {
		t.Error("the stopped replica still leads")
	}
}

// serviceAccountConfig returns a client config that authenticates as
// service account ns/name, with a token from the TokenRequest API.
func serviceAccountConfig(t *testing.T, admin *rest.Config, ns, name string) *rest.Config {
	t.Helper()
	cs := kubernetes.NewForConfigOrDie(admin)
	exp := int64(600)
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s/%s: %v", ns, name, err)
	}
	cfg := rest.AnonymousClientConfig(admin)
	cfg.BearerToken = tr.Status.Token
	return cfg
}

// applyRBAC applies deploy/kubernetes/rbac.yaml as shipped.
func applyRBAC(t *testing.T, e *kubeEnv) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "meshguard"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	file := filepath.Join(testenv.RepoRoot(t), "deploy", "kubernetes", "rbac.yaml")
	out, err := exec.Command(testenv.Kubectl(t), "--kubeconfig", testenv.KubeconfigPath(t),
		"apply", "--server-side", "--field-manager", "meshguard-test", "-f", file).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl apply %s: %v\n%s", file, err, out)
	}
}

func TestKubeRunsUnderShippedRBAC(t *testing.T) {
	e := newKubeEnv(t)
	applyRBAC(t, e)
	sa := serviceAccountConfig(t, e.cfg, "meshguard", "meshguard")
	cfg := e.config(models.ModeEnforce)
	cfg.LeaderElection = LeaderElectionConfig{
		Enabled: true, Namespace: "meshguard", LeaseName: "test-" + e.instance,
		LeaseDuration: 2 * time.Second, RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 300 * time.Millisecond,
	}
	t.Cleanup(func() {
		_ = e.cs.CoordinationV1().Leases("meshguard").Delete(context.Background(), cfg.LeaderElection.LeaseName, metav1.DeleteOptions{})
	})
	h := e.responder(t, cfg, nil, sa)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.r.Run(ctx) }()
	defer func() { stop(); <-done }()
	deadline := time.Now().Add(15 * time.Second)
	for !h.r.Leading() {
		if time.Now().After(deadline) {
			t.Fatal("the service account never took the Lease")
		}
		time.Sleep(50 * time.Millisecond)
	}
	bg := context.Background()
	for _, d := range []models.Detection{
		detection(models.LateralMovement, models.SeverityHigh, e.principal("web"), e.app, "payments"),
		detection(models.LateralMovement, models.SeverityCritical, e.principal("cart"), e.app, "payments"),
	} {
		if err := h.r.HandleDetection(bg, d); err != nil {
			t.Fatalf("as the meshguard service account: %v", err)
		}
		if a := h.sink.last(); a.State != models.StateApplied {
			t.Fatalf("%+v", a)
		}
	}
	list, err := h.r.List(bg)
	if err != nil || len(list) != 2 {
		t.Fatalf("List: %+v %v", list, err)
	}
	if _, err := h.r.Extend(bg, list[0].ID, "carol", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := h.r.Revoke(bg, list[0].ID, "carol"); err != nil {
		t.Fatal(err)
	}
	h.clock.add(2 * time.Hour)
	if err := h.r.Reconcile(bg); err != nil {
		t.Fatal(err)
	}
	if n := e.count(t); n != 0 {
		t.Errorf("%d policies left", n)
	}
}

func TestKubeMissingPermissionIsNamed(t *testing.T) {
	e := newKubeEnv(t)
	applyRBAC(t, e)
	ctx := context.Background()
	// The shipped ClusterRole without "delete" on authorizationpolicies.
	data, err := exec.Command(testenv.Kubectl(t), "--kubeconfig", testenv.KubeconfigPath(t),
		"get", "clusterrole", "meshguard-respond", "-o", "yaml").Output()
	if err != nil {
		t.Fatal(err)
	}
	var shipped rbacv1.ClusterRole
	if err := yaml.Unmarshal(data, &shipped); err != nil {
		t.Fatal(err)
	}
	name := "meshguard-limited-" + randSuffix()
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, r := range shipped.Rules {
		if len(r.Resources) == 1 && r.Resources[0] == "authorizationpolicies" {
			r.Verbs = []string{"get", "list", "create", "patch"}
		}
		role.Rules = append(role.Rules, r)
	}
	if _, err := e.cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cs.CoreV1().ServiceAccounts("meshguard").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: "meshguard"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.cs.RbacV1().ClusterRoleBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
		_ = e.cs.RbacV1().ClusterRoles().Delete(context.Background(), name, metav1.DeleteOptions{})
		_ = e.cs.CoreV1().ServiceAccounts("meshguard").Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	h := e.responder(t, e.config(models.ModeEnforce), nil, serviceAccountConfig(t, e.cfg, "meshguard", name))
	if err := h.r.HandleDetection(ctx, detection(models.LateralMovement, models.SeverityHigh, e.principal("web"), e.app, "payments")); err != nil {
		t.Fatal(err)
	}
	a := h.sink.last()
	_, err = h.r.Revoke(ctx, a.ID, "dave")
	var perm *PermissionError
	if !errors.As(err, &perm) || perm.Verb != "delete" || perm.Resource != "authorizationpolicies" {
		t.Fatalf("revoke without delete: %v", err)
	}
	if want := "missing permission: delete authorizationpolicies.security.istio.io in namespace " + e.app; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	if last := h.sink.last(); last.State != models.StateFailed || !strings.Contains(last.Reason, "missing permission") {
		t.Errorf("audit of the failure: %+v", last)
	}
}
