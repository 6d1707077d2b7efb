package api

import (
	"encoding/json"
	"testing"
	"time"
)

func TestIncidentsGroupDetections(t *testing.T) {
	t0 := time.Date(2026, 11, 16, 9, 0, 0, 0, time.UTC)
	ds := []detectionJSON{ // newest first, as RecentDetections returns them
		{ID: "lm-2", IncidentID: "scan-1", Kind: "lateral_movement", Severity: "critical", WindowStart: t0.Add(2 * time.Minute), WindowEnd: t0.Add(3 * time.Minute)},
		{ID: "other", IncidentID: "other", Kind: "error_surge", Severity: "medium", WindowStart: t0.Add(time.Minute), WindowEnd: t0.Add(2 * time.Minute)},
		{ID: "scan-1", IncidentID: "scan-1", Kind: "scan", Severity: "high", WindowStart: t0, WindowEnd: t0.Add(time.Minute)},
	}
	got := incidentsOf(ds)
	if len(got) != 2 {
		t.Fatalf("%d incidents, want 2: %+v", len(got), got)
	}
	scan := got[0]
	if scan.ID != "scan-1" || scan.Head.ID != "scan-1" || len(scan.Detections) != 2 || scan.Severity != "critical" ||
		!scan.FirstSeen.Equal(t0) || !scan.LastSeen.Equal(t0.Add(3*time.Minute)) || scan.Kinds["scan"] != 1 || scan.Kinds["lateral_movement"] != 1 {
		t.Errorf("the scan's incident: %+v", scan)
	}
	if got[1].ID != "other" || got[1].Head.ID != "other" {
		t.Errorf("the other incident: %+v", got[1])
	}
}

func TestIncidentsEndpoint(t *testing.T) {
	e := newEnv(t, nil)
	w := do(e.h, "GET", "/api/v1/incidents", viewerToken, nil)
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	var body struct{ Incidents []incidentJSON }
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	// Detections stored without an incident id are each their own.
	if len(body.Incidents) != 2 || body.Incidents[0].Head.ID != "det-1" || body.Incidents[0].ID != "det-1" {
		t.Errorf("incidents %+v", body.Incidents)
	}
	if w := do(e.h, "GET", "/api/v1/incidents", "", nil); w.Code != 401 {
		t.Errorf("without a token: %d, want 401", w.Code)
	}
}
