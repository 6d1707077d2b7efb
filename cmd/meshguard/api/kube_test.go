package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshguard/meshguard/test/testenv"
)

// viewerAccount creates a namespace with the ServiceAccount "viewer",
// bound to the viewer permission (ViewerAccess) as a platform team
// would, and waits until the API server's authorizer sees the binding.
// It returns the account's username.
func viewerAccount(ctx context.Context, t *testing.T, cs kubernetes.Interface) (ns, user string) {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	ns = "mg-api-" + hex.EncodeToString(b[:])
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_ = cs.RbacV1().ClusterRoleBindings().Delete(ctx, ns, metav1.DeleteOptions{})
		_ = cs.RbacV1().ClusterRoles().Delete(ctx, ns, metav1.DeleteOptions{})
		_ = cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
	})
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "viewer"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: ns},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{ViewerAccess.Group}, Resources: []string{ViewerAccess.Resource}, Verbs: []string{ViewerAccess.Verb}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: ns},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "viewer", Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	user = "system:serviceaccount:" + ns + ":viewer"
	waitForRBAC(ctx, t, cs, user, ns)
	return ns, user
}

// tokenFor issues a token for ns/viewer through the TokenRequest
// API; no audiences means the API server's own.
func tokenFor(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string, audiences ...string) string {
	t.Helper()
	expiry := int64(600)
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "viewer",
		&authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: &expiry, Audiences: audiences}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// TestKubernetesAuth: on the real kube-apiserver, a ServiceAccount bound
// to the viewer permission (ViewerAccess), with a token issued for
// meshguard's audience, reads the API and is refused (403, audited with
// its name) on an operator endpoint; a token the API server did not
// issue gets 401.
func TestKubernetesAuth(t *testing.T) {
	cfg := testenv.KubeConfig(t)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns, user := viewerAccount(ctx, t, cs)
	token := tokenFor(ctx, t, cs, ns, DefaultAudience)

	e := newEnv(t, func(c *Config, d *Deps) {
		c.Auth = AuthConfig{Mode: AuthKubernetes, Audiences: DefaultConfig().Auth.Audiences}
		d.Kube = cfg
	})
	if w := do(e.h, "GET", "/api/v1/detections", token, nil); w.Code != http.StatusOK {
		t.Errorf("viewer reads detections: %d %s", w.Code, w.Body)
	}
	if w := do(e.h, "GET", "/api/v1/whoami", token, nil); w.Code != 200 || !strings.Contains(w.Body.String(), `"name":"`+user+`"`) || !strings.Contains(w.Body.String(), `"operator":false`) {
		t.Errorf("whoami: %d %s", w.Code, w.Body)
	}
	w := do(e.h, "POST", "/api/v1/actions/act-1/approve", token, http.Header{CSRFHeader: {"1"}})
	if w.Code != http.StatusForbidden {
		t.Errorf("viewer approves: %d %s; want 403", w.Code, w.Body)
	}
	if calls := e.op.Calls(); len(calls) != 0 {
		t.Errorf("operator called for a viewer: %+v", calls)
	}
	rows := e.audit.Actions()
	if len(rows) != 1 || rows[0].Actor != user || rows[0].State != "refused" || !strings.Contains(rows[0].Reason, "not an operator") {
		t.Errorf("audit %+v; want one refused row by %s", rows, user)
	}
	bogus := token[:len(token)-4] + "AAAA"
	if w := do(e.h, "GET", "/api/v1/detections", bogus, nil); w.Code != http.StatusUnauthorized {
		t.Errorf("a forged token: %d; want 401", w.Code)
	}
	if strings.Contains(e.logs.String(), token) {
		t.Error("the ServiceAccount token is in the log")
	}
}

// waitForRBAC waits until the API server's authorizer sees the new
// binding (its caches follow writes shortly), so that the server under
// test does not cache an answer from before it.
func waitForRBAC(ctx context.Context, t *testing.T, cs kubernetes.Interface, user, ns string) {
	t.Helper()
	groups := []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
	for {
		attrs := ViewerAccess
		sar, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authzv1.SubjectAccessReview{
			Spec: authzv1.SubjectAccessReviewSpec{ResourceAttributes: &attrs, User: user, Groups: groups},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if sar.Status.Allowed {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the API server never allowed %s %v: %s", user, ViewerAccess, sar.Status.Reason)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestKubernetesAuthAudiences: the TokenReview asks for
// server.auth.audiences, and only a token issued for one of them gets
// in. A token for the API server (what a pod's default mounted token and
// `kubectl create token` without --audience give), one for another
// service, and the API server's static admin token are refused with
// 401, saying which audience to ask for; naming another audience in the
// config moves the acceptance with it.
func TestKubernetesAuthAudiences(t *testing.T) {
	cfg := testenv.KubeConfig(t)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns, user := viewerAccount(ctx, t, cs)
	ours := tokenFor(ctx, t, cs, ns, DefaultAudience)
	apiServers := tokenFor(ctx, t, cs, ns)
	vault := tokenFor(ctx, t, cs, ns, "vault")
	both := tokenFor(ctx, t, cs, ns, "vault", DefaultAudience)

	server := func(audiences ...string) *env {
		return newEnv(t, func(c *Config, d *Deps) {
			c.Auth = AuthConfig{Mode: AuthKubernetes, Audiences: audiences}
			d.Kube = cfg
		})
	}
	e := server(DefaultConfig().Auth.Audiences...)
	for name, tok := range map[string]string{"for meshguard": ours, "for vault and meshguard": both} {
		if w := do(e.h, "GET", "/api/v1/whoami", tok, nil); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"name":"`+user+`"`) {
			t.Errorf("a token %s: %d %s; want 200 as %s", name, w.Code, w.Body, user)
		}
	}
	for name, tok := range map[string]string{"for the API server": apiServers, "for vault": vault, "the static admin token": cfg.BearerToken} {
		w := do(e.h, "GET", "/api/v1/detections", tok, nil)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("a token %s: %d %s; want 401", name, w.Code, w.Body)
		}
		if !strings.Contains(w.Body.String(), "--audience meshguard") {
			t.Errorf("a token %s: the 401 says %s; want which audience to ask for", name, w.Body)
		}
	}
	if cfg.BearerToken == "" {
		t.Error("the admin kubeconfig has no bearer token; the static-token case tested nothing")
	}

	v := server("vault")
	if w := do(v.h, "GET", "/api/v1/detections", vault, nil); w.Code != http.StatusOK {
		t.Errorf("server.auth.audiences [vault], a token for vault: %d %s", w.Code, w.Body)
	}
	if w := do(v.h, "GET", "/api/v1/detections", ours, nil); w.Code != http.StatusUnauthorized {
		t.Errorf("server.auth.audiences [vault], a token for meshguard: %d; want 401", w.Code)
	}
	for _, tok := range []string{ours, apiServers, vault, both} {
		if strings.Contains(e.logs.String()+v.logs.String(), tok) {
			t.Error("a ServiceAccount token is in the log")
		}
	}
}
