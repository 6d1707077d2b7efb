package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/meshguard/meshguard/cmd/meshguard/api"
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
	// The viewer permission meshguard's RBAC mode checks, bound to an
	// account as deploy/kubernetes/auth-kubernetes.yaml binds it.
	ns, user := testenv.ViewerAccount(ctx, t, cs, api.ViewerAccess)
	token := func(audiences ...string) string { return testenv.AccountToken(ctx, t, cs, ns, audiences...) }

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
