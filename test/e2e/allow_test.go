package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/policy"
	"github.com/meshguard/meshguard/policy/policytest"
	"github.com/meshguard/meshguard/test/testenv"
)

// runCLI runs `meshguard ARGS...` to completion with env.
func runCLI(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(withoutMeshguardEnv(os.Environ()), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Least privilege through the binary: an hour of the realistic mesh with
// every attack is stored in ClickHouse 26.7; `policies suggest --apply`
// writes a GitOps directory and applies billing's policies in dry-run to
// the real kube-apiserver, admitting every real caller and no attacker;
// `verdicts` reads the proxies' dry-run verdicts back from ClickHouse;
// `promote` refuses after a shadow denial and enforces after a clean
// soak; `revoke` deletes.
func TestPoliciesSuggestDryRunPromoteRevoke(t *testing.T) {
	store, db := policytest.NewStore(t)
	kube := testenv.KubeConfig(t)
	dsn := fmt.Sprintf("clickhouse://%s/%s", testenv.ClickHouseAddr(t), db)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := testenv.Now().Add(-80 * time.Minute).Truncate(time.Minute)
	truth, err := policytest.Play(ctx, store, policytest.Config{Start: start, Duration: time.Hour, Learning: 15 * time.Minute,
		Scale: 0.05, Seed: 5, Kinds: models.DetectionKinds})
	if err != nil {
		t.Fatal(err)
	}

	cs := kubernetes.NewForConfigOrDie(kube)
	dyn := dynamic.NewForConfigOrDie(kube)
	var billing []string
	for dst := range truth.Calls {
		if ns, wl, _ := strings.Cut(dst, "/"); ns == "billing" {
			billing = append(billing, wl)
		}
	}
	slices.Sort(billing)
	prepareCluster(t, kube, "unused", map[string]string{"billing": billing[0]})
	for _, wl := range billing {
		createDeployment(t, cs, "billing", wl, "")
	}
	instance := "e2e-allow-" + strings.ReplaceAll(db, "_", "-")
	t.Cleanup(func() {
		_ = dyn.Resource(authzGVR).Namespace("billing").DeleteCollection(context.Background(), metav1.DeleteOptions{},
			metav1.ListOptions{LabelSelector: policy.LabelAllowInstance + "=" + instance})
	})
	env := append(serveEnv([]string{"127.0.0.1:9"}, "unused-"+db, dsn),
		"MESHGUARD_KUBERNETES_KUBECONFIG="+testenv.KubeconfigPath(t),
		"MESHGUARD_RESPOND_INSTANCE="+instance, "MESHGUARD_DETECT_LEARNING_PERIOD=15m")

	// The binary learns up to the wall clock: the period reaches back to
	// the play's start whatever the tests' clock shift.
	since := time.Since(start) + 10*time.Minute
	out := filepath.Join(t.TempDir(), "gitops")
	stdout, err := runCLI(t, env, "policies", "suggest", "--namespace", "billing", "--since", since.Round(time.Minute).String(),
		"--out", out, "--apply", "--actor", "e2e")
	if err != nil {
		t.Fatalf("policies suggest: %v\n%s", err, stdout)
	}
	var ss []policy.Suggestion
	report, err := os.ReadFile(filepath.Join(out, policy.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(report, &ss); err != nil {
		t.Fatal(err)
	}
	var kust policy.Kustomization
	kb, err := os.ReadFile(filepath.Join(out, "kustomization.yaml"))
	if err != nil || sigsyaml.UnmarshalStrict(kb, &kust) != nil {
		t.Fatalf("kustomization.yaml: %v\n%s", err, kb)
	}
	settled := time.Now().Add(-15 * time.Minute)
	var admitted, refused int
	var written []policy.Suggestion
	for _, s := range ss {
		if s.Skipped != "" {
			// Right only when nothing but attackers called it.
			for principal, c := range truth.Calls[s.Namespace+"/"+s.Workload] {
				if c.Clean > 0 {
					t.Errorf("%s/%s skipped (%s), but %s called it %d times outside attacks", s.Namespace, s.Workload, s.Skipped, principal, c.Clean)
				}
			}
			continue
		}
		written = append(written, s)
		file := filepath.ToSlash(filepath.Join(s.Namespace, s.Name+".yaml"))
		if !slices.Contains(kust.Resources, file) {
			t.Errorf("kustomization.yaml does not list %s: %v", file, kust.Resources)
		}
		var ap policy.AuthorizationPolicy
		b, err := os.ReadFile(filepath.Join(out, file))
		if err != nil || sigsyaml.UnmarshalStrict(b, &ap) != nil || ap.Spec.Action != "ALLOW" || ap.Metadata.Annotations["istio.io/dry-run"] != "true" {
			t.Errorf("%s: %v\n%s", file, err, b)
		}
		got, err := dyn.Resource(authzGVR).Namespace("billing").Get(ctx, s.Name, metav1.GetOptions{})
		if err != nil || got.GetAnnotations()["istio.io/dry-run"] != "true" {
			t.Errorf("%s in the cluster: %v (annotations %v)", s.Name, err, got.GetAnnotations())
		}
		for principal, c := range truth.Calls[s.Namespace+"/"+s.Workload] {
			in := slices.ContainsFunc(s.Rules, func(r policy.Rule) bool { return r.Principal == principal })
			switch {
			case c.Clean == 0 && in:
				t.Errorf("%s/%s admits attacker %s", s.Namespace, s.Workload, principal)
			case c.Clean == 0:
				refused++
			case c.FirstSeen.Before(settled) && !in:
				t.Errorf("%s/%s does not admit real caller %s", s.Namespace, s.Workload, principal)
			case in:
				admitted++
			}
		}
	}
	if len(ss) != len(billing) || len(written) < 2 || admitted == 0 || refused == 0 {
		t.Fatalf("%d suggestions for billing's %d workloads, %d real callers admitted, %d attackers refused\n%s",
			len(ss), len(billing), admitted, refused, stdout)
	}

	// What billing's proxies log while the policies are in dry-run: the
	// first workload's sees a caller the policy would deny, the second's
	// only allowed calls. Wall-clock times: the binary's soak is its own.
	denied, clean := written[0], written[len(written)-1]
	if stdout, err := runCLI(t, env, "policies", "list"); err != nil || !strings.Contains(stdout, "billing/"+denied.Name) {
		t.Errorf("policies list does not show %s: %v\n%s", denied.Name, err, stdout)
	}
	now := time.Now()
	verdicts := verdictFlows(denied, now, models.DryRunDenied, 4)
	verdicts = append(verdicts, verdictFlows(clean, now, models.DryRunAllowed, 25)...)
	if err := store.ConsumeFlows(ctx, verdicts); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // the verdicts' second is behind the binary's clock
	stdout, err = runCLI(t, env, "policies", "verdicts", denied.Name)
	if err != nil || !strings.Contains(stdout, denied.Name) || !strings.Contains(stdout, "ops/batch-export (4)") {
		t.Errorf("policies verdicts: %v\n%s", err, stdout)
	}
	stdout, err = runCLI(t, env, "policies", "promote", denied.Name, "--min-soak", "0s", "--actor", "e2e")
	if err == nil || !strings.Contains(stdout, "would have denied 4") {
		t.Errorf("promote after a shadow denial: %v\n%s", err, stdout)
	}
	stdout, err = runCLI(t, env, "policies", "promote", clean.Name, "--min-soak", "0s", "--actor", "e2e")
	if err != nil {
		t.Fatalf("promote after a clean soak: %v\n%s", err, stdout)
	}
	got, err := dyn.Resource(authzGVR).Namespace("billing").Get(ctx, clean.Name, metav1.GetOptions{})
	if err != nil || got.GetAnnotations()["istio.io/dry-run"] != "" {
		t.Errorf("promoted %s: %v, annotations %v", clean.Name, err, got.GetAnnotations())
	}
	for _, s := range []policy.Suggestion{denied, clean} {
		if stdout, err := runCLI(t, env, "policies", "revoke", s.Name, "--actor", "e2e"); err != nil || !strings.Contains(stdout, "revoked "+s.Name) {
			t.Errorf("revoke %s: %v\n%s", s.Name, err, stdout)
		}
		if _, err := dyn.Resource(authzGVR).Namespace("billing").Get(ctx, s.Name, metav1.GetOptions{}); err == nil {
			t.Errorf("%s still in the cluster after revoke", s.Name)
		}
	}
	rows, err := store.RecentActions(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	var audit []string
	for _, r := range rows {
		if r.ActionID == denied.Name || r.ActionID == clean.Name {
			audit = append(audit, r.ActionID+" "+r.State+" "+r.Actor)
		}
	}
	for _, want := range []string{denied.Name + " applied e2e", denied.Name + " skipped e2e", denied.Name + " revoked e2e",
		clean.Name + " promoted e2e", clean.Name + " revoked e2e"} {
		if !slices.Contains(audit, want) {
			t.Errorf("audit has no %q: %v", want, audit)
		}
	}
}

// verdictFlows are n destination-side records of calls to s's workload
// from a caller outside its rules (denied) or its first rule (allowed).
func verdictFlows(s policy.Suggestion, at time.Time, v models.DryRun, n int) []models.Flow {
	src := models.Source{Workload: "batch-export", Namespace: "ops", IP: netip.MustParseAddr("10.9.9.9")}
	tls := models.TLSPlaintext
	if v == models.DryRunAllowed {
		src, tls = models.Source{Principal: s.Rules[0].Principal, Workload: "caller", Namespace: "shop"}, models.TLSMutual
	}
	base := models.NewFlowIDBase("e2e-verdicts", 0, at.UnixNano()+int64(len(s.Name)))
	out := make([]models.Flow, n)
	for i := range out {
		out[i] = models.Flow{ID: base.ID(i), TimestampMs: at.UnixMilli(), Reporter: models.ReporterDestination, Source: src,
			Destination: models.Destination{Workload: s.Workload, Namespace: s.Namespace, Port: 8080},
			Method:      "GET", Path: "/", PathTemplate: "/", ResponseCode: 200, TLS: tls, Count: 1, DryRunAllow: v}
	}
	return out
}
