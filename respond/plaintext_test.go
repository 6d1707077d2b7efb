package respond

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshguard/meshguard/models"
)

// plaintextDowngrade is an mtls_downgrade as detect raises it for a
// plaintext caller: the source named by workload alone (no principal,
// and detect keeps no address for a workload).
func (e *kubeEnv) plaintextDowngrade(src models.Party) models.Detection {
	return models.Detection{ID: "det-" + randSuffix(), Kind: models.MTLSDowngrade, Severity: models.SeverityCritical, Score: 9,
		Source: src, Destination: models.Party{Namespace: e.app, Workload: "payments"}, Updates: 1,
		Evidence: models.Evidence{Features: []models.FeatureEvidence{{Feature: models.FeatPlaintext.String(), Observed: 12, Model: "rule"}}}}
}

// ipBlocksOf are the ipBlocks and principals an edge policy denies, over
// all its "from" entries.
func ipBlocksOf(t *testing.T, u *unstructured.Unstructured) (ips, principals []string) {
	t.Helper()
	rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
	if len(rules) != 1 {
		t.Fatalf("%s: rules = %v", u.GetName(), rules)
	}
	from, _ := rules[0].(map[string]any)["from"].([]any)
	for _, f := range from {
		m, _ := f.(map[string]any)
		got, _, _ := unstructured.NestedStringSlice(m, "source", "ipBlocks")
		ips = append(ips, got...)
		ps, _, _ := unstructured.NestedStringSlice(m, "source", "principals")
		principals = append(principals, ps...)
	}
	slices.Sort(ips)
	return ips, principals
}

func blocks(ips ...string) []string {
	var out []string
	for _, s := range ips {
		a := netip.MustParseAddr(s)
		out = append(out, netip.PrefixFrom(a, a.BitLen()).String())
	}
	slices.Sort(out)
	return out
}

// The live benchmark's mtls_downgrade was detected but not blocked: "the
// source has neither a valid principal nor an IP". A plaintext caller has
// no principal; the responder denies its workload's pod addresses, as
// the cluster reports them, within the guards.
func TestKubePlaintextCallerIsBlockedByItsPodIPs(t *testing.T) {
	e := newKubeEnv(t)
	cfg := e.config(models.ModeEnforce)
	h := e.responder(t, cfg, nil, nil)
	ctx := context.Background()

	webIPs := []string{ip(), ip()}
	e.pod(t, e.app, "web-1", webIPs[0], "web", map[string]string{"app": "web"}, false)
	e.pod(t, e.app, "web-2", webIPs[1], "web", map[string]string{"app": "web"}, false)
	if err := h.r.HandleDetection(ctx, e.plaintextDowngrade(models.Party{Namespace: e.app, Workload: "web"})); err != nil {
		t.Fatal(err)
	}
	a := h.sink.last()
	if a.State != models.StateApplied || a.Mode != models.ModeEnforce {
		t.Fatalf("plaintext caller with pods: %s %s %q; want applied, enforced", a.State, a.Mode, a.Reason)
	}
	if !strings.Contains(a.Reason, "a plaintext caller has no principal") {
		t.Errorf("the reason does not say why the policy names addresses: %q", a.Reason)
	}
	ips, principals := ipBlocksOf(t, e.get(t, a.PolicyNamespace, a.PolicyName))
	if want := blocks(webIPs...); !slices.Equal(ips, want) || len(principals) != 0 {
		t.Errorf("policy denies ipBlocks %v, principals %v; want %v and no principal", ips, principals, want)
	}

	// The same caller seen with a principal in its window: the plaintext
	// calls are denied by address, the mTLS ones by principal.
	cartIP := ip()
	e.pod(t, e.app, "cart-1", cartIP, "cart", map[string]string{"app": "cart"}, false)
	if err := h.r.HandleDetection(ctx, e.plaintextDowngrade(models.Party{Principal: e.principal("cart"), Namespace: e.app, Workload: "cart"})); err != nil {
		t.Fatal(err)
	}
	a = h.sink.last()
	if a.State != models.StateApplied || a.Mode != models.ModeEnforce {
		t.Fatalf("plaintext caller with a principal: %s %s %q", a.State, a.Mode, a.Reason)
	}
	ips, principals = ipBlocksOf(t, e.get(t, a.PolicyNamespace, a.PolicyName))
	if want := blocks(cartIP); !slices.Equal(ips, want) || !slices.Equal(principals, []string{e.principal("cart")}) {
		t.Errorf("policy denies ipBlocks %v, principals %v; want %v and %s", ips, principals, want, e.principal("cart"))
	}
	// Read back as written: a repeat extends it rather than writing anew.
	ps, err := h.r.backend.List(ctx, e.instance, a.ID)
	if err != nil || len(ps) != 1 || !slices.Equal(ps[0].SourceIPBlocks, blocks(cartIP)) || ps[0].SourcePrincipal != e.principal("cart") {
		t.Errorf("read back %+v, %v", ps, err)
	}
}

// Plaintext callers whose addresses may not be denied, or that have none.
func TestKubePlaintextCallerGuards(t *testing.T) {
	e := newKubeEnv(t)
	cfg := e.config(models.ModeEnforce)
	cfg.ProtectedCIDRs = append(cfg.ProtectedCIDRs, "10.250.0.0/16")
	h := e.responder(t, cfg, nil, nil)
	ctx := context.Background()

	// api: one of its pods runs on the host network (its address is the
	// node's); db: a pod in a protected range; cart: no pod at all.
	e.pod(t, e.app, "api-1", ip(), "api", map[string]string{"app": "api"}, false)
	e.pod(t, e.app, "api-2", ip(), "api", map[string]string{"app": "api"}, true)
	e.pod(t, e.app, "db-1", "10.250.3.4", "db", map[string]string{"app": "db"}, false)
	for _, c := range []struct {
		name  string
		src   models.Party
		state models.ActionState
		why   string
	}{
		{"a host-network pod", models.Party{Namespace: e.app, Workload: "api"}, models.StateSkipped, "host-network pod " + e.app + "/api-2"},
		{"a pod in a protected range", models.Party{Namespace: e.app, Workload: "db"}, models.StateSkipped, "respond.protected_cidrs 10.250.0.0/16"},
		{"no pod", models.Party{Namespace: e.app, Workload: "cart"}, models.StateSkipped, "has no running pod with an IP to deny"},
		{"not in the cluster", models.Party{Namespace: e.app, Workload: "ghost"}, models.StateSkipped, "it is not in the cluster"},
	} {
		if err := h.r.HandleDetection(ctx, e.plaintextDowngrade(c.src)); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if a := h.sink.last(); a.State != c.state || a.PolicyName != "" || !strings.Contains(a.Reason, c.why) {
			t.Errorf("%s: %s %q, policy %q; want %s saying %q", c.name, a.State, a.Reason, a.PolicyName, c.state, c.why)
		}
	}
	if n := e.count(t); n != 0 {
		t.Errorf("%d policies written for guarded or unnamed plaintext callers", n)
	}
}
