package detect

import (
	"fmt"
	"math"

	"github.com/meshguard/meshguard/models"
)

// exfilMinBytes is the least response volume above expected worth
// raising.
const exfilMinBytes = 512 << 10

// exfiltration raises response bytes the request count does not explain:
// more requests of the usual size are a flood, not a leak.
func (cw *closingWindow) exfiltration(ew *edgeWin, sc *edgeScores) {
	b := models.FeatBytesIn
	x, exp := &sc.x, &sc.exp
	st := ew.st
	perReq := float64(st.base[b].Level) / math.Max(float64(st.base[models.FeatRequests].Level), 1e-3)
	if sc.score[b] < cw.thr || x[b] < 5*exp[b] || x[b]-exp[b] < exfilMinBytes ||
		x[b] < 5*perReq*math.Max(x[models.FeatRequests], 1) {
		return
	}
	sev := models.SeverityHigh
	if x[b] >= 50*exp[b] && x[b] >= 64<<20 {
		sev = models.SeverityCritical
	}
	cw.raiseScored(ew, sc, models.Exfiltration, sev, sc.score[b],
		fmt.Sprintf("%s received %s from %s in one window, %s expected", ew.e.Source, humanBytes(x[b]), ew.e.Destination, humanBytes(exp[b])), b, models.FeatRequests)
}

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
