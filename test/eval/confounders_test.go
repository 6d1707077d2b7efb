package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/scenario"
)

// The realistic mesh's benign confounders (a destination outage seen by
// many callers, one caller's retry storm, an open circuit breaker, a new
// ReplicaSet, an HPA scale-up, a new service coming online), brought
// inside the half hour after learning, at half the traffic: no false
// detection, the outage reported as one low reliability event, and the
// attacks played beside them (an error surge, lateral movement) still
// caught.
func TestBenignConfoundersStayQuiet(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: plays 50 minutes of a mesh at half its traffic (about 30 s of CPU)")
	}
	cfg := DefaultConfig()
	cfg.Duration = 50 * time.Minute
	cfg.Detect.LearningPeriod = 20 * time.Minute
	cfg.Scale = 0.5
	cfg.Kinds = []models.DetectionKind{models.ErrorSurge, models.LateralMovement}
	cfg.Mesh = scenario.RealisticMesh()
	m := &cfg.Mesh
	m.Rollouts = nil
	m.Incidents = []scenario.Incident{
		{Workload: "catalog-v1", At: 31 * time.Minute, For: 60 * time.Second, ErrorRate: 0.5, Mode: scenario.IncidentUnavailable},
		{Workload: "warehouse-v1", At: 34 * time.Minute, For: 90 * time.Second, ErrorRate: 0.6, Mode: scenario.IncidentUnavailable},
		{Workload: "ratings-v1", At: 41 * time.Minute, For: 40 * time.Second, ErrorRate: 0.3, Mode: scenario.IncidentOverflow},
	}
	m.Deploys = []scenario.Deploy{
		{Workload: "payments-v1", At: 22 * time.Minute, Pods: 2, Reset: 20 * time.Second, ResetRate: 0.05},
		{Workload: "frontend-v1", At: 44 * time.Minute, Pods: 4},
	}
	m.Launches = []scenario.Launch{{Workload: "wishlist-v1", At: 46 * time.Minute}}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep.Print(&out, true)
	t.Log("\n" + out.String())
	for _, r := range rep.Results {
		if r.Match == nil || r.Windows > 2 {
			t.Errorf("%s: detected %v after %d windows", r.Attack, r.Match != nil, r.Windows)
		}
	}
	if len(rep.False) != 0 {
		t.Errorf("%d false detections beside the confounders; want 0", len(rep.False))
	}
	var catalog int
	for _, f := range rep.Reliability {
		if f.First.Severity != models.SeverityLow {
			t.Errorf("reliability event of severity %s", f.First.Severity)
		}
		if f.First.Destination.Workload == "catalog-v1" {
			catalog++
		}
	}
	if catalog != 1 {
		t.Errorf("%d reliability events for catalog-v1's outage, want 1", catalog)
	}
}
