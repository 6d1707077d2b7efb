package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/scenario"
)

// A shorter `make eval-mixed`: 20 minutes of learning on the mixed mesh,
// then every attack class once (the stolen certificate and the
// compromised leaf included), at a fifth of the traffic: each detected
// within two windows, no false incident, nothing enforced on a benign
// edge, and the text-format records' identities resolved.
func TestMixedMeshEveryClassAndNoBenignEnforcement(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: plays 90 minutes of the mixed mesh (about 30 s of CPU)")
	}
	cfg := DefaultConfig()
	cfg.Mixed = true
	cfg.Duration = 90 * time.Minute
	cfg.Detect.LearningPeriod = 20 * time.Minute
	cfg.Scale = 0.2
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep.Print(&out, true)
	t.Log("\n" + out.String())
	if len(rep.Results) != len(models.DetectionKinds)+2 {
		t.Fatalf("%d results for %d kinds, the stolen certificate and the leaf", len(rep.Results), len(models.DetectionKinds))
	}
	if rep.Flows != rep.Records || rep.Resolved < rep.Flows/2 {
		t.Errorf("%d records decoded into %d flows, %d resolved", rep.Records, rep.Flows, rep.Resolved)
	}
	for _, r := range rep.Results {
		switch {
		case r.Match == nil:
			t.Errorf("%s not detected", r.Attack)
		case r.Windows > 2:
			t.Errorf("%s detected after %d windows", r.Attack, r.Windows)
		}
	}
	if n, _ := rep.FalseIncidentsPer1000(); n > 0 {
		t.Errorf("%d false incidents of medium or higher severity in %.0f service-hours", n, rep.ServiceHours)
	}
	if len(rep.Benign) > 0 {
		t.Errorf("%d actions enforced on benign edges", len(rep.Benign))
	}
	if len(rep.Actions) == 0 {
		t.Error("respond decided nothing")
	}
}

// respond confirms identities against the scenario's cluster as it
// stands at the decision's event time: an IP-only source is enforced
// while a running pod holds it, and only dry-run once that pod is gone
// (restarted at another address).
func TestResponderSeesTheClusterAtEventTime(t *testing.T) {
	start := time.Date(2026, 11, 18, 9, 0, 0, 0, time.UTC)
	gen, err := scenario.NewWith(scenario.MixedMesh(6*time.Hour), start, 1, scenario.Options{Dynamics: true})
	if err != nil {
		t.Fatal(err)
	}
	var old scenario.Pod
	for _, p := range gen.Pods() {
		if p.Workload == "users-v1" && !p.To.IsZero() {
			old = p
			break
		}
	}
	if !old.IP.IsValid() {
		t.Fatal("users-v1 never restarted")
	}
	now := old.To.Add(-time.Minute)
	log := &actionLog{}
	resp, api, err := newResponder(newCluster(gen.Mesh(), gen.Pods()), func() time.Time { return now }, t.TempDir(), log)
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	det := func(id string) models.Detection {
		return models.Detection{ID: id, Kind: models.LateralMovement, Severity: models.SeverityHigh, Score: 9, Updates: 1,
			Source: models.Party{IP: old.IP.String()}, Destination: models.Party{Namespace: "billing", Workload: "payments-v1"},
			WindowStart: now.Add(-10 * time.Second), WindowEnd: now}
	}
	ctx := context.Background()
	if err := resp.HandleDetection(ctx, det("d1")); err != nil {
		t.Fatal(err)
	}
	now = old.To.Add(time.Minute)
	if err := resp.HandleDetection(ctx, det("d2")); err != nil {
		t.Fatal(err)
	}
	if len(log.all) != 2 {
		t.Fatalf("%d actions: %+v", len(log.all), log.all)
	}
	if a := log.all[0].Action; a.State != models.StateApplied || a.Mode != models.ModeEnforce {
		t.Errorf("while the pod ran: %s %s: %s", a.State, a.Mode, a.Reason)
	}
	// The second finds the first's policy (same source and edge) and
	// extends it; a fresh responder at the later time would not enforce.
	fresh, api2, err := newResponder(newCluster(gen.Mesh(), gen.Pods()), func() time.Time { return now }, t.TempDir(), log)
	if err != nil {
		t.Fatal(err)
	}
	defer api2.Close()
	if err := fresh.HandleDetection(ctx, det("d3")); err != nil {
		t.Fatal(err)
	}
	if a := log.all[2].Action; a.Mode == models.ModeEnforce || !strings.Contains(a.Reason, "no running pod") {
		t.Errorf("after the pod ended: %s %s: %s", a.State, a.Mode, a.Reason)
	}
	if n := api.unknown.Load() + api2.unknown.Load(); n != 0 {
		t.Errorf("respond asked the in-process API %d requests it does not serve", n)
	}
}

// An enforced action is benign unless its detection names an attacker
// (and, for a block, the edge it attacked; a scanner attacks every edge).
func TestBenignEnforcedJudgesSourceAndEdge(t *testing.T) {
	start := time.Date(2026, 11, 18, 9, 0, 0, 0, time.UTC)
	attacks := []scenario.Attack{
		{Kind: models.LateralMovement, Source: "shop/recommendations-v1", Destination: "billing/payments-v1", Start: start, End: start.Add(5 * time.Minute)},
		{Kind: models.Scan, Source: "shop/ads-v1", Start: start.Add(time.Hour), End: start.Add(time.Hour + 5*time.Minute)},
	}
	gen, err := scenario.NewWith(scenario.RealisticMesh(), start, 1, scenario.Options{Attacks: attacks})
	if err != nil {
		t.Fatal(err)
	}
	m := matcher{gen: gen, window: 10 * time.Second, grace: 40 * time.Second, hold: 5 * time.Minute}
	act := func(id string, kind models.ActionKind, src, dst string, at time.Duration, mode models.Mode) actionSeen {
		ns, wl, _ := strings.Cut(src, "/")
		d := models.Detection{Source: models.Party{Namespace: ns, Workload: wl}, WindowStart: start.Add(at), WindowEnd: start.Add(at + 10*time.Second)}
		if dst != "" {
			ns, wl, _ := strings.Cut(dst, "/")
			d.Destination = models.Party{Namespace: ns, Workload: wl}
		}
		return actionSeen{Action: models.Action{ID: id, Kind: kind, State: models.StateApplied, Mode: mode}, Detection: d}
	}
	got := benignEnforced(m, attacks, []actionSeen{
		act("edge", models.ActionBlockEdge, "shop/recommendations-v1", "billing/payments-v1", time.Minute, models.ModeEnforce),
		act("other-edge", models.ActionBlockEdge, "shop/recommendations-v1", "shop/catalog-v1", time.Minute, models.ModeEnforce),
		act("quarantine", models.ActionQuarantine, "shop/recommendations-v1", "", time.Minute, models.ModeEnforce),
		act("scan-edge", models.ActionBlockEdge, "shop/ads-v1", "shop/cart-v1", time.Hour, models.ModeEnforce),
		act("bystander", models.ActionBlockEdge, "shop/frontend-v1", "shop/cart-v1", time.Hour, models.ModeEnforce),
		act("dry", models.ActionBlockEdge, "shop/frontend-v1", "shop/cart-v1", time.Hour, models.ModeDryRun),
		act("later", models.ActionQuarantine, "shop/recommendations-v1", "", 3*time.Hour, models.ModeEnforce),
		act("edge", models.ActionBlockEdge, "shop/frontend-v1", "shop/cart-v1", time.Hour, models.ModeEnforce), // the same id again
	})
	var ids []string
	for _, a := range got {
		ids = append(ids, a.Action.ID)
	}
	if strings.Join(ids, ",") != "other-edge,bystander,later" {
		t.Errorf("benign enforced: %v, want other-edge, bystander, later", ids)
	}
}
