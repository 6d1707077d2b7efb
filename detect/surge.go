package detect

import (
	"fmt"

	"github.com/meshguard/meshguard/models"
)

// Surges of an established edge: credential stuffing (401/403), error
// surge (5xx the caller provoked) and request flood. When they surge
// together one attack gets one detection (surge).
const (
	authMinCount  = 20
	errorMinCount = 10
)

// authSurge: far more 401/403 than the edge's level.
func (cw *closingWindow) authSurge(sc *edgeScores) bool {
	a := models.FeatAuthFail
	return sc.score[a] >= cw.thr && sc.x[a] >= authMinCount && sc.x[a] >= 5*sc.exp[a]+10
}

// errorSurge: far more 5xx than the edge's level, caused by this source.
// It is caused by this source only if it carries most of the
// destination's errors and they are not the destination saying it is
// unavailable (a retry storm): a destination failing for everyone is an
// outage, not an attack, and is noted on dw for outages.
func (cw *closingWindow) errorSurge(ew *edgeWin, sc *edgeScores, dw *dstWin) bool {
	c := models.Feat5xx
	if sc.score[c] < cw.thr || sc.x[c] < errorMinCount || sc.x[c] < 4*sc.exp[c]+5 {
		return false
	}
	if retryStorm(ew.m) || (dw != nil && float64(ew.m.c5xx) < 0.6*float64(dw.c5xx)) {
		ew.fired[c] = true // an outage must not become the edge's normal
		dw.noteFailing(ew.e.Source, sc.x[c]-sc.exp[c], sc.score[c])
		return false
	}
	return true
}

// surge raises at most one of credential stuffing, error surge and flood
// on ew: when requests and failures surge together, the failures are the
// attack if they are most of the extra requests (stuffing answered 401, a
// client breaking a service), else they are the flood's side effect.
func (cw *closingWindow) surge(ew *edgeWin, sc *edgeScores, dw, srcIn *dstWin) {
	r, a, c := models.FeatRequests, models.FeatAuthFail, models.Feat5xx
	e := ew.e
	flood := cw.edgeFlood(ew, sc, srcIn)
	auth := cw.authSurge(sc)
	errs := cw.errorSurge(ew, sc, dw)
	x, exp := &sc.x, &sc.exp
	extra := x[r] - exp[r]
	switch {
	case auth && (!flood || x[a]-exp[a] >= 0.5*extra):
		cw.raiseScored(ew, sc, models.CredentialStuffing, models.SeverityHigh, sc.score[a],
			fmt.Sprintf("%s got %.0f 401/403 responses from %s in one window, %.1f expected", e.Source, x[a], e.Destination, exp[a]), a, r)
	case errs && (!flood || x[c]-exp[c] >= 0.5*extra):
		cw.raiseScored(ew, sc, models.ErrorSurge, models.SeverityMedium, sc.score[c],
			fmt.Sprintf("%s caused %.0f 5xx responses from %s in one window, %.1f expected", e.Source, x[c], e.Destination, exp[c]), c, r)
	case flood:
		cw.raiseScored(ew, sc, models.RequestFlood, floodSeverity(x[r], exp[r]), sc.score[r],
			fmt.Sprintf("%s sent %.0f requests to %s in one window, %.1f expected", e.Source, x[r], e.Destination, exp[r]), r, a, c)
	}
}
