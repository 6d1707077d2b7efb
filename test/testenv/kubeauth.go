package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// ViewerAccount creates a namespace with the ServiceAccount "viewer",
// bound to access (meshguard's viewer permission, api.ViewerAccess) as a
// platform team would, and waits until the API server's authorizer sees the binding.
// It returns the account's username.
func ViewerAccount(ctx context.Context, t testing.TB, cs kubernetes.Interface, access authzv1.ResourceAttributes) (ns, user string) {
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
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{access.Group}, Resources: []string{access.Resource}, Verbs: []string{access.Verb}}},
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
	waitForRBAC(ctx, t, cs, user, ns, access)
	return ns, user
}

// AccountToken issues a token for ns/viewer through the TokenRequest
// API; no audiences means the API server's own.
func AccountToken(ctx context.Context, t testing.TB, cs kubernetes.Interface, ns string, audiences ...string) string {
	t.Helper()
	expiry := int64(600)
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "viewer",
		&authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: &expiry, Audiences: audiences}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// waitForRBAC waits until the API server's authorizer sees the new
// binding (its caches follow writes shortly), so that the server under
// test does not cache an answer from before it.
func waitForRBAC(ctx context.Context, t testing.TB, cs kubernetes.Interface, user, ns string, access authzv1.ResourceAttributes) {
	t.Helper()
	groups := []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
	for {
		attrs := access
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
			t.Fatalf("the API server never allowed %s %v: %s", user, access, sar.Status.Reason)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
