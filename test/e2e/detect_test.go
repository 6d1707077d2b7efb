package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/test/testenv"
)

// The whole loop in one serve process against the real servers: live
// Kafka telemetry fills the detections table, the responder turns them into
// enforced AuthorizationPolicies in the kube-apiserver, Slack's webhook
// gets the alerts, and the baselines are saved at shutdown.
func TestServeDetectsAttacksFromKafka(t *testing.T) {
	brokers := testenv.Kafka(t)
	topic := testenv.NewTopic(t, brokers, 2)
	conn, db := testenv.ClickHouse(t)
	kube := testenv.KubeConfig(t)
	instance := "e2e-" + strings.ReplaceAll(db, "_", "-")
	prepareCluster(t, kube, instance, map[string]string{"billing": "payments-v1", "identity": "auth-v1"})
	// The attackers exist too: the responder enforces only against
	// identities the cluster confirms.
	prepareSources(t, kube, "shop", map[string]string{"recommendations": "recommendations-v1", "frontend": "frontend-v1"})
	slack := newWebhookReceiver(t)
	env := append(append(serveEnv(brokers, topic, fmt.Sprintf("clickhouse://%s/%s", testenv.ClickHouseAddr(t), db)), enforceEnv(t, instance)...),
		"MESHGUARD_DETECT_LEARNING_PERIOD=10m", "MESHGUARD_DETECT_HISTORY=0s",
		"MESHGUARD_RESPOND_BUDGET_PER_HOUR=20",
		"MESHGUARD_ALERT_SLACK_WEBHOOK_URL="+slack.URL)
	// The API with bearer tokens, on a port of its own.
	apiAddr := freeAddr(t)
	tokens := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(tokens, []byte("viewer-token-0123456789 viewer alice\n"), 0o600)
	env = append(env, "MESHGUARD_SERVER_LISTEN="+apiAddr, "MESHGUARD_SERVER_AUTH_MODE=token", "MESHGUARD_SERVER_AUTH_TOKENS_FILE="+tokens)

	srv := startMeshguard(t, env, "serve")
	produceAttacks(t, brokers, topic)

	deadline := time.Now().Add(3 * time.Minute)
	found := map[string]uint64{}
	for {
		rows, err := conn.Query(context.Background(), "SELECT kind, count() FROM "+db+".detections FINAL GROUP BY kind")
		if err == nil {
			for rows.Next() {
				var k string
				var n uint64
				if rows.Scan(&k, &n) == nil {
					found[k] = n
				}
			}
			rows.Close()
		}
		if found[string(models.LateralMovement)] > 0 && found[string(models.CredentialStuffing)] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("detections by kind after 3 minutes: %v; want lateral_movement and credential_stuffing\n%s", found, srv.out.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
	// Every stored detection names its incident, and the two attacks
	// (two attackers) are two incidents.
	var noIncident, incidents uint64
	if err := conn.QueryRow(context.Background(), "SELECT countIf(incident_id = ''), uniqExact(incident_id) FROM "+db+".detections FINAL").Scan(&noIncident, &incidents); err != nil {
		t.Fatal(err)
	}
	if noIncident != 0 || incidents < 2 {
		t.Errorf("%d detections without an incident id, %d incidents; want 0 and at least 2", noIncident, incidents)
	}
	// Each blocked attack is a labelled, expiring DENY in the cluster.
	for ns, dst := range map[string]string{"billing": "payments-v1", "identity": "auth-v1"} {
		pol := waitPolicy(t, kube, ns, instance, 30*time.Second)
		spec, _ := pol.Object["spec"].(map[string]any)
		sel, _, _ := unstructured.NestedStringMap(pol.Object, "spec", "selector", "matchLabels")
		ann := pol.GetAnnotations()
		if spec["action"] != "DENY" || sel["app"] != dst || pol.GetLabels()["app.kubernetes.io/managed-by"] != "meshguard" ||
			ann["meshguard.io/detection-id"] == "" || ann["meshguard.io/expires-at"] == "" || ann["istio.io/dry-run"] != "" {
			t.Errorf("policy %s/%s is not an enforced, labelled, expiring DENY of %s: %v", ns, pol.GetName(), dst, pol.Object)
		}
	}
	if n := slack.count(); n == 0 {
		t.Errorf("no alert reached the Slack webhook")
	}
	// The API serves them to a viewer, refuses anonymous readers and a
	// viewer's revoke, and /metrics counts them.
	get := func(path, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+apiAddr+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz", ""); code != http.StatusOK {
		t.Errorf("/readyz: %d %s", code, body)
	}
	if code, body := get("/api/v1/incidents", "viewer-token-0123456789"); code != http.StatusOK || !strings.Contains(body, `"head"`) {
		t.Errorf("/api/v1/incidents as viewer: %d %.300s", code, body)
	}
	if code, body := get("/api/v1/detections", "viewer-token-0123456789"); code != http.StatusOK || !strings.Contains(body, "lateral_movement") {
		t.Errorf("/api/v1/detections as viewer: %d %.300s", code, body)
	}
	if code, _ := get("/api/v1/detections", ""); code != http.StatusUnauthorized {
		t.Errorf("/api/v1/detections anonymous: %d, want 401", code)
	}
	if code, body := get("/metrics", "viewer-token-0123456789"); code != http.StatusOK || !strings.Contains(body, `meshguard_detections_total{kind="lateral_movement"`) {
		t.Errorf("/metrics: %d, lacks meshguard_detections_total for lateral_movement", code)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+apiAddr+"/api/v1/actions/x/revoke", nil)
	req.Header.Set("Authorization", "Bearer viewer-token-0123456789")
	req.Header.Set("X-Meshguard-CSRF", "1")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("revoke as viewer: %v %v, want 403", resp.StatusCode, err)
	}
	srv.terminate(t, 30*time.Second)
	var snaps uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".baselines FINAL").Scan(&snaps); err != nil || snaps == 0 {
		t.Fatalf("no baselines saved at shutdown (%d, %v)", snaps, err)
	}
	var actions uint64
	_ = conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".actions WHERE state = 'applied'").Scan(&actions)
	if actions == 0 {
		t.Errorf("no applied action audited in %s.actions", db)
	}
	t.Logf("detections by kind: %v; %d partition snapshots saved; %d applied actions; %d Slack messages", found, snaps, actions, slack.count())
}

var authzGVR = schema.GroupVersionResource{Group: "security.istio.io", Version: "v1", Resource: "authorizationpolicies"}

// prepareCluster creates the namespaces and Deployments the attacked
// workloads live in (the responder selects pods by their Deployment's
// labels), and removes this test's policies when it ends.
func prepareCluster(t *testing.T, kube *rest.Config, instance string, workloads map[string]string) {
	t.Helper()
	cs := kubernetes.NewForConfigOrDie(kube)
	dyn := dynamic.NewForConfigOrDie(kube)
	ctx := context.Background()
	for ns, wl := range workloads {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		createDeployment(t, cs, ns, wl, "")
	}
	t.Cleanup(func() {
		sel := "meshguard.io/instance=" + instance
		for _, ns := range []string{"billing", "identity", "shop", "istio-system"} {
			_ = dyn.Resource(authzGVR).Namespace(ns).DeleteCollection(context.Background(), metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: sel})
		}
	})
}

// prepareSources creates, in ns, the ServiceAccounts (keys) and the
// Deployments (values) that attacking workloads run as.
func prepareSources(t *testing.T, kube *rest.Config, ns string, workloads map[string]string) {
	t.Helper()
	cs := kubernetes.NewForConfigOrDie(kube)
	ctx := context.Background()
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	for sa, wl := range workloads {
		_, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		createDeployment(t, cs, ns, wl, sa)
	}
}

// createDeployment creates Deployment wl in ns selecting app=wl, its pods
// running as sa ("" for the default account); one that exists is kept.
func createDeployment(t *testing.T, cs kubernetes.Interface, ns, wl, sa string) {
	t.Helper()
	labels := map[string]string{"app": wl}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: wl, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{ServiceAccountName: sa, Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(context.Background(), dep, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

func waitPolicy(t *testing.T, kube *rest.Config, ns, instance string, timeout time.Duration) *unstructured.Unstructured {
	t.Helper()
	dyn := dynamic.NewForConfigOrDie(kube)
	deadline := time.Now().Add(timeout)
	for {
		list, err := dyn.Resource(authzGVR).Namespace(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "meshguard.io/instance=" + instance})
		if err == nil && len(list.Items) > 0 {
			return &list.Items[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no AuthorizationPolicy of instance %s in %s after %s (err %v)", instance, ns, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// freeAddr returns a loopback address with a port free right now.
// freeAddr returns a free 127.0.0.1 address for a server to listen on,
// never one it returned before: the kernel may give a port just closed
// to the next bind, and two replicas started together would then share
// an address.
func freeAddr(t *testing.T) string {
	freeAddrs.Lock()
	defer freeAddrs.Unlock()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		if !freeAddrs.given[addr] {
			freeAddrs.given[addr] = true
			return addr
		}
	}
}

var freeAddrs = struct {
	sync.Mutex
	given map[string]bool
}{given: map[string]bool{}}

// webhookReceiver is a Slack incoming webhook: it counts the messages
// posted to it.
type webhookReceiver struct {
	*httptest.Server
	mu sync.Mutex
	n  int
}

func newWebhookReceiver(t *testing.T) *webhookReceiver {
	w := &webhookReceiver{}
	w.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodPost && bytes.Contains(body, []byte("blocks")) {
			w.mu.Lock()
			w.n++
			w.mu.Unlock()
		}
		rw.Write([]byte("ok"))
	}))
	t.Cleanup(w.Close)
	return w
}

func (w *webhookReceiver) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// enforceEnv is what serve needs to enforce, as instance, on test/infra's
// kube-apiserver: no leader election and no blast-radius limit.
func enforceEnv(t *testing.T, instance string) []string {
	return []string{"MESHGUARD_KUBERNETES_KUBECONFIG=" + testenv.KubeconfigPath(t),
		"MESHGUARD_RESPOND_MODE=enforce", "MESHGUARD_RESPOND_BLAST_RADIUS_MAX_REQUESTS=0",
		"MESHGUARD_RESPOND_LEADER_ELECTION_ENABLED=false", "MESHGUARD_RESPOND_INSTANCE=" + instance}
}
