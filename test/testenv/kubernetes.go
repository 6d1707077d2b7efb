package testenv

import (
	"context"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// KubeConfig returns a rest.Config with administrator rights on the test
// kube-apiserver (etcd-backed, Istio's CRDs installed), checked ready.
func KubeConfig(t testing.TB) *rest.Config {
	t.Helper()
	path := KubeconfigPath(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		unavailable(t, k8sServer, "kubeconfig %s: %v", path, err)
	}
	cfg.Timeout = 30 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("k8s: client for %s: %v", cfg.Host, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err != nil {
		unavailable(t, k8sServer, "GET %s/readyz: %v %s", cfg.Host, err, body)
	}
	return cfg
}

// KubeconfigPath returns the path of the test apiserver's admin
// kubeconfig, for tools such as kubectl.
func KubeconfigPath(t testing.TB) string {
	t.Helper()
	return locate(t, k8sServer)
}

// Kubectl returns the path of the kubectl built with the test apiserver.
func Kubectl(t testing.TB) string {
	t.Helper()
	return lookupRequired(t, k8sServer, "MESHGUARD_TEST_KUBECTL")
}
