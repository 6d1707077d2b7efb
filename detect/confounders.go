package detect

import (
	"cmp"
	"fmt"
	"math"
	"strings"

	"github.com/meshguard/meshguard/models"
)

// Benign confounders: traffic that looks like an attack to a per-edge
// statistic but is explained by the mesh itself. Each rule here says what
// evidence explains the anomaly, so that the detectors in rules.go stay
// about attacks.

// unavailable reports whether a 5xx answer says the destination could not
// serve (its own outage) rather than that a request broke it: 502, 503
// and 504 are the gateway and unavailability codes (RFC 9110 15.6), and
// Envoy's response flags name upstream failures: UH no healthy upstream,
// UF connection failure, UO overflow (circuit breaking), URX retry limit
// exceeded, UC upstream connection termination, UR upstream remote reset,
// UT upstream timeout, LH local health check failed, OM overload manager.
// A caller retrying such answers is a retry storm, not an error surge.
func unavailable(code uint16, flags string) bool {
	if code == 502 || code == 503 || code == 504 {
		return true
	}
	if flags == "" || flags == "-" {
		return false
	}
	for f := range strings.SplitSeq(flags, ",") {
		switch strings.TrimSpace(f) {
		case "UH", "UF", "UO", "URX", "UC", "UR", "UT", "LH", "OM":
			return true
		}
	}
	return false
}

// retryStorm reports whether most of an edge's 5xx are the destination
// being unavailable: what the caller's proxy retried (URX, UF, UO) and
// the destination's own outage answers (503), which the caller did not
// cause.
func retryStorm(m merged) bool {
	return m.c5xx > 0 && 2*m.outage >= m.c5xx
}

// outageMinCallers is how many callers must see a destination fail in
// one window for the failure to be the destination's outage.
const outageMinCallers = 2

// noteFailing records on the destination's window that one caller's
// error surge was explained away (a retry storm, or the caller carrying
// a minority of the destination's errors), for outages.
func (dw *dstWin) noteFailing(src models.EndpointID, extra, score float64) {
	if dw == nil {
		return
	}
	dw.failing = append(dw.failing, src)
	dw.extra5xx += extra
	dw.outageScore = max(dw.outageScore, score)
}

// outages raises one low-severity reliability event per destination that
// failed for at least outageMinCallers callers at once: a destination
// outage is something to know about, and nothing to block (no default
// action of respond names destination_outage, so it alerts only).
func (s *shard) outages(out []finding, dsts map[models.EndpointID]*dstWin) []finding {
	for dep, dw := range dsts {
		if len(dw.failing) < outageMinCallers {
			continue
		}
		callers := make([]string, 0, len(dw.failing))
		for _, c := range dw.failing {
			callers = append(callers, c.String())
		}
		var agg edgeAcc
		service := ""
		for _, ew := range dw.edges {
			for _, cc := range ew.a.codes {
				agg.codes = addCode(agg.codes, cc.code, cc.n)
			}
			service = cmp.Or(service, ew.a.service)
		}
		ev := evidenceOf([]models.FeatureEvidence{
			{Feature: "callers_failing", Observed: float64(len(dw.failing)), Score: round3(math.Min(dw.outageScore, maxDetectionScore)), Model: "rule"},
			{Feature: "5xx_into_destination", Expected: round3(math.Max(0, float64(dw.c5xx)-dw.extra5xx)), Observed: float64(dw.c5xx), Model: "sum"},
		}, &agg)
		ev.Summary = fmt.Sprintf("%s failed for %d callers at once (%d 5xx, %.0f%% of them unavailable answers or retries): a destination outage, not an attack",
			dep, len(dw.failing), dw.c5xx, 100*float64(dw.outage)/math.Max(1, float64(dw.c5xx)))
		ev.Destinations = callers
		out = append(out, finding{
			kind: models.DestinationOutage, severity: models.SeverityLow,
			score: round3(math.Min(dw.outageScore, maxDetectionScore)),
			dst:   dep, destination: party(dep, "", service), evidence: ev,
		})
	}
	return out
}

// knownSince is when the detector first saw ep, as a source or as a
// destination, in any shard or in the warm-started history: a workload
// only ever called (a leaf) has a history too, kept by the shards of its
// callers. own is what the asking shard knows (0: nothing). Traffic that
// was an attack's does not make a destination known (learn, attackOnly).
func (s *shard) knownSince(ep models.EndpointID, own int64) int64 {
	first := own
	keep := func(ms int64) {
		if ms != 0 && (first == 0 || ms < first) {
			first = ms
		}
	}
	for _, sh := range s.det.shards {
		if n := sh.sources[ep]; n != nil {
			keep(n.firstMs)
		}
		if n := sh.dests[ep]; n != nil {
			keep(n.firstMs)
		}
	}
	if w, ok := s.det.warmNodes[ep]; ok {
		keep(w.firstMs)
	}
	return first
}

// newService reports whether destination ep came online within the
// learning period: nothing called it before, so calling it is a deploy
// (a new service and its first callers), not movement towards an asset.
func (s *shard) newService(ep models.EndpointID, ws, learnMs int64) bool {
	if ep.Kind != models.KindWorkload {
		return false
	}
	return ws-s.knownSince(ep, ws) < learnMs
}
