package detect

import (
	"fmt"
	"math"

	"github.com/meshguard/meshguard/models"
)

// A scan is one source fanning out, in one window, to more destinations,
// paths or ports than its profile explains, with many of the calls
// failing.
const (
	scanMinDests     = 8
	scanMinPaths     = 20
	scanMinPorts     = 5
	scanMinFailRatio = 0.3
	newEdgesForScan  = 5
	// A fan-out this large is a high-severity scan.
	scanHighDests = 3 * scanMinDests
	scanHighPaths = 3 * scanMinPaths
)

// scan judges source src's fan-out in the window and, when it scans,
// marks the source scanning so that its probed edges are not lateral
// movement.
func (cw *closingWindow) scan(src models.EndpointID, sw *srcWin, node *nodeState) {
	m := cw.s.det.model
	established := cw.ws-node.firstMs >= cw.learnMs
	feats := [...]struct {
		f   models.Feature
		x   float64
		min float64
	}{
		{models.FeatDistinctDestinations, float64(len(sw.edges)), scanMinDests},
		{models.FeatDistinctPaths, float64(len(sw.paths)), scanMinPaths},
		{models.FeatDistinctPorts, float64(len(sw.ports)), scanMinPorts},
	}
	failRatio := float64(sw.fails) / math.Max(1, float64(sw.requests))
	var ev []models.FeatureEvidence
	best := 0.0
	for _, ft := range feats {
		if ft.x < ft.min {
			continue
		}
		exp, score, model := m.Surprise(node.base[ft.f], ft.x, 1, true)
		if !established {
			// A source with no profile that fans out this far at once is
			// scanning whatever its history would have been.
			exp, score, model = 0, rareSeverityScore, "rule"
		}
		if score >= cw.thr && ft.x >= 2*exp+ft.min/2 {
			ev = append(ev, models.FeatureEvidence{Feature: ft.f.String(), Expected: exp, Observed: ft.x, Score: score, Model: model})
			best = max(best, score)
		}
	}
	if len(ev) == 0 && established && sw.newEdges >= newEdgesForScan {
		ev = append(ev, models.FeatureEvidence{Feature: "new_destinations", Expected: 0, Observed: float64(sw.newEdges), Score: rareSeverityScore, Model: "new"})
		best = rareSeverityScore
	}
	if len(ev) == 0 || failRatio < scanMinFailRatio {
		return
	}
	ev = append(ev, models.FeatureEvidence{Feature: "failure_ratio", Observed: round3(failRatio), Model: "rule"})
	sev := models.SeverityMedium
	if len(sw.edges) >= scanHighDests || len(sw.paths) >= scanHighPaths {
		sev = models.SeverityHigh
	}
	cw.scanning[src] = true
	f := cw.s.sourceFinding(models.Scan, sev, best, src, sw, ev)
	f.evidence.Summary = fmt.Sprintf("%s probed %d destinations, %d ports and %d paths; %.0f%% failed",
		src, len(sw.edges), len(sw.ports), len(sw.paths), 100*failRatio)
	cw.findings = append(cw.findings, f)
}
