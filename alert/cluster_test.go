package alert

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/respond"
	"github.com/meshguard/meshguard/test/testenv"
)

// Approve and Revoke clicked in Slack change the policy in a real
// kube-apiserver: the signed click reaches the real responder, which
// promotes the dry-run AuthorizationPolicy to enforced, then deletes it.
func TestSlackButtonsChangeThePolicyInTheCluster(t *testing.T) {
	kube := testenv.KubeConfig(t)
	ctx := context.Background()
	var b [4]byte
	_, _ = rand.Read(b[:])
	suffix := hex.EncodeToString(b[:])
	ns := "mg-slack-" + suffix
	cs := kubernetes.NewForConfigOrDie(kube)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "ledger"}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "ledger", Namespace: ns}, Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/ledger:1"}}}},
	}}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	audit := &auditLog{}
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	rc := respond.DefaultConfig()
	rc.Mode, rc.PromoteAfter, rc.BlastRadiusMaxRequests = models.ModeEnforce, time.Hour, 0
	rc.LeaderElection.Enabled = false
	rc.Instance = "slack-" + suffix
	resp, err := respond.New(rc, respond.Deps{Kube: kube, Actions: audit, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	d := models.Detection{ID: "det-1", DetectedAt: now, UpdatedAt: now, WindowStart: now.Add(-10 * time.Second), WindowEnd: now,
		Kind: models.LateralMovement, Severity: models.SeverityHigh, Score: 10, Updates: 1,
		Source:      models.Party{Principal: "cluster.local/ns/" + ns + "/sa/frontend", Workload: "frontend", Namespace: ns},
		Destination: models.Party{Workload: "ledger", Namespace: ns}}
	if err := resp.HandleDetection(ctx, d); err != nil {
		t.Fatal(err)
	}
	list, err := resp.List(ctx)
	if err != nil || len(list) != 1 || list[0].Mode != models.ModeDryRun {
		t.Fatalf("before the click: %+v (%v), want one dry-run action", list, err)
	}
	act := list[0]
	dyn := dynamic.NewForConfigOrDie(kube)
	gvr := schema.GroupVersionResource{Group: "security.istio.io", Version: "v1", Resource: "authorizationpolicies"}
	policy := func() (map[string]string, bool) {
		p, err := dyn.Resource(gvr).Namespace(act.PolicyNamespace).Get(ctx, act.PolicyName, metav1.GetOptions{})
		if err != nil {
			return nil, false
		}
		return p.GetAnnotations(), true
	}
	if ann, ok := policy(); !ok || ann[respond.AnnotationDryRun] != "true" {
		t.Fatalf("policy %s/%s before the click: exists %v, annotations %v", act.PolicyNamespace, act.PolicyName, ok, ann)
	}

	sink := newWebhookSink(t)
	cfg := DefaultConfig().Slack
	cfg.WebhookURL, cfg.SigningSecret, cfg.AllowedUsers = sink.srv.URL+"/hook", "s3cr3t-signing", []string{"U0ALICE"}
	a, err := New(Config{Slack: cfg}, Deps{Log: log, Actions: audit, Controller: resp})
	if err != nil {
		t.Fatal(err)
	}
	click := func(button string) {
		t.Helper()
		rec := httptest.NewRecorder()
		a.InteractionHandler().ServeHTTP(rec, signed(cfg.SigningSecret, time.Now(), clickPayload(button, act.ID, "U0ALICE", "alice", sink.srv.URL+"/response")))
		if rec.Code != http.StatusOK {
			t.Fatalf("%s click: %d %s", button, rec.Code, rec.Body.String())
		}
	}

	click(buttonApprove)
	if ann, ok := policy(); !ok || ann[respond.AnnotationDryRun] != "" {
		t.Fatalf("after Approve: exists %v, annotations %v; want the policy enforced", ok, ann)
	}
	click(buttonRevoke)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := policy(); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("after Revoke the policy is still in the cluster")
		}
		time.Sleep(100 * time.Millisecond)
	}
	var actors []string
	for _, r := range audit.all() {
		if r.Actor != "meshguard" {
			actors = append(actors, string(r.State)+" by "+r.Actor)
		}
	}
	if len(actors) < 2 {
		t.Fatalf("the clicks were not audited with the user: %v", actors)
	}
	t.Logf("audited: %v", actors)
}
