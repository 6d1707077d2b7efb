package detect

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/meshguard/meshguard/models"
)

// unusualPath raises sensitive paths never seen on the edge nor served by
// the destination to anyone, and methods other than GET and HEAD the edge
// never used. The edge is then silent.
func (cw *closingWindow) unusualPath(ew *edgeWin, dst *nodeState) {
	odd, sev := oddRequests(ew, dst)
	if len(odd) == 0 {
		return
	}
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
	f := cw.s.edgeFinding(models.UnusualPath, sev, rareSeverityScore, ew, odd)
	f.evidence.Summary = fmt.Sprintf("%s called %d never-seen paths or methods on %s: %s", ew.e.Source, len(odd), ew.e.Destination, strings.Join(names, ", "))
	cw.findings = append(cw.findings, f)
	ew.silent = true
}

// oddRequests lists the never-seen sensitive paths and methods of ew, and
// the severity they warrant: high when the edge got a 200 among them.
func oddRequests(ew *edgeWin, dst *nodeState) ([]models.FeatureEvidence, models.Severity) {
	var odd []models.FeatureEvidence
	sev := models.SeverityMedium
	st := ew.st
	for _, pc := range ew.a.paths {
		p, n := pc.v, pc.n
		h := pathHash(p)
		if st.knowsPath(h) {
			continue
		}
		if _, ok := dst.paths[h]; ok {
			continue
		}
		if !sensitivePath(p) {
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
	return odd, sev
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
