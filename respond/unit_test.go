package respond

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/storage"
)

// sink records what the responder told it.
type sink struct {
	mu      sync.Mutex
	actions []models.Action
}

func (s *sink) HandleAction(_ context.Context, a models.Action, _ models.Detection) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.actions = append(s.actions, a)
	return nil
}

func (s *sink) states() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, a := range s.actions {
		out = append(out, string(a.State))
	}
	return out
}

func (s *sink) last() models.Action {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.actions[len(s.actions)-1]
}

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func detection(kind models.DetectionKind, sev models.Severity, src, dstNS, dstWL string) models.Detection {
	p, _ := models.ParsePrincipal(src)
	return models.Detection{
		ID: "det-" + string(kind) + "-" + p.ServiceAccount, Kind: kind, Severity: sev, Score: 9,
		Source:      models.Party{Principal: src, Workload: p.ServiceAccount, Namespace: p.Namespace},
		Destination: models.Party{Namespace: dstNS, Workload: dstWL},
		Updates:     1,
	}
}

func TestDecide(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Mode = models.ModeEnforce
	tests := []struct {
		kind models.DetectionKind
		sev  models.Severity
		want models.ActionKind
		mode models.Mode
	}{
		{models.LateralMovement, models.SeverityCritical, models.ActionQuarantine, models.ModeEnforce},
		{models.LateralMovement, models.SeverityHigh, models.ActionBlockEdge, models.ModeEnforce},
		{models.LateralMovement, models.SeverityMedium, models.ActionAlert, models.ModeAlert},
		{models.Scan, models.SeverityCritical, models.ActionQuarantine, models.ModeEnforce},
		{models.RequestFlood, models.SeverityCritical, models.ActionAlert, models.ModeAlert},
		{models.MTLSDowngrade, models.SeverityHigh, models.ActionBlockEdge, models.ModeEnforce},
	}
	for _, tt := range tests {
		got := cfg.decide(models.Detection{Kind: tt.kind, Severity: tt.sev, Score: 7})
		if got.Kind != tt.want || got.Mode != tt.mode || got.Reason == "" {
			t.Errorf("%s %s: %+v, want %s %s", tt.sev, tt.kind, got, tt.want, tt.mode)
		}
	}
	// The global mode is a ceiling; a rule's mode lowers it.
	cfg.Mode = models.ModeDryRun
	cfg.Actions = []ActionRule{{Kind: "*", MinSeverity: models.SeverityLow, MinScore: 5, Action: models.ActionBlockEdge, Mode: models.ModeEnforce}}
	if got := cfg.decide(models.Detection{Kind: models.Scan, Severity: models.SeverityLow, Score: 6}); got.Mode != models.ModeDryRun {
		t.Errorf("rule enforce under global dry-run: %+v", got)
	}
	got := cfg.decide(models.Detection{Kind: models.Scan, Severity: models.SeverityLow, Score: 4})
	if got.Kind != models.ActionAlert || !strings.Contains(got.Reason, "min_score") {
		t.Errorf("below min_score: %+v", got)
	}
}

func TestConfigValidateNamesKeys(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	c := DefaultConfig()
	c.Mode = "x"
	c.Backend = "gitops"
	c.TTL = 0
	c.BudgetPerHour = -1
	c.RootNamespace = "Istio_System"
	c.Actions = append(c.Actions, ActionRule{Kind: "nope", Action: "ban"})
	err := c.Validate()
	for _, want := range []string{`respond.mode: "x" is not alert, dry-run or enforce`, "respond.gitops_dir", "respond.ttl",
		"respond.budget_per_hour", "respond.root_namespace", "respond.actions[7].kind", "respond.actions[7].action"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not contain %q", err, want)
		}
	}
}

func TestActionIDAndHostileInput(t *testing.T) {
	long := strings.Repeat("verylongname-", 20)
	for _, src := range []string{"cluster.local/ns/shop/sa/cart", "10.1.2.3/32", long, "", "x\ny: {evil}"} {
		id := ActionID(models.ActionQuarantine, src, "shop/payments", src)
		if len(id)+4 > 63 || len(validation.IsDNS1123Label(id+"-out")) > 0 {
			t.Errorf("ActionID(%q) = %q: not a DNS-1123 label with room for a suffix", src, id)
		}
		if id != ActionID(models.ActionQuarantine, src, "shop/payments", src) {
			t.Error("ActionID is not deterministic")
		}
	}
	if ActionID(models.ActionBlockEdge, "a", "b", "") == ActionID(models.ActionBlockEdge, "a", "c", "") {
		t.Error("different destinations share an id")
	}
	s, problems := parseSource(models.Party{
		Principal: "cluster.local/ns/shop/sa/cart\"\n  action: ALLOW", IP: "10.0.0.0/8", Namespace: "shop", Workload: "../../etc",
	})
	if s.key() != "" || len(problems) != 3 {
		t.Errorf("hostile source parsed as %+v (%v)", s, problems)
	}
	s, _ = parseSource(models.Party{IP: "::ffff:10.1.2.3"})
	if s.IPBlock != "10.1.2.3/32" {
		t.Errorf("mapped IPv4 = %q", s.IPBlock)
	}
}

func TestIstioObjectRoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	p := Policy{
		Name: "mg-block-x", Namespace: "shop", Role: RoleEdge, Selector: map[string]string{"app": "payments"},
		SourcePrincipal: "cluster.local/ns/shop/sa/cart", DryRun: true,
		Meta: Meta{ActionID: "mg-block-x", Instance: "meshguard", Action: models.ActionBlockEdge, DetectionID: "d1",
			DetectionKind: models.Scan, Reason: "because: \"quoted\"\nnewline", Target: "t", Destination: "shop/payments",
			CreatedAt: now, ExpiresAt: now.Add(time.Hour), PromoteAt: now.Add(time.Minute)},
	}
	u, err := p.istioObject()
	if err != nil {
		t.Fatal(err)
	}
	back, err := policyFromIstio(u)
	if err != nil {
		t.Fatal(err)
	}
	if back.SourcePrincipal != p.SourcePrincipal || back.Selector["app"] != "payments" || !back.DryRun ||
		back.Meta != p.Meta || back.Role != RoleEdge {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, p)
	}
	if _, err := (Policy{Name: "x", Role: RoleEdge, SourcePrincipal: "a/ns/b/sa/c"}).istioObject(); err == nil {
		t.Error("an edge policy without a selector (the whole namespace) was rendered")
	}
}

// newGitOpsResponder runs the decision logic on files, no cluster.
func newGitOpsResponder(t *testing.T, cfg Config) (*Responder, *storage.Memory, *sink, *clock) {
	t.Helper()
	cfg.Backend = BackendGitOps
	cfg.GitOpsDir = t.TempDir()
	cfg.LeaderElection.Enabled = false
	store := storage.NewMemory(16)
	s := &sink{}
	c := &clock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	r, err := New(cfg, Deps{Actions: store, Blast: store, Clock: c.now, Sink: s})
	if err != nil {
		t.Fatal(err)
	}
	return r, store, s, c
}

func TestResponderLogicOnGitOps(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Mode = models.ModeEnforce
	cfg.BudgetPerHour = 2
	r, store, s, c := newGitOpsResponder(t, cfg)
	ctx := context.Background()

	d := detection(models.LateralMovement, models.SeverityHigh, "cluster.local/ns/shop/sa/cart", "shop", "payments")
	if err := r.HandleDetection(ctx, d); err != nil {
		t.Fatal(err)
	}
	// No cluster to check the source against: dry-run at most, saying so.
	if a := s.last(); a.State != models.StateApplied || a.Mode != models.ModeDryRun || !strings.Contains(a.Reason, "identities not checked") {
		t.Fatalf("first detection: %+v", a)
	}
	c.add(10 * time.Minute)
	d.Updates = 2
	if err := r.HandleDetection(ctx, d); err != nil {
		t.Fatal(err)
	}
	list, _ := r.List(ctx)
	if len(list) != 1 || !list[0].ExpiresAt.Equal(c.now().Add(time.Hour)) {
		t.Fatalf("after an update: %+v", list)
	}
	// Protected destination.
	if err := r.HandleDetection(ctx, detection(models.LateralMovement, models.SeverityHigh, "cluster.local/ns/shop/sa/cart", "kube-system", "coredns")); err != nil {
		t.Fatal(err)
	}
	if a := s.last(); a.State != models.StateSkipped || !strings.Contains(a.Reason, "protected") {
		t.Errorf("protected: %+v", a)
	}
	// Unconfirmed identities spend no budget but have an allowance of
	// their own, as large: 2 per hour.
	_ = r.HandleDetection(ctx, detection(models.LateralMovement, models.SeverityHigh, "cluster.local/ns/shop/sa/web", "shop", "payments"))
	_ = r.HandleDetection(ctx, detection(models.LateralMovement, models.SeverityHigh, "cluster.local/ns/shop/sa/api", "shop", "payments"))
	if a := s.last(); a.State != models.StateAlerted || !strings.Contains(a.Reason, "dry-run actions of unconfirmed identities") {
		t.Errorf("over the allowance: %+v", a)
	}
	// Expiry.
	c.add(2 * time.Hour)
	if err := r.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if list, _ := r.List(ctx); len(list) != 0 {
		t.Errorf("after expiry: %+v", list)
	}
	want := "applied extended skipped applied alerted expired expired"
	if got := strings.Join(s.states(), " "); got != want {
		t.Errorf("states %q, want %q", got, want)
	}
	if n := len(store.Actions()); n != 7 {
		t.Errorf("%d audit rows, want 7", n)
	}
}
