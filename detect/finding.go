package detect

import (
	"cmp"
	"math"
	"slices"
	"strconv"

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
		agg.conflicts += ew.a.conflicts
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

// evidenceOf is the evidence of features feats on the window's traffic a.
// Requests whose claimed identity the cluster contradicts are listed as
// the feature identity_conflict: a stolen certificate or a spoofed
// header is part of what the detection saw, not a score of its own.
func evidenceOf(feats []models.FeatureEvidence, a *edgeAcc) models.Evidence {
	if a.conflicts > 0 {
		feats = append(slices.Clip(feats), models.FeatureEvidence{Feature: "identity_conflict", Observed: float64(a.conflicts), Model: "cluster"})
	}
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

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }
