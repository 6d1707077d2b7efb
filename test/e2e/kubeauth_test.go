package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
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

// TestServeKubernetesAuthAudience: `meshguard serve` with
// server.auth.mode kubernetes and the default server.auth.audiences
// admits a ServiceAccount's token issued for audience meshguard, as the
// cluster's RBAC says (viewer), and refuses with 401 the same account's
// token for the API server (a pod's default token) and one for another
// service, saying which audience to ask for.
func TestServeKubernetesAuthAudience(t *testing.T) {
	kube := testenv.KubeConfig(t)
	cs := kubernetes.NewForConfigOrDie(kube)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var b [4]byte
	_, _ = rand.Read(b[:])
	ns := "mg-e2e-auth-" + hex.EncodeToString(b[:])
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		bg := context.Background()
		_ = cs.RbacV1().ClusterRoleBindings().Delete(bg, ns, metav1.DeleteOptions{})
		_ = cs.RbacV1().ClusterRoles().Delete(bg, ns, metav1.DeleteOptions{})
		_ = cs.CoreV1().ServiceAccounts(ns).Delete(bg, "grafana", metav1.DeleteOptions{})
		_ = cs.CoreV1().Namespaces().Delete(bg, ns, metav1.DeleteOptions{})
	})
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "grafana"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The rule of meshguard-viewer (deploy/kubernetes/auth-kubernetes.yaml),
	// under a name of its own, bound to the account.
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: ns},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"meshguard.io"}, Resources: []string{"detections"}, Verbs: []string{"get"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: ns},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "grafana", Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	user := "system:serviceaccount:" + ns + ":grafana"
	// The authorizer follows new bindings shortly: wait for it, so that
	// serve does not cache a refusal from before.
	for {
		sar, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
			User: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
			ResourceAttributes: &authzv1.ResourceAttributes{Group: "meshguard.io", Resource: "detections", Verb: "get"},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if sar.Status.Allowed {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the viewer binding never took effect")
		case <-time.After(100 * time.Millisecond):
		}
	}
	token := func(audiences ...string) string {
		exp := int64(600)
		tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "grafana",
			&authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: &exp, Audiences: audiences}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}

	brokers := testenv.Kafka(t)
	topic := testenv.NewTopic(t, brokers, 1)
	_, db := testenv.ClickHouse(t)
	addr := freeAddr(t)
	env := append(serveEnv(brokers, topic, fmt.Sprintf("clickhouse://%s/%s", testenv.ClickHouseAddr(t), db)),
		"MESHGUARD_SERVER_LISTEN="+addr,
		"MESHGUARD_SERVER_AUTH_MODE=kubernetes",
		"MESHGUARD_KUBERNETES_KUBECONFIG="+testenv.KubeconfigPath(t))
	mg := startMeshguard(t, env, "serve", "--stages", "ingest")
	waitUntil(t, "/healthz", mg, func() bool { code, _ := httpGet(addr, "/healthz"); return code == http.StatusOK })

	whoami := func(tok string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/api/v1/whoami", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := whoami(token("meshguard")); code != http.StatusOK || !strings.Contains(body, `"name":"`+user+`"`) {
		t.Errorf("a token for audience meshguard: %d %s; want 200 as %s", code, body, user)
	}
	for name, tok := range map[string]string{"the API server": token(), "vault": token("vault")} {
		code, body := whoami(tok)
		if code != http.StatusUnauthorized || !strings.Contains(body, "--audience meshguard") {
			t.Errorf("a token for %s: %d %s; want 401 naming the audience to ask for", name, code, body)
		}
	}
}
