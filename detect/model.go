package detect

import (
	"math"

	"gonum.org/v1/gonum/mathext"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/meshguard/meshguard/models"
)

// Model is the statistical baseline shared by every detector and by the
// univariate NAB detector: a robust level and spread per series, learned
// online, and a tail probability for each new observation.
//
// Robustness to outliers and slow poisoning comes from three choices:
// observations are winsorized at Level ± Clip spreads before they are
// learned, the learning rate falls to MinRate (a half-life of days of
// windows) once warm, and callers do not learn windows that raised a
// detection. An attacker ramping up over hours then moves the level by a
// fraction of its spread.
type Model struct {
	// MinRate is the floor of the learning rate 1/(N+1); 1/MinRate windows
	// is the memory once warm.
	MinRate float64
	// Clip winsorizes learned observations at Level ± Clip*spread.
	Clip float64
	// CountFloor is the smallest rate a count model assumes, so that an
	// edge that was always silent does not call one request a miracle.
	CountFloor float64
	// SpreadFloor is the smallest relative spread (of Level) a continuous
	// model assumes, for series that never varied.
	SpreadFloor float64
}

// DefaultModel is tuned for 10 s windows: a memory of about a day once
// warm, winsorizing at 3 spreads.
func DefaultModel() Model {
	return Model{MinRate: 1.0 / 8640, Clip: 3, CountFloor: 0.2, SpreadFloor: 0.05}
}

// spread turns a mean absolute deviation into a standard deviation
// (sqrt(pi/2) for a normal distribution).
const spreadPerDev = 1.2533141373155003

// Learn folds one window's observation into s.
func (m Model) Learn(s *models.Series, x float64) {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return
	}
	n := float64(s.N)
	rate := 1 / (n + 1)
	if rate < m.MinRate {
		rate = m.MinRate
	}
	level, dev := float64(s.Level), float64(s.Dev)
	if s.N >= 8 {
		// Winsorize once there is enough history to know what normal is.
		lim := m.Clip * math.Max(dev*spreadPerDev, m.SpreadFloor*math.Abs(level))
		if lim == 0 {
			lim = math.Max(m.CountFloor, 1)
		}
		x = math.Max(level-lim, math.Min(level+lim, x))
	}
	d := x - level
	level += rate * d
	dev += rate * (math.Abs(d) - dev)
	s.Level, s.Dev = float32(level), float32(dev)
	if s.N < math.MaxUint32 {
		s.N++
	}
}

// Surprise scores observation x against s (scaled by factor, the seasonal
// multiplier, 1 when none): the expected value, -log10 of the upper tail
// probability P(X >= x), and the name of the model used. Only surprises
// upwards score: fewer requests than usual is not an attack signal here.
func (m Model) Surprise(s models.Series, x, factor float64, count bool) (expected, score float64, model string) {
	expected = float64(s.Level) * factor
	if count {
		return m.countSurprise(expected, float64(s.Dev)*factor, x)
	}
	sd := math.Max(float64(s.Dev)*factor*spreadPerDev, m.SpreadFloor*math.Abs(expected))
	if sd == 0 {
		sd = 1
	}
	z := (x - expected) / sd
	if z <= 0 {
		return expected, 0, "robust_normal"
	}
	return expected, logSurvivalNormal(z), "robust_normal"
}

// countSurprise uses a Poisson tail when the series is not overdispersed and
// a negative binomial tail (variance from the learned spread) when it is.
func (m Model) countSurprise(mean, dev, x float64) (expected, score float64, model string) {
	lambda := math.Max(mean, m.CountFloor)
	if x <= lambda {
		return mean, 0, "poisson"
	}
	k := math.Ceil(x)
	variance := math.Pow(dev*spreadPerDev, 2)
	if variance > 1.5*lambda {
		// NB with mean lambda and variance v: p = lambda/v, r = lambda*p/(1-p).
		// P(X >= k) = I_{1-p}(k, r).
		p := lambda / variance
		r := lambda * p / (1 - p)
		return mean, -math.Log10(math.Max(mathext.RegIncBeta(k, r, 1-p), 1e-300)), "negbin"
	}
	// P(X >= k) for Poisson(lambda) is the regularized lower gamma P(k, lambda).
	tail := mathext.GammaIncReg(k, lambda)
	if tail < 1e-300 {
		// Far in the tail the incomplete gamma underflows; the log pmf at k
		// bounds it well enough to rank.
		tail = math.Exp(distuv.Poisson{Lambda: lambda}.LogProb(k))
	}
	return mean, -math.Log10(math.Max(tail, 1e-300)), "poisson"
}

// logSurvivalNormal returns -log10 P(Z >= z) for a standard normal, with
// the asymptotic form where the survival function underflows.
func logSurvivalNormal(z float64) float64 {
	if z < 30 {
		return -math.Log10(math.Max(distuv.UnitNormal.Survival(z), 1e-300))
	}
	// ln P ~ -z^2/2 - ln(z*sqrt(2*pi)). Not capped: the univariate
	// detector ranks extreme surprises against each other.
	return (z*z/2 + math.Log(z*math.Sqrt(2*math.Pi))) / math.Ln10
}
