package detect

import (
	"fmt"

	"github.com/meshguard/meshguard/models"
)

// lateral raises a never-seen edge (or one still suspect from the attack
// that created it) as lateral movement when the source has a profile,
// the destination is not new, and no peer of the source (another version
// or canary of the same app) calls it. It reports whether it raised; the
// edge is then silent.
func (cw *closingWindow) lateral(ew *edgeWin, src, dst *nodeState) bool {
	if !cw.ongoingLateral(ew) && !cw.firstLateral(ew, src, dst) {
		return false
	}
	f := cw.s.edgeFinding(models.LateralMovement, models.SeverityHigh, rareSeverityScore, ew, []models.FeatureEvidence{{
		Feature: "new_edge_requests", Expected: 0, Observed: float64(ew.m.requests), Score: rareSeverityScore, Model: "new"}})
	f.evidence.Summary = fmt.Sprintf("%s called %s for the first time; none of its peers ever did", ew.e.Source, ew.e.Destination)
	cw.findings = append(cw.findings, f)
	ew.silent = true
	return true
}

// ongoingLateral: the edge is still the same attack, which keeps its
// detection up to date.
func (cw *closingWindow) ongoingLateral(ew *edgeWin) bool {
	return ew.st != nil && ew.st.suspectUntil > cw.ws
}

// firstLateral decides a first-seen edge.
func (cw *closingWindow) firstLateral(ew *edgeWin, src, dst *nodeState) bool {
	s := cw.s
	// Only an established source has a profile to depart from; a new
	// workload (a new version, a new job) calling anything is a deploy.
	// A workload known for the learning period only as a destination
	// (a leaf) is established: its profile is "calls nothing". The
	// destination need not be known to this shard: shards follow
	// Kafka partitions, which follow sources.
	if ew.e.Source.Kind != models.KindWorkload || src == nil || cw.ws-s.knownSince(ew.e.Source, src.firstMs) < cw.learnMs {
		return false
	}
	// A service coming online is called for the first time by
	// everyone who will call it.
	if s.newService(ew.e.Destination, cw.ws, cw.learnMs) {
		return false
	}
	if dst != nil {
		if _, ok := dst.callers[peerGroup(ew.e.Source)]; ok {
			return false
		}
	}
	// Calling another version of an app it already calls (a canary,
	// a rollout), or the service in front of a workload it calls, is
	// not movement.
	_, ok := src.calls[peerGroup(ew.e.Destination)]
	return !ok
}
