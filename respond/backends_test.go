package respond

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/models"
)

func TestKubeBlastRadiusKeepsDryRun(t *testing.T) {
	e := newKubeEnv(t)
	cfg := e.config(models.ModeEnforce)
	cfg.BlastRadiusMaxRequests = 100
	h := e.responder(t, cfg, nil, nil)
	ctx := context.Background()
	// web called payments 500 times yesterday: blocking it is not safe.
	now := h.clock.now()
	base := models.NewFlowIDBase("t", 0, now.UnixNano())
	_ = h.store.ConsumeFlows(ctx, []models.Flow{{
		ID: base.ID(0), TimestampMs: now.Add(-3 * time.Hour).UnixMilli(), Reporter: models.ReporterDestination,
		Source:      models.Source{Principal: e.principal("web"), Workload: "web", Namespace: e.app, IP: netip.MustParseAddr("10.0.0.1")},
		Destination: models.Destination{Workload: "payments", Namespace: e.app}, Count: 500,
	}})
	d := detection(models.LateralMovement, models.SeverityHigh, e.principal("web"), e.app, "payments")
	d.WindowStart = now.Add(-time.Minute)
	if err := h.r.HandleDetection(ctx, d); err != nil {
		t.Fatal(err)
	}
	a := h.sink.last()
	if a.State != models.StateApplied || a.Mode != models.ModeDryRun || a.BlastRequests != 500 || a.BlastCallers != 1 ||
		!strings.Contains(a.Reason, "blast_radius_max_requests=100") {
		t.Fatalf("%+v", a)
	}
	if e.get(t, a.PolicyNamespace, a.PolicyName).GetAnnotations()[AnnotationDryRun] != "true" {
		t.Error("not dry-run in the cluster")
	}
	// A new edge (no history) is enforced at once.
	if err := h.r.HandleDetection(ctx, detection(models.LateralMovement, models.SeverityHigh, e.principal("cart"), e.app, "payments")); err != nil {
		t.Fatal(err)
	}
	if a := h.sink.last(); a.Mode != models.ModeEnforce || a.BlastRequests != 0 {
		t.Errorf("new edge: %+v", a)
	}
}

func TestKubeNetworkPolicyQuarantine(t *testing.T) {
	e := newKubeEnv(t)
	cfg := e.config(models.ModeEnforce)
	cfg.Backend = BackendNetworkPolicy
	h := e.responder(t, cfg, nil, nil)
	ctx := context.Background()
	d := detection(models.LateralMovement, models.SeverityCritical, e.principal("cart"), e.app, "payments")
	if err := h.r.HandleDetection(ctx, d); err != nil {
		t.Fatal(err)
	}
	a := h.sink.last()
	if a.State != models.StateApplied {
		t.Fatalf("%+v", a)
	}
	np, err := e.cs.NetworkingV1().NetworkPolicies(e.app).Get(ctx, a.PolicyName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if np.Spec.PodSelector.MatchLabels["app"] != "cart" || len(np.Spec.Ingress) != 0 || len(np.Spec.Egress) != 0 ||
		len(np.Spec.PolicyTypes) != 2 || np.Spec.PolicyTypes[0] != networkingv1.PolicyTypeIngress {
		t.Errorf("spec %+v: want cart isolated both ways", np.Spec)
	}
	if np.Annotations[AnnotationExpiresAt] == "" || np.Labels[LabelManagedBy] != "meshguard" {
		t.Errorf("metadata %v %v", np.Labels, np.Annotations)
	}
	// block_edge cannot be a NetworkPolicy: skipped, saying so.
	_ = h.r.HandleDetection(ctx, detection(models.LateralMovement, models.SeverityHigh, e.principal("web"), e.app, "payments"))
	if a := h.sink.last(); a.State != models.StateSkipped || !strings.Contains(a.Reason, "cannot block one edge") {
		t.Errorf("block_edge: %+v", a)
	}
	h.clock.add(2 * time.Hour)
	if err := h.r.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cs.NetworkingV1().NetworkPolicies(e.app).Get(ctx, a.PolicyName, metav1.GetOptions{}); err == nil {
		t.Error("not expired")
	}
}

// The gitops files are what the API server accepts (server-side dry-run
// of every file) and read back as the same actions.
func TestKubeGitOpsFilesAreValidPolicies(t *testing.T) {
	e := newKubeEnv(t)
	cfg := e.config(models.ModeDryRun)
	r, _, s, _ := newGitOpsResponder(t, cfg)
	ctx := context.Background()
	dir := r.cfg.GitOpsDir
	for _, d := range []models.Detection{
		detection(models.LateralMovement, models.SeverityHigh, e.principal("web"), e.app, "payments"),
		detection(models.LateralMovement, models.SeverityCritical, e.principal("cart"), e.app, "payments"),
	} {
		d.Source.Namespace = e.app
		if err := r.HandleDetection(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*", "*.yaml"))
	if len(files) != 3 {
		t.Fatalf("files %v (actions %v)", files, s.states())
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var obj map[string]any
		if err := yaml.Unmarshal(data, &obj); err != nil {
			t.Fatal(err)
		}
		u := unstructuredOf(obj)
		if u.GetAnnotations()[AnnotationDryRun] != "true" {
			t.Errorf("%s: not dry-run", f)
		}
		if _, err := e.dyn.Resource(authorizationPolicies).Namespace(u.GetNamespace()).Create(ctx, u,
			metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			t.Errorf("%s rejected by the API server: %v", f, err)
		}
	}
	list, err := r.List(ctx)
	if err != nil || len(list) != 2 {
		t.Errorf("List: %+v %v", list, err)
	}
}

func unstructuredOf(obj map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: obj}
}
