package detect

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/meshguard/meshguard/models"
)

// Early firing (detect.early_firing). A live shard scores its open
// windows while they are still filling, at most once per earlyEvery of
// wall-clock time and only the edges with new records, and raises at once
// what is already beyond doubt:
//   - plaintext into a strict-mTLS namespace, seen by the destination's
//     proxy (the TLS authority, so later records cannot turn it into mTLS);
//   - plaintext, seen by the destination's proxy, on an established edge
//     that always used mTLS (a rule, not a score: the close raises it
//     from any plaintext request, so one already seen decides it);
//   - a first-seen edge from an established source, unless the source's
//     window so far looks like the start of a scan (a second new edge, or
//     failures on this one) or a running scan will absorb it;
//   - a credential stuffing, error surge, flood or exfiltration on an
//     established edge whose score is already EarlyFactor times the
//     threshold;
//   - a scan whose fan-out so far is already of high severity (three
//     times the destinations or paths a scan needs, with a scan's
//     failures): it only grows while the window fills, and the responder
//     quarantines a scanner at high, so waiting for the close would cost
//     a whole window. A smaller fan-out waits for the close.
//
// The detection raised early is the one the close raises: same key, same
// window, so the same deterministic id. When the window closes, the
// detection is put back to what it was before the early raise and the
// close's finding is applied to it as if there had been no early raise:
// the window counts once (Updates, score, evidence and the counters), and
// the stored detection's last version equals what a replay writes. The
// close's version reaches storage and alert as an update of the same
// detection_id: the detections table is a ReplacingMergeTree(version)
// with the write time as version, so the close's row replaces the early
// one, and the responder and Slack treat it as they treat any update of
// an ongoing detection. Only live windows fire early (their end within
// Window+AllowedLateness of the wall clock): a replay of history closes
// windows as before, and gives the same detections whatever its speed.
//
// What the close does not confirm (the source turned out to be scanning,
// the surge turned out to be another kind, or an older window's close
// raised the same key because the attack's first records arrived out of
// order) stays as raised early, beside what the closes raise, and is
// counted in Stats.EarlyUnconfirmed: only then do live and replay differ.

// earlyEvery bounds how often a shard's open window is scored.
const earlyEvery = time.Second

// earlyMark remembers a detection raised early from window start, and the
// detection as it was before (nil: the early raise created it).
type earlyMark struct {
	start      int64
	before     *models.Detection
	detectedAt time.Time
}

// fireEarly scores the shard's live open windows, oldest first, if it
// did not within earlyEvery. What an older open window could raise under
// the same key (its close comes first) is left to the closes.
func (s *shard) fireEarly(ctx context.Context, now time.Time) {
	d := s.det
	if now.Sub(s.lastEarly) < earlyEvery {
		return
	}
	s.lastEarly = now
	open := make([]*window, 0, len(s.windows))
	for _, w := range s.windows {
		open = append(open, w)
	}
	slices.SortFunc(open, func(a, b *window) int { return cmp.Compare(a.start, b.start) })
	for k, w := range open {
		if now.UnixMilli()-(w.start+d.windowMs) > (d.cfg.Window + d.cfg.AllowedLateness).Milliseconds() {
			continue // history, not live
		}
		cw := s.peek(w, open[:k])
		cw.earlyScans(open[:k])
		for i := range cw.edges {
			if !cw.scanning[cw.edges[i].e.Source] {
				cw.early(&cw.edges[i], open[:k])
			}
		}
		for _, f := range cw.findings {
			s.raise(ctx, w, f, true)
		}
	}
}

// peek builds a closingWindow of w's edges that changed since the last
// peek, without touching the shard's state: edge state is copied and
// caught up on the copy, and destinations are summed over every edge (an
// error surge is judged against the destination's 5xx). A source's new
// edges are counted over older as well as this window, for the scan
// guard of early.
func (s *shard) peek(w *window, older []*window) *closingWindow {
	d := s.det
	cw := &closingWindow{
		s: s, w: w, ws: w.start,
		learnMs:  d.cfg.LearningPeriod.Milliseconds(),
		thr:      d.cfg.Threshold,
		srcs:     map[models.EndpointID]*srcWin{},
		dsts:     map[models.EndpointID]*dstWin{},
		scanning: map[models.EndpointID]bool{},
	}
	for e, a := range w.edges {
		m := a.merge()
		dw := cw.dsts[e.Destination]
		if dw == nil {
			dw = &dstWin{}
			cw.dsts[e.Destination] = dw
		}
		dw.requests += m.requests
		dw.c5xx += m.c5xx
		dw.auth += m.auth
		dw.outage += m.outage
		st := s.peekState(e, cw.ws)
		sw := cw.srcs[e.Source]
		if sw == nil {
			sw = &srcWin{}
			cw.srcs[e.Source] = sw
		}
		if st == nil {
			sw.newEdges++
		}
		n := a.sides[0].requests + a.sides[1].requests
		if n == a.peeked {
			continue
		}
		a.peeked = n
		cw.edges = append(cw.edges, edgeWin{e: e, a: a, m: m, st: st})
	}
	for _, o := range older {
		for e := range o.edges {
			if _, here := w.edges[e]; !here && s.edges[e] == nil && s.det.warm[e] == nil {
				if sw := cw.srcs[e.Source]; sw != nil {
					sw.newEdges++
				}
			}
		}
	}
	return cw
}

// earlyScans raises the scans of window w that are of high severity
// already. It groups every edge of a source whose fan-out could reach
// that size (peek keeps only the edges that changed), judges it as the
// close would, and keeps only a high finding no older open window may
// raise first. A source found scanning is marked, so that its probes are
// not judged as lateral movement.
func (cw *closingWindow) earlyScans(older []*window) {
	s := cw.s
	type fan struct{ edges, paths int }
	fans := map[models.EndpointID]*fan{}
	for e, a := range cw.w.edges {
		f := fans[e.Source]
		if f == nil {
			f = &fan{}
			fans[e.Source] = f
		}
		f.edges++
		f.paths += len(a.paths) // an upper bound of the distinct paths
	}
	for src, f := range fans {
		if f.edges < scanHighDests && f.paths < scanHighPaths {
			continue
		}
		if s.olderMayScan(older, src) {
			continue
		}
		sw := newSrcWin()
		for e, a := range cw.w.edges {
			if e.Source == src {
				sw.add(&edgeWin{e: e, a: a, m: a.merge(), st: s.peekState(e, cw.ws)})
			}
		}
		node := s.sources[src]
		if node == nil {
			node = &nodeState{firstMs: cw.ws} // no profile yet: judged by the rule
		}
		n := len(cw.findings)
		cw.scan(src, sw, node)
		kept := cw.findings[:n]
		for _, fd := range cw.findings[n:] {
			if fd.severity >= models.SeverityHigh {
				kept = append(kept, fd)
			}
		}
		cw.findings = kept
	}
}

// olderMayScan reports whether an older open window holds calls of src:
// its close comes first, and may raise the scan, or lateral movement on
// a probe that a scan raised early would absorb where a replay would
// not.
func (s *shard) olderMayScan(older []*window, src models.EndpointID) bool {
	for _, w := range older {
		for e := range w.edges {
			if e.Source == src {
				return true
			}
		}
	}
	return false
}

// olderMayRaise reports whether an older open window holds enough of
// edge e to raise kind on it when it closes: then the early raise would
// be under the key that close updates, and waits.
func (s *shard) olderMayRaise(older []*window, kind models.DetectionKind, e models.Edge) bool {
	for _, w := range older {
		a := w.edges[e]
		if a == nil {
			continue
		}
		m := a.merge()
		may := true // lateral movement, and what early never raises
		switch kind {
		case models.MTLSDowngrade:
			src := s.sources[e.Source]
			may = m.plaintext > 0 || a.changed || (a.principal != "" && src != nil && a.principal != src.principal)
		case models.CredentialStuffing:
			may = m.auth >= authMinCount
		case models.ErrorSurge:
			may = m.c5xx >= errorMinCount
		case models.RequestFlood:
			may = m.requests >= floodMinExtra
		case models.Exfiltration:
			may = m.bytesIn >= exfilMinBytes
		}
		if may {
			return true
		}
	}
	return false
}

// peekState is a copy of what the shard knows of e, caught up to ws; nil
// for a new edge.
func (s *shard) peekState(e models.Edge, ws int64) *edgeState {
	st := s.edges[e]
	if st == nil {
		st = s.det.warm[e]
	}
	if st == nil {
		return nil
	}
	c := *st
	if gap := (ws-c.lastMs)/s.det.windowMs - 1; gap > 0 {
		for f := range c.base {
			s.det.model.catchUp(&c.base[f], gap)
		}
	}
	return &c
}

// early runs the families that can fire early on one changed edge and
// keeps what is beyond doubt and no older open window may raise.
func (cw *closingWindow) early(ew *edgeWin, older []*window) {
	n := len(cw.findings)
	cw.earlyFamilies(ew)
	kept := cw.findings[:n]
	for _, f := range cw.findings[n:] {
		if !cw.s.olderMayRaise(older, f.kind, ew.e) {
			kept = append(kept, f)
		}
	}
	cw.findings = kept
}

func (cw *closingWindow) earlyFamilies(ew *edgeWin) {
	s := cw.s
	if ew.a.sides[1].plaintext > 0 {
		cw.strictPlaintext(ew)
	}
	src, dst := s.sources[ew.e.Source], s.dests[ew.e.Destination]
	if ew.st == nil {
		sw := cw.srcs[ew.e.Source]
		if ew.m.requests == 0 || sw.newEdges > 1 || ew.m.c4xx+ew.m.c5xx+ew.m.failed > 0 {
			return
		}
		cw.lateral(ew, src, dst)
		return
	}
	if ew.st.suspectUntil > cw.ws || cw.ws-ew.st.firstMs < cw.learnMs {
		return
	}
	n := len(cw.findings)
	sc := cw.scoreEdge(ew, s.seasonalFactor(dst, cw.ws))
	cw.surge(ew, sc, cw.dsts[ew.e.Destination], cw.dsts[ew.e.Source])
	cw.exfiltration(ew, sc)
	kept := cw.findings[:n]
	for _, f := range cw.findings[n:] {
		if f.score >= s.det.cfg.EarlyFactor*cw.thr {
			kept = append(kept, f)
		}
	}
	cw.findings = kept
	if ew.a.sides[1].plaintext > 0 {
		cw.downgrade(ew, sc)
	}
}

// settleEarly ends the early marks of window start once it has closed:
// what the close did not raise again stays as raised early.
func (s *shard) settleEarly(start int64) {
	for k, m := range s.early {
		if m.start == start {
			delete(s.early, k)
			s.det.stats.earlyUnconfirmed.Add(1)
		}
	}
}
