package respond

import (
	"context"
	"strings"
	"testing"

	"github.com/meshguard/meshguard/models"
)

// One incident, one action: a scanner quarantined by its scan is not then
// blocked edge by edge when it calls what it found; the quarantine is
// extended, and no policy is added.
func TestKubeQuarantineCoversTheIncidentsEdges(t *testing.T) {
	e := newKubeEnv(t)
	h := e.responder(t, e.config(models.ModeEnforce), nil, nil)
	ctx := context.Background()
	scan := detection(models.Scan, models.SeverityHigh, e.principal("cart"), e.app, "")
	scan.Destination = models.Party{Namespace: e.app}
	scan.IncidentID = scan.ID
	if err := h.r.HandleDetection(ctx, scan); err != nil {
		t.Fatal(err)
	}
	q := h.sink.last()
	if q.Kind != models.ActionQuarantine || q.State != models.StateApplied {
		t.Fatalf("the scan: %+v, want an applied quarantine", q)
	}
	policies := e.count(t)
	lateral := detection(models.LateralMovement, models.SeverityHigh, e.principal("cart"), e.app, "payments")
	lateral.IncidentID = scan.ID
	if err := h.r.HandleDetection(ctx, lateral); err != nil {
		t.Fatal(err)
	}
	a := h.sink.last()
	if a.ID != q.ID || a.State != models.StateExtended || !strings.Contains(a.Reason, "covered by the quarantine") {
		t.Errorf("the scanner's lateral movement: %+v, want the quarantine %s extended", a, q.ID)
	}
	if n := e.count(t); n != policies {
		t.Errorf("%d policies after the lateral movement, want the quarantine's %d", n, policies)
	}
	// Another source's lateral movement is its own incident and action.
	other := detection(models.LateralMovement, models.SeverityHigh, e.principal("web"), e.app, "payments")
	if err := h.r.HandleDetection(ctx, other); err != nil {
		t.Fatal(err)
	}
	if a := h.sink.last(); a.Kind != models.ActionBlockEdge || a.State != models.StateApplied {
		t.Errorf("another source: %+v, want its own block_edge", a)
	}
}
