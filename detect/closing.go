package detect

import (
	"context"
	"slices"

	"github.com/meshguard/meshguard/models"
)

// closingWindow is one window being scored: its edges joined to what the
// shard remembers of them and grouped by source and destination. Every
// detector family is a method that reads it and appends findings; the
// families run in a fixed order (close) because some claim what they
// explain (edgeWin.fired, edgeWin.silent, scanning) for the ones after
// them and for learn.
type closingWindow struct {
	s       *shard
	w       *window
	ws      int64 // window start, Unix ms
	learnMs int64
	thr     float64

	edges []edgeWin
	srcs  map[models.EndpointID]*srcWin
	dsts  map[models.EndpointID]*dstWin
	// scanning: sources found scanning in this window; their probed edges
	// are not lateral movement and their fan-out is not learned.
	scanning map[models.EndpointID]bool
	findings []finding
}

// edgeWin is one edge of the window being closed.
type edgeWin struct {
	e      models.Edge
	a      *edgeAcc
	m      merged
	st     *edgeState // nil: the edge was never seen before
	fired  [edgeFeatures]bool
	silent bool // a rule claimed the edge: learn nothing from it
	// elevated: an established edge's requests scored at or above the
	// threshold (learn holds such a window's peak; holdPeak).
	elevated bool
}

// srcWin is one source's edges of the window, summed.
type srcWin struct {
	edges    []*edgeWin
	requests uint64
	fails    uint64
	c5xx     uint64 // for the source's failure prior
	auth     uint64
	newEdges int
	ports    map[uint16]struct{}
	paths    map[uint32]string
}

// dstWin is one destination's edges of the window, summed.
type dstWin struct {
	edges    []*edgeWin
	requests uint64
	c5xx     uint64
	auth     uint64
	outage   uint64 // of c5xx: unavailable answers and retried failures
	flooded  bool
	// failing: callers whose error surge the destination explains (see
	// confounders.go); extra5xx their 5xx above expected.
	failing     []models.EndpointID
	extra5xx    float64
	outageScore float64
}

// rareSeverityScore is the score given to rule-based findings.
const rareSeverityScore = 10

// close scores window w, raises what it found and learns the rest.
func (s *shard) close(ctx context.Context, w *window) {
	s.det.stats.windows.Add(1)
	cw := s.openWindow(w)
	cw.detect()
	for _, f := range cw.findings {
		s.raise(ctx, w, f, false)
	}
	s.settleEarly(w.start)
	s.learn(cw)
	s.expireActive(cw.ws)
}

// openWindow joins w's edges to their state (copying warm-started state
// in on first sight, catching baselines up over the windows the edge was
// silent) and groups them by source and destination.
func (s *shard) openWindow(w *window) *closingWindow {
	d := s.det
	cw := &closingWindow{
		s: s, w: w, ws: w.start,
		learnMs:  d.cfg.LearningPeriod.Milliseconds(),
		thr:      d.cfg.Threshold,
		edges:    make([]edgeWin, 0, len(w.edges)),
		srcs:     map[models.EndpointID]*srcWin{},
		dsts:     map[models.EndpointID]*dstWin{},
		scanning: map[models.EndpointID]bool{},
	}
	for e, a := range w.edges {
		cw.edges = append(cw.edges, edgeWin{e: e, a: a, m: a.merge(), st: s.edgeState(e, cw.ws)})
	}
	for i := range cw.edges {
		cw.group(&cw.edges[i])
	}
	for ep := range cw.dsts {
		s.node(s.dests, ep, cw.ws)
	}
	return cw
}

// edgeState returns what the shard knows of e, from the warm start if the
// shard has not seen it, caught up to window ws; nil for a new edge.
func (s *shard) edgeState(e models.Edge, ws int64) *edgeState {
	st := s.edges[e]
	if st == nil {
		w := s.det.warm[e]
		if w == nil {
			return nil
		}
		c := *w
		c.paths = slices.Clone(w.paths)
		st = &c
		s.edges[e] = st
	}
	if gap := (ws-st.lastMs)/s.det.windowMs - 1; gap > 0 {
		for f := range st.base {
			s.det.model.catchUp(&st.base[f], gap)
		}
	}
	return st
}

// group adds ew to its source's and its destination's sums.
func (cw *closingWindow) group(ew *edgeWin) {
	sw := cw.srcs[ew.e.Source]
	if sw == nil {
		sw = newSrcWin()
		cw.srcs[ew.e.Source] = sw
	}
	sw.add(ew)
	dw := cw.dsts[ew.e.Destination]
	if dw == nil {
		dw = &dstWin{}
		cw.dsts[ew.e.Destination] = dw
	}
	dw.edges = append(dw.edges, ew)
	dw.requests += ew.m.requests
	dw.c5xx += ew.m.c5xx
	dw.auth += ew.m.auth
	dw.outage += ew.m.outage
}

func newSrcWin() *srcWin {
	return &srcWin{ports: map[uint16]struct{}{}, paths: map[uint32]string{}}
}

// add sums ew into its source's window.
func (sw *srcWin) add(ew *edgeWin) {
	sw.edges = append(sw.edges, ew)
	sw.requests += ew.m.requests
	sw.fails += ew.m.c4xx + ew.m.c5xx + ew.m.failed
	sw.c5xx += ew.m.c5xx
	sw.auth += ew.m.auth
	if ew.st == nil {
		sw.newEdges++
	}
	for _, p := range ew.a.ports[:ew.a.nports] {
		sw.ports[p] = struct{}{}
	}
	for _, pc := range ew.a.paths {
		if len(sw.paths) < 4*maxPathsPerEdge {
			sw.paths[pathHash(pc.v)] = pc.v
		}
	}
}

// detect runs every family over the window, in the order that lets each
// claim what it explains: a source's scan before its edges (probes are
// not lateral movement), an edge's own surges before its destination's
// flood, and outages last, from the failures the surges explained away.
func (cw *closingWindow) detect() {
	s := cw.s
	for src, sw := range cw.srcs {
		node := s.node(s.sources, src, cw.ws)
		cw.scan(src, sw, node)
		cw.principalChange(src, sw, node)
	}
	for i := range cw.edges {
		cw.edge(&cw.edges[i])
	}
	for dep, dw := range cw.dsts {
		cw.destinationFlood(dep, dw)
	}
	cw.findings = s.outages(cw.findings, cw.dsts)
}

// edge runs the edge families: the strict-namespace rule on every edge,
// then lateral movement and the priors on new or young edges, and the
// statistical families on established ones.
func (cw *closingWindow) edge(ew *edgeWin) {
	s := cw.s
	src, dst := s.sources[ew.e.Source], s.dests[ew.e.Destination]
	dw := cw.dsts[ew.e.Destination]
	cw.strictPlaintext(ew)
	if ew.st == nil || ew.st.suspectUntil > cw.ws {
		if cw.scanning[ew.e.Source] {
			ew.silent = ew.st == nil // probed edges are not baseline
			return
		}
		if ew.m.requests == 0 {
			return
		}
		if cw.lateral(ew, src, dst) {
			return
		}
		cw.findings = s.youngEdge(cw.findings, ew, dw, src, dst, cw.ws, cw.learnMs, cw.thr)
		return
	}
	if cw.ws-ew.st.firstMs < cw.learnMs {
		cw.findings = s.youngEdge(cw.findings, ew, dw, src, dst, cw.ws, cw.learnMs, cw.thr)
		return
	}
	sc := cw.scoreEdge(ew, s.seasonalFactor(dst, cw.ws))
	ew.elevated = sc.score[models.FeatRequests] >= cw.thr
	cw.surge(ew, sc, dw, cw.dsts[ew.e.Source])
	cw.exfiltration(ew, sc)
	cw.downgrade(ew, sc)
	cw.unusualPath(ew, dst)
}

// edgeScores is an established edge's window scored feature by feature
// against its baselines, shared by the statistical families.
type edgeScores struct {
	factor        float64 // seasonal multiplier of the destination
	x, exp, score [edgeFeatures]float64
	model         [edgeFeatures]string
}

// scoreEdge scores every feature of ew; latency and plaintext do not
// follow the hour of the week.
func (cw *closingWindow) scoreEdge(ew *edgeWin, factor float64) *edgeScores {
	m := cw.s.det.model
	sc := &edgeScores{factor: factor, x: ew.m.features()}
	for f := 0; f < edgeFeatures; f++ {
		fac := factor
		if models.Feature(f) == models.FeatLatencyP95 || models.Feature(f) == models.FeatPlaintext {
			fac = 1
		}
		sc.exp[f], sc.score[f], sc.model[f] = m.Surprise(ew.st.base[f], sc.x[f], fac, models.Feature(f).IsCount())
	}
	return sc
}

// evidence lists features fs as scored.
func (sc *edgeScores) evidence(fs ...models.Feature) []models.FeatureEvidence {
	var ev []models.FeatureEvidence
	for _, f := range fs {
		ev = append(ev, models.FeatureEvidence{Feature: f.String(), Expected: round3(sc.exp[f]), Observed: sc.x[f], Score: round3(sc.score[f]), Model: sc.model[f]})
	}
	return ev
}

// raiseScored appends a finding on ew from the scored features fs (the
// first is the one that fired) and marks them fired, so that the attack
// is not learned as normal.
func (cw *closingWindow) raiseScored(ew *edgeWin, sc *edgeScores, kind models.DetectionKind, sev models.Severity, score float64, summary string, fs ...models.Feature) {
	f := cw.s.edgeFinding(kind, sev, score, ew, sc.evidence(fs...))
	f.evidence.Summary = summary
	cw.findings = append(cw.findings, f)
	for _, ft := range fs {
		ew.fired[ft] = true
	}
}
