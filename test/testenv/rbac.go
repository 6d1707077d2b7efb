package testenv

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// ShippedRBAC applies deploy/kubernetes/rbac.yaml as shipped (its
// namespace "meshguard" first) and returns a client config that acts as
// its ServiceAccount meshguard/meshguard.
func ShippedRBAC(t testing.TB) *rest.Config {
	t.Helper()
	admin := KubeConfig(t)
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "meshguard"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	file := filepath.Join(RepoRoot(t), "deploy", "kubernetes", "rbac.yaml")
	out, err := exec.Command(Kubectl(t), "--kubeconfig", KubeconfigPath(t),
		"apply", "--server-side", "--field-manager", "meshguard-test", "-f", file).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl apply %s: %v\n%s", file, err, out)
	}
	exp := int64(600)
	tr, err := cs.CoreV1().ServiceAccounts("meshguard").CreateToken(ctx, "meshguard",
		&authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for meshguard/meshguard: %v", err)
	}
	cfg := rest.AnonymousClientConfig(admin)
	cfg.BearerToken = tr.Status.Token
	return cfg
}
