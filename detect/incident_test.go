package detect

import (
	"testing"

	"github.com/meshguard/meshguard/models"
)

// A scan, then the scanner calling, a window at a time, established
// services it has never called: one incident, one detection (the scan, with the probes
// absorbed), not a lateral_movement per probed edge.
func TestScanAbsorbsTheEdgesItProbes(t *testing.T) {
	attackAt := trainWindows + 30
	c := run(t, 2, trainWindows, attackAt+20, func(m *mini, i int, ws int64) []models.Flow {
		switch {
		case i == attackAt:
			return scanFlows(ws)
		case i == attackAt+2:
			// The scanner calls established services it never called.
			return []models.Flow{flow(ws+1, "shop/frontend", "data/db", "/query", 200)}
		case i == attackAt+4:
			return []models.Flow{flow(ws+1, "shop/frontend", "books/ratings", "/ratings/{id}", 200)}
		}
		return nil
	})
	kinds := c.kinds()
	if kinds[models.Scan] != 1 || len(c.got) != 1 {
		t.Fatalf("detections %v, want one scan", kinds)
	}
	for _, d := range c.got {
		if d.IncidentID != d.ID {
			t.Errorf("the scan heads its incident: incident %q, id %q", d.IncidentID, d.ID)
		}
		if d.Evidence.Absorbed != 2 {
			t.Errorf("absorbed %d probed edges, want 2", d.Evidence.Absorbed)
		}
	}
}

// Detections of one source within hold share its first detection's
// incident; another source's are their own.
func TestIncidentsGroupBySource(t *testing.T) {
	attackAt := trainWindows + 30
	c := run(t, 2, trainWindows, attackAt+20, func(m *mini, i int, ws int64) []models.Flow {
		var out []models.Flow
		switch i {
		case attackAt:
			out = append(out, flow(ws+5, "shop/frontend", "data/db", "/query", 200))
		case attackAt + 2:
			for k := 0; k < 80; k++ {
				out = append(out, flow(ws+int64(k), "shop/frontend", "shop/cart", "/login", 401))
			}
			out = append(out, flow(ws+7, "books/reviews-v1", "shop/catalog", "/products", 200))
		}
		return out
	})
	var heads, parts int
	byIncident := map[string][]models.Detection{}
	for _, d := range c.got {
		byIncident[d.IncidentID] = append(byIncident[d.IncidentID], d)
		if d.IncidentID == d.ID {
			heads++
		} else {
			parts++
		}
	}
	if len(byIncident) != 2 || heads != 2 || parts < 1 {
		t.Fatalf("%d detections in %d incidents (%d heads, %d parts): %v", len(c.got), len(byIncident), heads, parts, c.kinds())
	}
	for id, ds := range byIncident {
		src := ds[0].Source.String()
		for _, d := range ds {
			if d.Source.String() != src {
				t.Errorf("incident %s mixes sources %s and %s", id, src, d.Source)
			}
		}
	}
}

// A detection without a source (a destination's outage) is an incident of
// its own: outages of unrelated destinations are not one attacker's.
func TestSourcelessDetectionsAreTheirOwnIncidents(t *testing.T) {
	s := &shard{det: &Detector{cfg: DefaultConfig()}, incidents: map[models.EndpointID]*incident{}}
	for _, id := range []string{"outage-a", "outage-b"} {
		d := &models.Detection{ID: id}
		s.join(activeKey{kind: models.DestinationOutage, dst: models.EndpointID{Namespace: id}}, d)
		if d.IncidentID != id {
			t.Errorf("%s joined incident %q", id, d.IncidentID)
		}
	}
	if len(s.incidents) != 0 {
		t.Errorf("%d incidents indexed by source for sourceless detections", len(s.incidents))
	}
}
