package detect

import (
	"fmt"
	"math"

	"github.com/meshguard/meshguard/models"
)

// Priors for edges with no baseline of their own: a new edge, or one
// younger than the learning period, has no level to depart from, but its
// destination knows what share of its answers are failures for all its
// callers, and its source what share of its calls fail. An edge failing
// far beyond both is judged from its first window, as a leaf workload
// (known only as a destination) that starts calling a service with a
// stream of 500s is.

// priorFloor is the smallest failure share a prior assumes: a destination
// that never failed does not make one failure a miracle.
const priorFloor = 0.002

// failShare is node's learned share of feature f per request, or -1 when
// the node has not been seen for the learning period.
func failShare(node *nodeState, f models.Feature, ws, learnMs int64) float64 {
	if node == nil || ws-node.firstMs < learnMs || node.base[models.FeatRequests].Level <= 0 {
		return -1
	}
	return float64(node.base[f].Level) / float64(node.base[models.FeatRequests].Level)
}

// priorShare is the share of f expected on an edge from src to dst: the
// larger of what the destination answers everyone and what the source's
// calls get, at least priorFloor.
func priorShare(src, dst *nodeState, f models.Feature, ws, learnMs int64) float64 {
	return math.Max(priorFloor, math.Max(failShare(dst, f, ws, learnMs), failShare(src, f, ws, learnMs)))
}

// youngEdge scores 5xx and 401/403 on an edge without an established
// baseline against the priors. The confounders of established edges hold
// here too: a retry storm or a destination failing for everyone is no
// error surge.
func (s *shard) youngEdge(out []finding, ew *edgeWin, dw *dstWin, src, dst *nodeState, ws, learnMs int64, thr float64) []finding {
	m := s.det.model
	req := float64(ew.m.requests)
	if req == 0 {
		return out
	}
	e := ew.e
	if x := float64(ew.m.auth); x >= authMinCount {
		exp := req * priorShare(src, dst, models.FeatAuthFail, ws, learnMs)
		if _, score, model := m.countSurprise(exp, 0, x); score >= thr && x >= 5*exp+10 {
			f := s.edgeFinding(models.CredentialStuffing, models.SeverityHigh, score, ew, []models.FeatureEvidence{
				{Feature: models.FeatAuthFail.String(), Expected: round3(exp), Observed: x, Score: round3(score), Model: "prior_" + model},
				{Feature: models.FeatRequests.String(), Observed: req, Model: "prior"}})
			f.evidence.Summary = fmt.Sprintf("%s got %.0f 401/403 responses from %s in one window on a new edge, %.1f expected from the priors", e.Source, x, e.Destination, exp)
			ew.fired[models.FeatAuthFail] = true
			return append(out, f)
		}
	}
	x := float64(ew.m.c5xx)
	if x < errorMinCount {
		return out
	}
	exp := req * priorShare(src, dst, models.Feat5xx, ws, learnMs)
	_, score, model := m.countSurprise(exp, 0, x)
	if score < thr || x < 4*exp+5 {
		return out
	}
	ew.fired[models.Feat5xx] = true
	if retryStorm(ew.m) || (dw != nil && float64(ew.m.c5xx) < 0.6*float64(dw.c5xx)) {
		dw.noteFailing(e.Source, x-exp, score)
		return out
	}
	f := s.edgeFinding(models.ErrorSurge, models.SeverityMedium, score, ew, []models.FeatureEvidence{
		{Feature: models.Feat5xx.String(), Expected: round3(exp), Observed: x, Score: round3(score), Model: "prior_" + model},
		{Feature: models.FeatRequests.String(), Observed: req, Model: "prior"}})
	f.evidence.Summary = fmt.Sprintf("%s caused %.0f 5xx responses from %s in one window on a new edge, %.1f expected from the priors", e.Source, x, e.Destination, exp)
	return append(out, f)
}
