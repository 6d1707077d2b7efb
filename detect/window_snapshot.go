package detect

import (
	"time"

	"github.com/meshguard/meshguard/models"
)

// A release (handoff.go) also carries the shard's open windows, with the
// position in Kafka they were counted to. The next owner takes them only
// when it starts reading at that same position (the old owner committed
// all it counted, as on a clean leave or shutdown): anywhere else it
// reads again records the windows already hold, and recounts them from
// there instead. It carries the ongoing detections, early raises and
// open incidents too, taken in either case: an attack going on across the
// hand-off updates the detection it raised rather than raising a new
// one, and the close of a window raised early confirms that raise.

type snapSide struct {
	Requests, C4xx, Auth, C5xx, Failed, Outage uint64
	BytesOut, BytesIn, Plaintext, MTLS         uint64
	Latency                                    [16]uint32
}

type snapStrCount struct {
	V string
	N uint32
}

type snapAcc struct {
	Edge       models.Edge
	Sides      [2]snapSide
	Paths      []snapStrCount
	Methods    []snapStrCount
	Codes      []uint16
	CodeCounts []uint32
	Ports      []uint16
	Principal  string
	Changed    bool
	Conflicts  uint64
	Service    string
	SampleReqs []string
	SampleTrcs []string
}

type snapWindow struct {
	Start int64
	Edges []snapAcc
}

type snapKey struct {
	Kind     models.DetectionKind
	Src, Dst models.EndpointID
}

func toSnapKey(k activeKey) snapKey { return snapKey{k.kind, k.src, k.dst} }

func (k snapKey) active() activeKey { return activeKey{k.Kind, k.Src, k.Dst} }

type snapActive struct {
	Key snapKey
	Det models.Detection
}

type snapEarly struct {
	Key        snapKey
	Start      int64
	Before     *models.Detection
	DetectedAt time.Time
}

type snapIncident struct {
	Source  models.EndpointID
	ID      string
	Head    snapKey
	LastEnd time.Time
	Parts   []snapKey
}

// encodeRelease is the stored form of a shard released at position.
func encodeRelease(sh *shard, position string) ([]byte, error) {
	snap := sh.snapshot()
	snap.Position, snap.Windows = position, sh.snapshotWindows()
	for k, d := range sh.active {
		snap.Active = append(snap.Active, snapActive{toSnapKey(k), *d})
	}
	for k, m := range sh.early {
		snap.Early = append(snap.Early, snapEarly{toSnapKey(k), m.start, m.before, m.detectedAt})
	}
	for src, inc := range sh.incidents {
		si := snapIncident{Source: src, ID: inc.id, Head: toSnapKey(inc.head), LastEnd: inc.lastEnd}
		for _, k := range inc.parts {
			si.Parts = append(si.Parts, toSnapKey(k))
		}
		snap.Incidents = append(snap.Incidents, si)
	}
	return encodeSnapshot(sh, snap)
}

// restoreOngoing takes a release's ongoing detections, early raises and
// incidents.
func (s *shard) restoreOngoing(in snapShard) {
	for _, a := range in.Active {
		d := a.Det
		s.active[a.Key.active()] = &d
	}
	for _, e := range in.Early {
		s.early[e.Key.active()] = earlyMark{start: e.Start, before: e.Before, detectedAt: e.DetectedAt}
	}
	for _, si := range in.Incidents {
		inc := &incident{id: si.ID, head: si.Head.active(), lastEnd: si.LastEnd}
		for _, k := range si.Parts {
			inc.parts = append(inc.parts, k.active())
		}
		s.incidents[si.Source] = inc
	}
}

func (s *shard) snapshotWindows() []snapWindow {
	out := make([]snapWindow, 0, len(s.windows))
	for _, w := range s.windows {
		sw := snapWindow{Start: w.start, Edges: make([]snapAcc, 0, len(w.edges))}
		for e, a := range w.edges {
			sw.Edges = append(sw.Edges, a.snapshot(e))
		}
		out = append(out, sw)
	}
	return out
}

func (s *shard) restoreWindows(in []snapWindow) {
	for _, sw := range in {
		w := newWindow(sw.Start)
		for i := range sw.Edges {
			w.edges[sw.Edges[i].Edge] = sw.Edges[i].restore()
		}
		s.windows[sw.Start] = w
	}
}

func (a *edgeAcc) snapshot(e models.Edge) snapAcc {
	out := snapAcc{Edge: e, Principal: a.principal, Changed: a.changed, Conflicts: a.conflicts, Service: a.service,
		SampleReqs: a.sampleReqs, SampleTrcs: a.sampleTrcs, Ports: a.ports[:a.nports]}
	for i, sd := range a.sides {
		out.Sides[i] = snapSide{sd.requests, sd.c4xx, sd.auth, sd.c5xx, sd.failed, sd.outage, sd.bytesOut, sd.bytesIn, sd.plaintext, sd.mtls, sd.latency}
	}
	for _, p := range a.paths {
		out.Paths = append(out.Paths, snapStrCount{p.v, p.n})
	}
	for _, m := range a.methods {
		out.Methods = append(out.Methods, snapStrCount{m.v, m.n})
	}
	for _, c := range a.codes {
		out.Codes = append(out.Codes, c.code)
		out.CodeCounts = append(out.CodeCounts, c.n)
	}
	return out
}

func (in *snapAcc) restore() *edgeAcc {
	a := &edgeAcc{principal: in.Principal, changed: in.Changed, conflicts: in.Conflicts, service: in.Service,
		sampleReqs: in.SampleReqs, sampleTrcs: in.SampleTrcs}
	for i, sd := range in.Sides {
		a.sides[i] = side{sd.Requests, sd.C4xx, sd.Auth, sd.C5xx, sd.Failed, sd.Outage, sd.BytesOut, sd.BytesIn, sd.Plaintext, sd.MTLS, sd.Latency}
	}
	a.nports = uint8(copy(a.ports[:], in.Ports))
	for _, p := range in.Paths {
		a.paths = append(a.paths, strCount{p.V, p.N})
	}
	for _, m := range in.Methods {
		a.methods = append(a.methods, strCount{m.V, m.N})
	}
	for i := range min(len(in.Codes), len(in.CodeCounts)) {
		a.codes = append(a.codes, codeCount{in.Codes[i], in.CodeCounts[i]})
	}
	return a
}
