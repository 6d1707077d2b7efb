package detect

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/meshguard/meshguard/models"
)

// finding is one detector's verdict on one window, before it becomes (or
// updates) a Detection.
type finding struct {
	kind        models.DetectionKind
	severity    models.Severity
	score       float64
	src, dst    models.EndpointID
	source      models.Party
	destination models.Party
	evidence    models.Evidence
}

// edgeWin is one edge of the window being closed.
type edgeWin struct {
	e      models.Edge
	a      *edgeAcc
	m      merged
	st     *edgeState // nil: the edge was never seen before
	fired  [edgeFeatures]bool
	silent bool // a rule claimed the edge: learn nothing from it
}

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

// Minimum effect sizes: a statistically certain change that is too small
// to matter is not worth a human's attention.
const (
	floodMinExtra = 20 // requests per window above expected
	// floodRatio: bursts of ordinary clients reach 3 to 4 times an edge's
	// level for a window or two; floods are an order of magnitude.
	floodRatio = 5
	// peakRatio: a flood is also twice the edge's usual peak, so that a
	// batch job's scheduled burst is not one.
	peakRatio         = 2
	authMinCount      = 20
	errorMinCount     = 10
	exfilMinBytes     = 512 << 10
	scanMinDests      = 8
	scanMinPaths      = 20
	scanMinPorts      = 5
	scanMinFailRatio  = 0.3
	newEdgesForScan   = 5
	destFloodMinExtra = 50
	rareSeverityScore = 10 // the score given to rule-based findings
)

func (s *shard) close(ctx context.Context, w *window) {
	s.closing = w
	defer func() { s.closing = nil }()
	d := s.det
	d.stats.windows.Add(1)
	ws := w.start
	learnMs := d.cfg.LearningPeriod.Milliseconds()
	m := d.model
	thr := d.cfg.Threshold

	edges := make([]edgeWin, 0, len(w.edges))
	for e, a := range w.edges {
		st := s.edges[e]
		if st == nil {
			if w := s.det.warm[e]; w != nil {
				c := *w
				c.paths = slices.Clone(w.paths)
				st = &c
				s.edges[e] = st
			}
		}
		ew := edgeWin{e: e, a: a, m: a.merge(), st: st}
		if ew.st != nil {
			if gap := (ws-ew.st.lastMs)/d.windowMs - 1; gap > 0 {
				for f := range ew.st.base {
					m.catchUp(&ew.st.base[f], gap)
				}
			}
		}
		edges = append(edges, ew)
	}
	// Group by source and destination.
	srcs := map[models.EndpointID]*srcWin{}
	dsts := map[models.EndpointID]*dstWin{}
	for i := range edges {
		ew := &edges[i]
		sw := srcs[ew.e.Source]
		if sw == nil {
			sw = &srcWin{ports: map[uint16]struct{}{}, paths: map[uint32]string{}}
			srcs[ew.e.Source] = sw
		}
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
		dw := dsts[ew.e.Destination]
		if dw == nil {
			dw = &dstWin{}
			dsts[ew.e.Destination] = dw
		}
		dw.edges = append(dw.edges, ew)
		dw.requests += ew.m.requests
		dw.c5xx += ew.m.c5xx
		dw.auth += ew.m.auth
		dw.outage += ew.m.outage
	}
	for ep := range dsts {
		s.node(s.dests, ep, ws)
	}

	var findings []finding
	scanning := map[models.EndpointID]bool{}

	// Sources: scans and principal changes.
	for src, sw := range srcs {
		node := s.node(s.sources, src, ws)
		established := ws-node.firstMs >= learnMs
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
			if score >= thr && ft.x >= 2*exp+ft.min/2 {
				ev = append(ev, models.FeatureEvidence{Feature: ft.f.String(), Expected: exp, Observed: ft.x, Score: score, Model: model})
				best = max(best, score)
			}
		}
		if len(ev) == 0 && established && sw.newEdges >= newEdgesForScan {
			ev = append(ev, models.FeatureEvidence{Feature: "new_destinations", Expected: 0, Observed: float64(sw.newEdges), Score: rareSeverityScore, Model: "new"})
			best = rareSeverityScore
		}
		if len(ev) > 0 && failRatio >= scanMinFailRatio {
			ev = append(ev, models.FeatureEvidence{Feature: "failure_ratio", Observed: round3(failRatio), Model: "rule"})
			sev := models.SeverityMedium
			if len(sw.edges) >= 3*scanMinDests || len(sw.paths) >= 3*scanMinPaths {
				sev = models.SeverityHigh
			}
			scanning[src] = true
			f := s.sourceFinding(models.Scan, sev, best, src, sw, ev)
			f.evidence.Summary = fmt.Sprintf("%s probed %d destinations, %d ports and %d paths; %.0f%% failed",
				src, len(sw.edges), len(sw.ports), len(sw.paths), 100*failRatio)
			findings = append(findings, f)
		}
		// A known workload presenting another identity: stolen credentials
		// or a compromised image with a mounted token of another account.
		if src.Kind == models.KindWorkload && established && node.principal != "" {
			for _, ew := range sw.edges {
				if p := ew.a.principal; p != "" && (p != node.principal || ew.a.changed) {
					f := s.edgeFinding(models.MTLSDowngrade, models.SeverityHigh, rareSeverityScore, ew, []models.FeatureEvidence{{
						Feature: "principal", Observed: 1, Score: rareSeverityScore, Model: "rule"}})
					f.evidence.Summary = fmt.Sprintf("%s presented principal %s instead of %s", src, p, node.principal)
					findings = append(findings, f)
					ew.silent = true
					break
				}
			}
		}
	}

	// Edges.
	for i := range edges {
		ew := &edges[i]
		src, dst := s.sources[ew.e.Source], s.dests[ew.e.Destination]
		if ew.m.plaintext > 0 && d.strict[ew.e.Destination.Namespace] {
			f := s.edgeFinding(models.MTLSDowngrade, models.SeverityCritical, rareSeverityScore, ew, []models.FeatureEvidence{{
				Feature: "plaintext", Expected: 0, Observed: float64(ew.m.plaintext), Score: rareSeverityScore, Model: "rule"}})
			f.evidence.Summary = fmt.Sprintf("%d plaintext requests into strict-mTLS namespace %s%s", ew.m.plaintext, ew.e.Destination.Namespace, tlsKnown(ew.m))
			findings = append(findings, f)
			ew.fired[models.FeatPlaintext] = true
		}
		if ew.st == nil || ew.st.suspectUntil > ws {
			if scanning[ew.e.Source] {
				ew.silent = ew.st == nil // probed edges are not baseline
				continue
			}
			if ew.m.requests == 0 {
				continue
			}
			if f, ok := s.lateral(ew, src, dst, ws, learnMs); ok {
				findings = append(findings, f)
				ew.silent = true
				continue
			}
			findings = s.youngEdge(findings, ew, dsts[ew.e.Destination], src, dst, ws, learnMs, thr)
			continue
		}
		if ws-ew.st.firstMs < learnMs {
			findings = s.youngEdge(findings, ew, dsts[ew.e.Destination], src, dst, ws, learnMs, thr)
			continue
		}
		factor := s.seasonalFactor(dst, ws)
		findings = s.edgeStats(findings, ew, dsts[ew.e.Destination], dsts[ew.e.Source], dst, factor, thr)
	}

	// Destinations: floods into a service from many edges at once.
	for dep, dw := range dsts {
		node := s.node(s.dests, dep, ws)
		if ws-node.firstMs < learnMs {
			continue
		}
		factor := s.seasonalFactor(node, ws)
		exp, score, model := m.Surprise(node.base[models.FeatRequests], float64(dw.requests), factor, true)
		if score < thr || float64(dw.requests) < floodRatio*exp+destFloodMinExtra || s.shifted(models.EndpointID{}, dep, factor) {
			continue
		}
		top := dw.edges[0]
		for _, ew := range dw.edges[1:] {
			if ew.m.requests > top.m.requests {
				top = ew
			}
		}
		if top.fired[models.FeatRequests] || top.silent {
			continue // the edge already explains it
		}
		// A caller sending what it usually sends at its peaks (a batch job
		// on its schedule) explains the surge: it is not a flood.
		if top.st != nil && ws-top.st.firstMs >= learnMs {
			texp, sc, _ := m.Surprise(top.st.base[models.FeatRequests], float64(top.m.requests), factor, true)
			if sc < thr || float64(top.m.requests) < peakRatio*float64(top.st.peak) {
				continue
			}
			// Nor is load the top caller passes on from its own callers.
			if s.inboundExplains(top.e.Source, float64(top.m.requests)/math.Max(texp, 1), dsts[top.e.Source]) {
				continue
			}
		}
		f := s.edgeFinding(models.RequestFlood, floodSeverity(float64(dw.requests), exp), score, top, []models.FeatureEvidence{{
			Feature: "requests_into_destination", Expected: round3(exp), Observed: float64(dw.requests), Score: round3(score), Model: model}})
		f.evidence.Summary = fmt.Sprintf("%d requests into %s in %s, %.0f expected; top caller %s (%d)",
			dw.requests, dep, d.cfg.Window, exp, top.e.Source, top.m.requests)
		findings = append(findings, f)
		for _, ew := range dw.edges {
			ew.fired[models.FeatRequests] = true
		}
		dw.flooded = true
	}

	findings = s.outages(findings, dsts)
	for _, f := range findings {
		s.raise(ctx, w, f)
	}
	s.learn(ws, edges, srcs, dsts, scanning)
	s.expireActive(ws)
}

// edgeStats runs the statistical edge detectors on an established edge.
func (s *shard) edgeStats(out []finding, ew *edgeWin, dw, srcIn *dstWin, dst *nodeState, factor, thr float64) []finding {
	m := s.det.model
	st := ew.st
	x := ew.m.features()
	var exp, score [edgeFeatures]float64
	var model [edgeFeatures]string
	for f := 0; f < edgeFeatures; f++ {
		fac := factor
		if models.Feature(f) == models.FeatLatencyP95 || models.Feature(f) == models.FeatPlaintext {
			fac = 1
		}
		exp[f], score[f], model[f] = m.Surprise(st.base[f], x[f], fac, models.Feature(f).IsCount())
	}
	fe := func(fs ...models.Feature) []models.FeatureEvidence {
		var ev []models.FeatureEvidence
		for _, f := range fs {
			ev = append(ev, models.FeatureEvidence{Feature: f.String(), Expected: round3(exp[f]), Observed: x[f], Score: round3(score[f]), Model: model[f]})
		}
		return ev
	}
	add := func(kind models.DetectionKind, sev models.Severity, sc float64, summary string, fs ...models.Feature) {
		f := s.edgeFinding(kind, sev, sc, ew, fe(fs...))
		f.evidence.Summary = summary
		out = append(out, f)
		for _, ft := range fs {
			ew.fired[ft] = true
		}
	}
	e := ew.e
	r, a, c := models.FeatRequests, models.FeatAuthFail, models.Feat5xx
	flood := score[r] >= thr && x[r] >= math.Max(floodRatio*exp[r], peakRatio*float64(st.peak))+floodMinExtra &&
		!s.inboundExplains(e.Source, x[r]/math.Max(exp[r], 1), srcIn) && !s.shifted(e.Source, e.Destination, factor)
	authSurge := score[a] >= thr && x[a] >= authMinCount && x[a] >= 5*exp[a]+10
	// An error surge is caused by this source only if it carries most of
	// the destination's errors, and they are not the destination saying
	// it is unavailable (a retry storm): a destination failing for
	// everyone is an outage, not an attack.
	errSurge := score[c] >= thr && x[c] >= errorMinCount && x[c] >= 4*exp[c]+5
	if errSurge && (retryStorm(ew.m) || (dw != nil && float64(ew.m.c5xx) < 0.6*float64(dw.c5xx))) {
		errSurge = false
		ew.fired[c] = true // an outage must not become the edge's normal
		dw.noteFailing(e.Source, x[c]-exp[c], score[c])
	}
	// One attack, one detection: when requests and failures surge
	// together, the failures are the attack if they are most of the extra
	// requests (stuffing answered 401, a client breaking a service), else
	// they are the flood's side effect.
	extra := x[r] - exp[r]
	if authSurge && (!flood || x[a]-exp[a] >= 0.5*extra) {
		add(models.CredentialStuffing, models.SeverityHigh, score[a],
			fmt.Sprintf("%s got %.0f 401/403 responses from %s in one window, %.1f expected", e.Source, x[a], e.Destination, exp[a]), a, r)
	} else if errSurge && (!flood || x[c]-exp[c] >= 0.5*extra) {
		add(models.ErrorSurge, models.SeverityMedium, score[c],
			fmt.Sprintf("%s caused %.0f 5xx responses from %s in one window, %.1f expected", e.Source, x[c], e.Destination, exp[c]), c, r)
	} else if flood {
		add(models.RequestFlood, floodSeverity(x[r], exp[r]), score[r],
			fmt.Sprintf("%s sent %.0f requests to %s in one window, %.1f expected", e.Source, x[r], e.Destination, exp[r]), r, a, c)
	}
	// Exfiltration is bytes the request count does not explain: more
	// requests of the usual size are a flood, not a leak.
	perReq := float64(st.base[models.FeatBytesIn].Level) / math.Max(float64(st.base[models.FeatRequests].Level), 1e-3)
	if b := models.FeatBytesIn; score[b] >= thr && x[b] >= 5*exp[b] && x[b]-exp[b] >= exfilMinBytes &&
		x[b] >= 5*perReq*math.Max(x[models.FeatRequests], 1) {
		sev := models.SeverityHigh
		if x[b] >= 50*exp[b] && x[b] >= 64<<20 {
			sev = models.SeverityCritical
		}
		add(models.Exfiltration, sev, score[b],
			fmt.Sprintf("%s received %s from %s in one window, %s expected", e.Source, humanBytes(x[b]), e.Destination, humanBytes(exp[b])), b, models.FeatRequests)
	}
	if p := models.FeatPlaintext; !ew.fired[p] && x[p] > 0 && st.mtlsSeen && st.base[p].Level < 0.01 && st.base[models.FeatRequests].Level > 0 {
		f := s.edgeFinding(models.MTLSDowngrade, models.SeverityHigh, rareSeverityScore, ew, []models.FeatureEvidence{{
			Feature: p.String(), Expected: round3(exp[p]), Observed: x[p], Score: rareSeverityScore, Model: "rule"}})
		f.evidence.Summary = fmt.Sprintf("%.0f plaintext requests from %s to %s, which always used mTLS%s", x[p], e.Source, e.Destination, tlsKnown(ew.m))
		out = append(out, f)
		ew.fired[p] = true
	}
	// Paths and methods never seen on the edge nor served by the
	// destination to anyone.
	var odd []models.FeatureEvidence
	sev := models.SeverityMedium
	for _, pc := range ew.a.paths {
		p, n := pc.v, pc.n
		h := pathHash(p)
		if st.knowsPath(h) {
			continue
		}
		if _, ok := dst.paths[h]; ok {
			continue
		}
		sensitive := sensitivePath(p)
		if !sensitive {
			continue
		}
		odd = append(odd, models.FeatureEvidence{Feature: "path " + p, Expected: 0, Observed: float64(n), Score: rareSeverityScore, Model: "new"})
		if ew.a.code(200) > 0 {
			sev = models.SeverityHigh
		}
	}
	for _, mc := range ew.a.methods {
		meth, n := mc.v, mc.n
		if b := methodBit(meth); st.methods&b == 0 && b&(methodBits["GET"]|methodBits["HEAD"]) == 0 {
			odd = append(odd, models.FeatureEvidence{Feature: "method " + meth, Expected: 0, Observed: float64(n), Score: rareSeverityScore, Model: "new"})
		}
	}
	if len(odd) > 0 {
		// Paths first ("path " sorts after "method "), most requested first.
		slices.SortFunc(odd, func(a, b models.FeatureEvidence) int {
			if pa, pb := strings.HasPrefix(a.Feature, "path "), strings.HasPrefix(b.Feature, "path "); pa != pb {
				if pa {
					return -1
				}
				return 1
			}
			if a.Observed != b.Observed {
				return cmp.Compare(b.Observed, a.Observed)
			}
			return cmp.Compare(a.Feature, b.Feature)
		})
		names := make([]string, 0, 3)
		for _, o := range odd[:min(3, len(odd))] {
			names = append(names, o.Feature)
		}
		f := s.edgeFinding(models.UnusualPath, sev, rareSeverityScore, ew, odd)
		f.evidence.Summary = fmt.Sprintf("%s called %d never-seen paths or methods on %s: %s", e.Source, len(odd), e.Destination, strings.Join(names, ", "))
		out = append(out, f)
		ew.silent = true
	}
	return out
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
func (s *shard) shifted(src, dst models.EndpointID, factor float64) bool {
	if dst.Kind != models.KindWorkload || s.closing == nil {
		return false
	}
	group := peerGroup(dst)
	var observed, expected float64
	for e, a := range s.closing.edges {
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

// lateral decides whether a never-seen edge is lateral movement: the
// source has a profile, the destination is not new, and no peer of the
// source (another version or canary of the same app) calls it.
func (s *shard) lateral(ew *edgeWin, src, dst *nodeState, ws, learnMs int64) (finding, bool) {
	if ew.st != nil && ew.st.suspectUntil > ws {
		// Still the same attack: keep the detection up to date.
	} else {
		// Only an established source has a profile to depart from; a new
		// workload (a new version, a new job) calling anything is a deploy.
		// A workload known for the learning period only as a destination
		// (a leaf) is established: its profile is "calls nothing". The
		// destination need not be known to this shard: shards follow
		// Kafka partitions, which follow sources.
		if ew.e.Source.Kind != models.KindWorkload || src == nil || ws-s.knownSince(ew.e.Source, src.firstMs) < learnMs {
			return finding{}, false
		}
		// A service coming online is called for the first time by
		// everyone who will call it.
		if s.newService(ew.e.Destination, ws, learnMs) {
			return finding{}, false
		}
		if dst != nil {
			if _, ok := dst.callers[peerGroup(ew.e.Source)]; ok {
				return finding{}, false
			}
		}
		// Calling another version of an app it already calls (a canary,
		// a rollout), or the service in front of a workload it calls, is
		// not movement.
		if _, ok := src.calls[peerGroup(ew.e.Destination)]; ok {
			return finding{}, false
		}
	}
	f := s.edgeFinding(models.LateralMovement, models.SeverityHigh, rareSeverityScore, ew, []models.FeatureEvidence{{
		Feature: "new_edge_requests", Expected: 0, Observed: float64(ew.m.requests), Score: rareSeverityScore, Model: "new"}})
	f.evidence.Summary = fmt.Sprintf("%s called %s for the first time; none of its peers ever did", ew.e.Source, ew.e.Destination)
	return f, true
}

// learn folds the window into the baselines, except what raised a
// detection: an attack must not become normal.
func (s *shard) learn(ws int64, edges []edgeWin, srcs map[models.EndpointID]*srcWin, dsts map[models.EndpointID]*dstWin, scanning map[models.EndpointID]bool) {
	m := s.det.model
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
		if !ew.fired[models.FeatRequests] {
			st.learnPeak(x[models.FeatRequests], max(1, (ws-st.lastMs)/s.det.windowMs))
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
	for ep, sw := range srcs {
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
	for ep, dw := range dsts {
		node := s.dests[ep]
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

// tlsKnown says how much of a window's traffic carried TLS evidence, so
// that a reader of a downgrade sees what it rests on.
func tlsKnown(m merged) string {
	if unknown := m.requests - min(m.requests, m.plaintext+m.mtls); unknown > 0 {
		return fmt.Sprintf(" (%d with mTLS, %d with no TLS evidence)", m.mtls, unknown)
	}
	return ""
}

// maxDetectionScore caps a detection's score where the count tails stop (p 1e-300):
// beyond, every score means "impossible under the baseline".
const maxDetectionScore = 300

func (s *shard) edgeFinding(kind models.DetectionKind, sev models.Severity, score float64, ew *edgeWin, feats []models.FeatureEvidence) finding {
	src := s.sources[ew.e.Source]
	principal := ew.a.principal
	if principal == "" && src != nil && ew.m.plaintext == 0 {
		principal = src.principal
	}
	return finding{
		kind: kind, severity: sev, score: round3(math.Min(score, maxDetectionScore)),
		src: ew.e.Source, dst: ew.e.Destination,
		source:      party(ew.e.Source, principal, ""),
		destination: party(ew.e.Destination, "", ew.a.service),
		evidence:    evidenceOf(feats, ew.a),
	}
}

func (s *shard) sourceFinding(kind models.DetectionKind, sev models.Severity, score float64, src models.EndpointID, sw *srcWin, feats []models.FeatureEvidence) finding {
	principal := ""
	for _, ew := range sw.edges {
		if ew.a.principal != "" {
			principal = ew.a.principal
			break
		}
	}
	// A fan-out has no single destination: name the namespace hit most.
	byNS := map[string]uint64{}
	var agg edgeAcc
	dests := make([]string, 0, len(sw.edges))
	for _, ew := range sw.edges {
		byNS[ew.e.Destination.Namespace] += ew.m.requests
		if len(dests) < maxDestinationsListed {
			dests = append(dests, ew.e.Destination.String())
		}
		for _, pc := range ew.a.paths {
			agg.paths = addStr(agg.paths, pc.v, pc.n, 4*maxPathsPerEdge)
		}
		for _, cc := range ew.a.codes {
			agg.codes = addCode(agg.codes, cc.code, cc.n)
		}
		for _, r := range ew.a.sampleReqs {
			if len(agg.sampleReqs) < maxSamples {
				agg.sampleReqs = append(agg.sampleReqs, r)
			}
		}
		for _, t := range ew.a.sampleTrcs {
			if len(agg.sampleTrcs) < maxSamples {
				agg.sampleTrcs = append(agg.sampleTrcs, t)
			}
		}
	}
	ns, best := "", uint64(0)
	for k, v := range byNS {
		if v > best || (v == best && k < ns) {
			ns, best = k, v
		}
	}
	slices.Sort(dests)
	ev := evidenceOf(feats, &agg)
	ev.Destinations = dests
	return finding{
		kind: kind, severity: sev, score: round3(math.Min(score, maxDetectionScore)),
		src: src, dst: models.EndpointID{Namespace: ns},
		source:      party(src, principal, ""),
		destination: models.Party{Namespace: ns},
		evidence:    ev,
	}
}

func party(ep models.EndpointID, principal, service string) models.Party {
	p := models.Party{Principal: principal, Namespace: ep.Namespace, Service: service}
	switch ep.Kind {
	case models.KindWorkload:
		p.Workload = ep.Name
	case models.KindService:
		if p.Service == "" {
			p.Service = ep.Name + "." + ep.Namespace + ".svc.cluster.local"
		}
	case models.KindIP:
		p.IP = ep.IP.String()
	}
	return p
}

func evidenceOf(feats []models.FeatureEvidence, a *edgeAcc) models.Evidence {
	ev := models.Evidence{Features: feats}
	for _, pc := range a.paths {
		ev.TopPaths = append(ev.TopPaths, models.Count{Value: pc.v, Count: uint64(pc.n)})
	}
	sortCounts(ev.TopPaths)
	if len(ev.TopPaths) > 5 {
		ev.TopPaths = ev.TopPaths[:5]
	}
	for _, cc := range a.codes {
		ev.TopCodes = append(ev.TopCodes, models.Count{Value: strconv.Itoa(int(cc.code)), Count: uint64(cc.n)})
	}
	sortCounts(ev.TopCodes)
	if len(ev.TopCodes) > 5 {
		ev.TopCodes = ev.TopCodes[:5]
	}
	ev.SampleRequestIDs = slices.Clone(a.sampleReqs)
	ev.SampleTraceIDs = slices.Clone(a.sampleTrcs)
	return ev
}

func sortCounts(c []models.Count) {
	slices.SortFunc(c, func(a, b models.Count) int {
		if a.Count != b.Count {
			return cmp.Compare(b.Count, a.Count)
		}
		return cmp.Compare(a.Value, b.Value)
	})
}

func floodSeverity(x, exp float64) models.Severity {
	switch {
	case x >= 20*exp+200:
		return models.SeverityHigh
	default:
		return models.SeverityMedium
	}
}

// sensitivePath recognises what attackers look for and services rarely
// serve to their ordinary callers.
func sensitivePath(p string) bool {
	l := strings.ToLower(p)
	for _, seg := range strings.Split(l, "/") {
		if len(seg) > 1 && seg[0] == '.' && seg != ".." && seg != ".well-known" {
			return true // dotfiles: .env, .git, .aws, .ssh
		}
	}
	for _, s := range sensitiveFragments {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

var sensitiveFragments = []string{
	"admin", "/debug", "pprof", "actuator", "/console", "phpmyadmin", "wp-login", "wp-admin",
	"/config", "/backup", "/dump", "/shell", "/exec", "/cgi-bin", "/server-status", "/manager",
	"/jmx", "/heapdump", "/env", "/etc/passwd", "/proc/", "/swagger", "/graphql", "/internal",
	"/secrets", "/credentials", "/token", "/.", "..",
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

func humanBytes(b float64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", b/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}
