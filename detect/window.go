package detect

import (
	"math/bits"

	"github.com/meshguard/meshguard/models"
)

// side counts one reporter's view of an edge in one window. Istio logs a
// request on both proxies; keeping the sides apart and taking the larger
// count of each feature at close counts every request once, whether one or
// both sides reported it, without remembering request ids.
type side struct {
	requests uint64
	c4xx     uint64
	auth     uint64 // 401 and 403
	c5xx     uint64
	failed   uint64 // no response: connection failures, resets, no route
	// outage counts the 5xx that say the destination was unavailable
	// (502, 503, 504, or an upstream-failure response flag): a retry
	// storm's answers, not failures a caller provoked.
	outage    uint64
	bytesOut  uint64 // request bytes
	bytesIn   uint64 // response bytes
	plaintext uint64 // requests with evidence of no mTLS
	mtls      uint64 // requests with evidence of mTLS; the rest are unknown
	// latency: a log2 histogram of milliseconds.
	latency [16]uint32
}

const (
	maxPathsPerEdge = 64
	maxPortsPerEdge = 8
	maxSamples      = 3
)

// edgeAcc is one edge's window. Paths, codes and samples exist for the
// evidence and for the distinct counts; they are bounded.
type edgeAcc struct {
	sides [2]side // 0: source reporter (and unknown), 1: destination reporter

	// Small linear sets: an edge sees a handful of each per window, and
	// interned strings compare by pointer, so a scan beats hashing.
	paths     []strCount // path template -> requests
	methods   []strCount
	codes     []codeCount
	ports     [maxPortsPerEdge]uint16
	nports    uint8
	principal string // the source principal seen, first of the window
	changed   bool   // the source presented more than one principal
	// conflicts counts the requests whose claimed identity the cluster
	// contradicts (models.Flow.IdentityConflict): evidence for the people
	// reading a detection, beside respond's own check of the claim.
	conflicts uint64

	// service, srcPrincipal and dstPrincipal are kept for evidence and
	// for the responder, which names policies by principal.
	service    string
	sampleReqs []string
	sampleTrcs []string
	// peeked: the requests counted when early firing last scored the
	// edge, so that only edges with new evidence are scored again.
	peeked uint64
}

func (a *edgeAcc) add(f *models.Flow) {
	s := &a.sides[0]
	if f.Reporter == models.ReporterDestination {
		s = &a.sides[1]
	}
	n := uint64(f.Count)
	s.requests += n
	switch c := f.ResponseCode; {
	case c == 401 || c == 403:
		s.auth += n
		s.c4xx += n
	case c >= 400 && c < 500:
		s.c4xx += n
	case c >= 500 && c < 600:
		s.c5xx += n
		if unavailable(c, f.ResponseFlags) {
			s.outage += n
		}
	case c == 0:
		s.failed += n
	}
	s.bytesOut += f.BytesReceived
	s.bytesIn += f.BytesSent
	switch f.TLS {
	case models.TLSPlaintext:
		s.plaintext += n
	case models.TLSMutual:
		s.mtls += n
	}
	if n > 0 {
		s.latency[latencyBucket(f.DurationMs)] += f.Count
	}
	if n == 0 {
		return // byte-only metric points carry no request attributes
	}
	if f.IdentityConflict {
		a.conflicts += n
	}
	if f.PathTemplate != "" {
		a.paths = addStr(a.paths, f.PathTemplate, f.Count, maxPathsPerEdge)
	}
	if f.Method != "" {
		a.methods = addStr(a.methods, f.Method, f.Count, 16)
	}
	a.codes = addCode(a.codes, f.ResponseCode, f.Count)
	if p := f.Destination.Port; p != 0 {
		found := false
		for _, q := range a.ports[:a.nports] {
			if q == p {
				found = true
				break
			}
		}
		if !found && int(a.nports) < maxPortsPerEdge {
			a.ports[a.nports] = p
			a.nports++
		}
	}
	if f.Source.Principal != "" {
		if a.principal == "" {
			a.principal = f.Source.Principal
		} else if a.principal != f.Source.Principal {
			a.changed = true
		}
	}
	if a.service == "" {
		a.service = f.Destination.Service
	}
	if len(a.sampleReqs) < maxSamples && f.RequestID != "" {
		a.sampleReqs = append(a.sampleReqs, f.RequestID)
	}
	if len(a.sampleTrcs) < maxSamples && !f.TraceID.IsEmpty() {
		a.sampleTrcs = append(a.sampleTrcs, f.TraceID.String())
	}
}

func latencyBucket(ms uint32) int {
	b := bits.Len32(ms)
	if b > 15 {
		b = 15
	}
	return b
}

// merged is an edge's window with both sides folded into one count per
// feature.
type merged struct {
	requests, c4xx, auth, c5xx, failed uint64
	outage                             uint64 // of c5xx: the destination unavailable
	bytesOut, bytesIn                  uint64
	plaintext, mtls                    uint64 // requests - both: TLS unknown
	latencyP95                         float64
}

// features returns m indexed by models.Feature, as the edge baselines are.
func (m merged) features() [edgeFeatures]float64 {
	return [edgeFeatures]float64{
		float64(m.requests), float64(m.c4xx), float64(m.auth), float64(m.c5xx),
		float64(m.bytesOut), float64(m.bytesIn), float64(m.plaintext), m.latencyP95,
	}
}

func (a *edgeAcc) merge() merged {
	s, d := &a.sides[0], &a.sides[1]
	m := merged{
		requests: max(s.requests, d.requests),
		c4xx:     max(s.c4xx, d.c4xx),
		auth:     max(s.auth, d.auth),
		c5xx:     max(s.c5xx, d.c5xx),
		failed:   max(s.failed, d.failed),
		outage:   max(s.outage, d.outage),
		bytesOut: max(s.bytesOut, d.bytesOut),
		bytesIn:  max(s.bytesIn, d.bytesIn),
	}
	// The destination proxy sees the client certificate; it is the
	// authority on TLS whenever its records said anything of it.
	tls := s
	if d.plaintext+d.mtls > 0 {
		tls = d
	}
	m.plaintext, m.mtls = tls.plaintext, tls.mtls
	h := s.latency
	if d.requests > s.requests {
		h = d.latency
	}
	m.latencyP95 = histQuantile(&h, 0.95)
	return m
}

// histQuantile returns the upper bound in ms of the bucket holding q.
func histQuantile(h *[16]uint32, q float64) float64 {
	var total uint64
	for _, c := range h {
		total += uint64(c)
	}
	if total == 0 {
		return 0
	}
	want := uint64(q*float64(total) + 0.5)
	var run uint64
	for i, c := range h {
		run += uint64(c)
		if run >= want {
			return float64(uint64(1)<<uint(i)) - 1
		}
	}
	return float64(uint64(1)<<15) - 1
}

// window is one tumbling window of one shard.
type window struct {
	start int64 // Unix ms
	edges map[models.Edge]*edgeAcc
}

func newWindow(start int64) *window {
	return &window{start: start, edges: make(map[models.Edge]*edgeAcc, 64)}
}

type strCount struct {
	v string
	n uint32
}

type codeCount struct {
	code uint16
	n    uint32
}

// addStr counts v in set; past limit distinct values, new ones are not
// kept (the counts of known ones still are).
func addStr(set []strCount, v string, n uint32, limit int) []strCount {
	for i := range set {
		if set[i].v == v {
			set[i].n += n
			return set
		}
	}
	if len(set) >= limit {
		return set
	}
	return append(set, strCount{v, n})
}

func addCode(set []codeCount, c uint16, n uint32) []codeCount {
	for i := range set {
		if set[i].code == c {
			set[i].n += n
			return set
		}
	}
	if len(set) >= 16 {
		return set
	}
	return append(set, codeCount{c, n})
}

func (a *edgeAcc) code(c uint16) uint32 {
	for _, x := range a.codes {
		if x.code == c {
			return x.n
		}
	}
	return 0
}
