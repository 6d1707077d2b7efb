package detect

import (
	"math"
	"time"

	"github.com/meshguard/meshguard/models"
)

// learn folds the window into the baselines, except what raised a
// detection: an attack must not become normal.
func (s *shard) learn(cw *closingWindow) {
	m := s.det.model
	ws, edges, scanning := cw.ws, cw.edges, cw.scanning
	learnMs := s.det.cfg.LearningPeriod.Milliseconds()
	for i := range edges {
		ew := &edges[i]
		st := ew.st
		if st == nil {
			st = &edgeState{firstMs: ws}
			s.edges[ew.e] = st
			if ew.silent {
				st.suspectUntil = ws + learnMs
			}
		}
		if ew.silent {
			st.lastMs = ws
			continue
		}
		x := ew.m.features()
		for f := range x {
			if !ew.fired[f] {
				m.Learn(&st.base[f], x[f])
			}
		}
		if windows := max(1, (ws-st.lastMs)/s.det.windowMs); ew.fired[models.FeatRequests] {
			st.dropRun() // the run was the attack's onset
		} else {
			st.holdPeak(x[models.FeatRequests], windows, ew.elevated)
		}
		if ew.m.mtls > 0 && !ew.fired[models.FeatPlaintext] {
			st.mtlsSeen = true
		}
		st.lastMs = ws
		dst := s.dests[ew.e.Destination]
		for _, pc := range ew.a.paths {
			h := pathHash(pc.v)
			st.addPath(h)
			if dst != nil && len(dst.paths) < maxDestPaths {
				dst.paths[h] = struct{}{}
			}
		}
		for _, mc := range ew.a.methods {
			st.methods |= methodBit(mc.v)
		}
		if dst != nil && !scanning[ew.e.Source] && len(dst.callers) < maxCallers {
			dst.callers[peerGroup(ew.e.Source)] = struct{}{}
		}
		if src := s.sources[ew.e.Source]; src != nil && !scanning[ew.e.Source] && len(src.calls) < maxCallers {
			src.calls[peerGroup(ew.e.Destination)] = struct{}{}
		}
	}
	for ep, sw := range cw.srcs {
		node := s.sources[ep]
		s.catchUpNode(node, ws)
		if !scanning[ep] {
			m.Learn(&node.base[models.FeatDistinctDestinations], float64(len(sw.edges)))
			m.Learn(&node.base[models.FeatDistinctPaths], float64(len(sw.paths)))
			m.Learn(&node.base[models.FeatDistinctPorts], float64(len(sw.ports)))
			m.Learn(&node.base[models.FeatRequests], float64(sw.requests))
			m.Learn(&node.base[models.Feat5xx], float64(sw.c5xx))
			m.Learn(&node.base[models.FeatAuthFail], float64(sw.auth))
		}
		if node.principal == "" && !scanning[ep] {
			for _, ew := range sw.edges {
				if ew.a.principal != "" && !ew.a.changed {
					node.principal = ew.a.principal
					break
				}
			}
		}
		node.lastMs = ws
	}
	for ep, dw := range cw.dsts {
		node := s.dests[ep]
		if cw.attackOnly(dw) {
			// Being probed or called only by an attacker says nothing
			// of the destination: it is not learned, and a workload
			// known only from it is not known (knownSince), so that a
			// job a scanner probed is no leaf with a history when it
			// first runs.
			if node.lastMs == 0 {
				delete(s.dests, ep)
			}
			continue
		}
		s.catchUpNode(node, ws)
		if !dw.flooded {
			m.Learn(&node.base[models.FeatRequests], float64(dw.requests))
			if len(dw.failing) == 0 {
				m.Learn(&node.base[models.Feat5xx], float64(dw.c5xx))
				m.Learn(&node.base[models.FeatAuthFail], float64(dw.auth))
			}
			if node.seasonal == nil {
				node.seasonal = new([168]models.Series)
			}
			m.Learn(&node.seasonal[hourOfWeek(ws)], float64(dw.requests))
		}
		node.lastMs = ws
	}
}

// peakHoldWindows bounds a run whose peak is held back: a minute. A
// flood is judged against the peak from before it for that long; a
// longer run (a batch job's burst, a step in the edge's load) is learned
// as it goes, so that its peak does not lag the edge's new normal for as
// long as the slowly learning level stays surprised by it.
const peakHoldWindows = 6

// holdPeak learns the peak of a window of x requests, windows after the
// last one learned. A window that scored at or above the threshold
// (elevated) and raised nothing joins the run of such windows, whose
// peak is learned only when the run ends: at a window that is not
// elevated, after a window the edge was not seen in, or after
// peakHoldWindows. Learning it at once let a flood that stayed under the
// rule in its first window, as one starting late in a window does,
// raise the peak the rule compares its next windows with, and never
// fire.
func (e *edgeState) holdPeak(x float64, windows int64, elevated bool) {
	if windows > 1 {
		e.endRun() // the edge went quiet: a flood does not
	}
	if !elevated {
		e.endRun()
		e.learnPeak(x, windows)
		return
	}
	e.learnPeak(0, windows) // the peak still decays
	e.runPeak = float32(math.Max(float64(e.runPeak), x))
	if e.runWindows++; e.runWindows >= peakHoldWindows {
		e.endRun()
	}
}

// endRun learns the current run's peak.
func (e *edgeState) endRun() {
	e.peak = max(e.peak, e.runPeak)
	e.dropRun()
}

// dropRun forgets the current run: it was an attack's.
func (e *edgeState) dropRun() { e.runPeak, e.runWindows = 0, 0 }

// usualPeak is the peak a window starting at ws is judged against: with
// the run the edge had before a quiet window, since learn ends that run
// only after this window is judged.
func (e *edgeState) usualPeak(ws, windowMs int64) float64 {
	if ws-e.lastMs > windowMs {
		return float64(max(e.peak, e.runPeak))
	}
	return float64(e.peak)
}

// attackOnly reports whether all of dw's traffic was an attack's: edges a
// detection claimed (silent), or from a source scanning in the window or
// with an open incident.
func (cw *closingWindow) attackOnly(dw *dstWin) bool {
	wStart := time.UnixMilli(cw.ws).UTC()
	for _, ew := range dw.edges {
		if !ew.silent && !cw.scanning[ew.e.Source] && cw.s.incidentFor(ew.e.Source, wStart) == nil {
			return false
		}
	}
	return true
}

func (s *shard) catchUpNode(node *nodeState, ws int64) {
	if node.lastMs == 0 {
		return
	}
	if gap := (ws-node.lastMs)/s.det.windowMs - 1; gap > 0 {
		for f := range node.base {
			s.det.model.catchUp(&node.base[f], gap)
		}
	}
}

func (s *shard) node(m map[models.EndpointID]*nodeState, ep models.EndpointID, ws int64) *nodeState {
	n := m[ep]
	if n == nil {
		n = &nodeState{firstMs: ws, callers: map[string]struct{}{}, calls: map[string]struct{}{}, paths: map[uint32]struct{}{}}
		if w, ok := s.det.warmNodes[ep]; ok {
			n.firstMs = min(ws, w.firstMs)
			for _, c := range w.callers {
				n.callers[c] = struct{}{}
			}
			for _, c := range w.calls {
				n.calls[c] = struct{}{}
			}
		}
		m[ep] = n
	}
	return n
}

// seasonalFactor scales a destination's expected load by the hour of the
// week, once the destination has history at that hour and at others.
func (s *shard) seasonalFactor(dst *nodeState, ws int64) float64 {
	if dst == nil || dst.seasonal == nil {
		return 1
	}
	h := &dst.seasonal[hourOfWeek(ws)]
	if h.N < 60 {
		return 1
	}
	var sum float64
	var n int
	for i := range dst.seasonal {
		if dst.seasonal[i].N >= 60 {
			sum += float64(dst.seasonal[i].Level)
			n++
		}
	}
	if n < 12 || sum == 0 {
		return 1
	}
	f := float64(h.Level) / (sum / float64(n))
	return math.Max(0.25, math.Min(4, f))
}

func hourOfWeek(ms int64) int {
	t := time.UnixMilli(ms).UTC()
	return int(t.Weekday())*24 + t.Hour()
}
