package detect

import (
	"fmt"
	"math"

	"github.com/meshguard/meshguard/models"
)

// Minimum effect sizes of a flood: a statistically certain change that
// is too small to matter is not worth a human's attention.
const (
	floodMinExtra = 20 // requests per window above expected
	// floodRatio: bursts of ordinary clients reach 3 to 4 times an edge's
	// level for a window or two; floods are an order of magnitude.
	floodRatio = 5
	// peakRatio: a flood is also twice the edge's usual peak, so that a
	// batch job's scheduled burst is not one.
	peakRatio         = 2
	destFloodMinExtra = 50
)

// edgeFlood reports whether an established edge's requests are a flood:
// far above its level and its usual peak, and neither load passed on
// from the caller's own callers nor a canary's shift between versions.
func (cw *closingWindow) edgeFlood(ew *edgeWin, sc *edgeScores, srcIn *dstWin) bool {
	r := models.FeatRequests
	e := ew.e
	return sc.score[r] >= cw.thr && sc.x[r] >= math.Max(floodRatio*sc.exp[r], peakRatio*ew.st.usualPeak(cw.ws, cw.s.det.windowMs))+floodMinExtra &&
		!cw.s.inboundExplains(e.Source, sc.x[r]/math.Max(sc.exp[r], 1), srcIn) && !cw.shifted(e.Source, e.Destination, sc.factor)
}

// destinationFlood raises a flood into destination dep from many edges
// at once, named after its top caller, unless an edge's own detection
// already explains it or the top caller is at its usual peak.
func (cw *closingWindow) destinationFlood(dep models.EndpointID, dw *dstWin) {
	s := cw.s
	m := s.det.model
	node := s.node(s.dests, dep, cw.ws)
	if cw.ws-node.firstMs < cw.learnMs {
		return
	}
	factor := s.seasonalFactor(node, cw.ws)
	exp, score, model := m.Surprise(node.base[models.FeatRequests], float64(dw.requests), factor, true)
	if score < cw.thr || float64(dw.requests) < floodRatio*exp+destFloodMinExtra || cw.shifted(models.EndpointID{}, dep, factor) {
		return
	}
	top := dw.edges[0]
	for _, ew := range dw.edges[1:] {
		if ew.m.requests > top.m.requests {
			top = ew
		}
	}
	if top.fired[models.FeatRequests] || top.silent {
		return // the edge already explains it
	}
	// A caller sending what it usually sends at its peaks (a batch job
	// on its schedule) explains the surge: it is not a flood.
	if top.st != nil && cw.ws-top.st.firstMs >= cw.learnMs {
		texp, sc, _ := m.Surprise(top.st.base[models.FeatRequests], float64(top.m.requests), factor, true)
		if sc < cw.thr || float64(top.m.requests) < peakRatio*top.st.usualPeak(cw.ws, s.det.windowMs) {
			return
		}
		// Nor is load the top caller passes on from its own callers.
		if s.inboundExplains(top.e.Source, float64(top.m.requests)/math.Max(texp, 1), cw.dsts[top.e.Source]) {
			return
		}
	}
	f := s.edgeFinding(models.RequestFlood, floodSeverity(float64(dw.requests), exp), score, top, []models.FeatureEvidence{{
		Feature: "requests_into_destination", Expected: round3(exp), Observed: float64(dw.requests), Score: round3(score), Model: model}})
	f.evidence.Summary = fmt.Sprintf("%d requests into %s in %s, %.0f expected; top caller %s (%d)",
		dw.requests, dep, s.det.cfg.Window, exp, top.e.Source, top.m.requests)
	cw.findings = append(cw.findings, f)
	for _, ew := range dw.edges {
		ew.fired[models.FeatRequests] = true
	}
	dw.flooded = true
}

// inboundExplains reports whether a caller's surge of outbound requests
// follows a surge of its own inbound traffic (users arriving at the
// frontend make it call everything more): load passed on, not a flood
// the caller started.
func (s *shard) inboundExplains(src models.EndpointID, ratio float64, in *dstWin) bool {
	node := s.dests[src]
	if in == nil || node == nil || node.base[models.FeatRequests].N == 0 {
		return false
	}
	exp := math.Max(float64(node.base[models.FeatRequests].Level)*s.seasonalFactor(node, 0), 1)
	return float64(in.requests)/exp >= 0.5*ratio
}

// shifted reports whether traffic into dst (from src, or from everyone
// when src is zero) only moved between versions of one app, as a canary
// rollout does: the app's total is not a flood even if the new version's
// share is many times its past.
func (cw *closingWindow) shifted(src, dst models.EndpointID, factor float64) bool {
	if dst.Kind != models.KindWorkload {
		return false
	}
	s := cw.s
	group := peerGroup(dst)
	var observed, expected float64
	for e, a := range cw.w.edges {
		if (src == models.EndpointID{} || e.Source == src) && e.Destination.Kind == models.KindWorkload && peerGroup(e.Destination) == group {
			observed += float64(a.merge().requests)
		}
	}
	if (src == models.EndpointID{}) {
		for ep, n := range s.dests {
			if ep.Kind == models.KindWorkload && peerGroup(ep) == group {
				expected += float64(n.base[models.FeatRequests].Level)
			}
		}
	} else {
		for e, st := range s.edges {
			if e.Source == src && e.Destination.Kind == models.KindWorkload && peerGroup(e.Destination) == group {
				expected += float64(st.base[models.FeatRequests].Level)
			}
		}
	}
	return observed < floodRatio*expected*factor+floodMinExtra
}

func floodSeverity(x, exp float64) models.Severity {
	switch {
	case x >= 20*exp+200:
		return models.SeverityHigh
	default:
		return models.SeverityMedium
	}
}
