package detect

import (
	"fmt"

	"github.com/meshguard/meshguard/models"
)

// The mTLS family (mtls_downgrade): plaintext where mTLS is required or
// was always used, and a workload presenting another identity than its
// own. Only plaintext evidence counts; unknown TLS is no downgrade.

// strictPlaintext raises any plaintext request into a strict-mTLS
// namespace, from the edge's first window.
func (cw *closingWindow) strictPlaintext(ew *edgeWin) {
	if ew.m.plaintext == 0 || !cw.s.det.strict[ew.e.Destination.Namespace] {
		return
	}
	f := cw.s.edgeFinding(models.MTLSDowngrade, models.SeverityCritical, rareSeverityScore, ew, []models.FeatureEvidence{{
		Feature: "plaintext", Expected: 0, Observed: float64(ew.m.plaintext), Score: rareSeverityScore, Model: "rule"}})
	f.evidence.Summary = fmt.Sprintf("%d plaintext requests into strict-mTLS namespace %s%s", ew.m.plaintext, ew.e.Destination.Namespace, tlsKnown(ew.m))
	cw.findings = append(cw.findings, f)
	ew.fired[models.FeatPlaintext] = true
}

// downgrade raises plaintext on an established edge that has shown mTLS
// and whose baseline has (almost) no plaintext.
func (cw *closingWindow) downgrade(ew *edgeWin, sc *edgeScores) {
	p := models.FeatPlaintext
	st := ew.st
	if ew.fired[p] || sc.x[p] == 0 || !st.mtlsSeen || st.base[p].Level >= 0.01 || st.base[models.FeatRequests].Level <= 0 {
		return
	}
	f := cw.s.edgeFinding(models.MTLSDowngrade, models.SeverityHigh, rareSeverityScore, ew, []models.FeatureEvidence{{
		Feature: p.String(), Expected: round3(sc.exp[p]), Observed: sc.x[p], Score: rareSeverityScore, Model: "rule"}})
	f.evidence.Summary = fmt.Sprintf("%.0f plaintext requests from %s to %s, which always used mTLS%s", sc.x[p], ew.e.Source, ew.e.Destination, tlsKnown(ew.m))
	cw.findings = append(cw.findings, f)
	ew.fired[p] = true
}

// principalChange raises a known workload presenting another identity:
// stolen credentials or a compromised image with a mounted token of
// another account. The first such edge of the source is raised and
// learns nothing.
func (cw *closingWindow) principalChange(src models.EndpointID, sw *srcWin, node *nodeState) {
	if src.Kind != models.KindWorkload || cw.ws-node.firstMs < cw.learnMs || node.principal == "" {
		return
	}
	for _, ew := range sw.edges {
		if p := ew.a.principal; p != "" && (p != node.principal || ew.a.changed) {
			f := cw.s.edgeFinding(models.MTLSDowngrade, models.SeverityHigh, rareSeverityScore, ew, []models.FeatureEvidence{{
				Feature: "principal", Observed: 1, Score: rareSeverityScore, Model: "rule"}})
			f.evidence.Summary = fmt.Sprintf("%s presented principal %s instead of %s", src, p, node.principal)
			cw.findings = append(cw.findings, f)
			ew.silent = true
			return
		}
	}
}

// tlsKnown says how much of a window's traffic carried TLS evidence, so
// that a reader of a downgrade sees what it rests on.
func tlsKnown(m merged) string {
	if unknown := m.requests - min(m.requests, m.plaintext+m.mtls); unknown > 0 {
		return fmt.Sprintf(" (%d with mTLS, %d with no TLS evidence)", m.mtls, unknown)
	}
	return ""
}
