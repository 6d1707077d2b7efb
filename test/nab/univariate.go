package nab

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/meshguard/meshguard/detect"
	"github.com/meshguard/meshguard/models"
)

// UnivariateConfig configures a Univariate detector. One configuration
// serves every stream (DefaultUnivariate); nothing in it depends on the
// stream's length or range.
type UnivariateConfig struct {
	// Model is the baseline model every feature uses; its MinRate is
	// overridden per feature (Rates for the value, the slowest rate for
	// the others).
	Model detect.Model
	// Rates are the learning-rate floors of the time scales: each scale is
	// the same robust level/spread model with a memory of about 1/rate
	// points.
	Rates []float64
	// DevFloor is the smallest spread a scale assumes, as a fraction of
	// the slowest scale's spread, so that a scale that has seen a quiet
	// stretch does not call ordinary noise a miracle.
	DevFloor float64
	// Warmup is the number of points learned before any score is given.
	Warmup int
	// History is the number of past surprises a new one is compared with.
	History int
	// Suppress is the number of points after a detection (a score of at
	// least Alert) during which scores are held at zero: one anomaly is
	// reported once.
	Suppress int
	Alert    float64
	// Short is the rate of the short average compared with each scale's
	// level (a level shift), and of the short average of step sizes (a
	// change in noise, or a flat line).
	Short float64
	// Diff adds the step size |v - previous v| as a feature.
	Diff bool
	// Tail is the fraction of the history that is fitted with an
	// exponential tail, to extrapolate beyond the largest surprise seen.
	Tail float64
	// TailFloor is the smallest mean excess the tail fit assumes, in the
	// surprise's units (log10), so that a history of identical surprises
	// does not make a slightly larger one infinitely rare.
	TailFloor float64
	// Scale maps rarity L (-log10 of the probability of a surprise as
	// large as this one) to the score L/(Scale+L).
	Scale float64
	// Seasonal is the number of time-of-day buckets of a daily profile (0:
	// none).
	Seasonal int
	// Weekly is the number of time-of-week buckets of a weekly profile (0:
	// none): traffic and volumes that differ between weekdays and weekends.
	Weekly int
	// OnlyProfiles scores the profiles' features alone (and the steps'
	// when Diff is set): the value and its short average against the
	// stream's level are still learned, for the spread floor, but not
	// scored. artime.Profiled uses a daily profile this way beside the
	// ARTime ladder, which has no time of day.
	OnlyProfiles bool
}

// DefaultUnivariate is the configuration used on the NAB corpus.
func DefaultUnivariate() UnivariateConfig {
	m := detect.DefaultModel()
	m.SpreadFloor = 0
	return UnivariateConfig{
		Model:     m,
		Rates:     []float64{1.0 / 256},
		DevFloor:  0.05,
		Warmup:    64,
		History:   4000,
		Suppress:  60,
		Alert:     0.45,
		Short:     0.3,
		Diff:      true,
		Seasonal:  24,
		Weekly:    0,
		Tail:      0.02,
		TailFloor: 0.1,
		Scale:     5,
	}
}

// feature is one view of the stream scored by the baseline model: a
// series, the learning-rate floor it learns with, and the history of its
// surprises that a new surprise is compared with.
type feature struct {
	s    models.Series
	rate float64
	hist tailWindow
}

// Univariate is a streaming anomaly detector for one series of numbers,
// built on the same baseline model (detect.Model) as the mesh detectors. Several
// features of the stream each keep a detect.Model series: the value (one per
// rate in Rates), a short average of the value against that level (a level
// shift), the step |v - previous v| and its short average (spikes, a
// change in noise, a flat line), the value against its time-of-day bucket
// and the short average of that residual (a day unlike the others; the same
// against a time-of-week profile when Weekly is set). A
// point's surprise under each feature (-log10 of the two-sided tail
// probability under detect.Model's robust normal, twoSided) is ranked against that feature's last
// History surprises, with an exponential tail fitted beyond the top Tail
// of them, giving its rarity L (-log10 of how often a surprise that large
// occurs); the score is L/(Scale+L) for the rarest feature. After a score
// of Alert, Suppress points score 0 so that one anomaly is reported once.
// Everything is causal: a score depends on the point and those before it.
// Not safe for concurrent use.
type Univariate struct {
	cfg    UnivariateConfig
	scales []feature // the value, per rate
	levels []feature // the short average of the value, per rate
	steps  feature   // |v - previous v|
	stepAv feature   // short average of |v - previous v|
	// profiles are the daily and the weekly profile, when configured.
	profiles []profile
	n        int
	prev     float64
	short    float64 // EWMA of v at rate Short
	stepS    float64 // EWMA of |dv| at rate Short
	quiet    int     // points left to suppress
}

// Validate reports every invalid field of c.
func (c UnivariateConfig) Validate() error {
	var errs []error
	if len(c.Rates) == 0 {
		errs = append(errs, errors.New("Rates: at least one time scale is needed"))
	}
	for i, r := range c.Rates {
		if !(r > 0 && r <= 1) {
			errs = append(errs, fmt.Errorf("Rates[%d]: %v is not in (0, 1]", i, r))
		}
	}
	if !(c.Short > 0 && c.Short < 1) {
		errs = append(errs, fmt.Errorf("Short: %v is not in (0, 1)", c.Short))
	}
	if c.History < 32 {
		errs = append(errs, fmt.Errorf("History: %d is below 32", c.History))
	}
	if !(c.Tail > 0 && c.Tail < 1) {
		errs = append(errs, fmt.Errorf("Tail: %v is not in (0, 1)", c.Tail))
	}
	if !(c.Scale > 0) {
		errs = append(errs, fmt.Errorf("Scale: %v is not positive", c.Scale))
	}
	if c.OnlyProfiles && c.Seasonal == 0 && c.Weekly == 0 {
		errs = append(errs, errors.New("OnlyProfiles: no profile (Seasonal and Weekly are 0)"))
	}
	if c.Seasonal < 0 || c.Weekly < 0 || c.Warmup < 0 || c.Suppress < 0 {
		errs = append(errs, fmt.Errorf("Seasonal, Weekly, Warmup, Suppress: %d, %d, %d, %d must not be negative", c.Seasonal, c.Weekly, c.Warmup, c.Suppress))
	}
	return errors.Join(errs...)
}

// NewUnivariate returns a detector with empty state; cfg must be valid
// (Validate).
func NewUnivariate(cfg UnivariateConfig) *Univariate {
	u := &Univariate{cfg: cfg}
	for _, r := range cfg.Rates {
		u.scales = append(u.scales, feature{rate: r, hist: tailWindow{size: cfg.History}})
		u.levels = append(u.levels, feature{rate: r, hist: tailWindow{size: cfg.History}})
	}
	slow := cfg.Rates[len(cfg.Rates)-1]
	u.steps = feature{rate: slow, hist: tailWindow{size: cfg.History}}
	u.stepAv = feature{rate: slow, hist: tailWindow{size: cfg.History}}
	for _, p := range []struct {
		buckets int
		period  int64
	}{{cfg.Seasonal, 86400}, {cfg.Weekly, 7 * 86400}} {
		if p.buckets > 0 {
			u.profiles = append(u.profiles, profile{
				buckets: make([]models.Series, p.buckets), period: p.period,
				v:  feature{rate: slow, hist: tailWindow{size: cfg.History}},
				av: feature{rate: slow, hist: tailWindow{size: cfg.History}},
			})
		}
	}
	return u
}

// Score learns v (observed at t) and returns its anomaly score in [0, 1].
func (u *Univariate) Score(t time.Time, v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	first := u.n == 0
	if first {
		u.prev, u.short = v, v
	}
	step := math.Abs(v - u.prev)
	u.prev = v
	u.short += u.cfg.Short * (v - u.short)
	u.stepS += u.cfg.Short * (step - u.stepS)
	// Surprises, before learning this point.
	slow := u.scales[len(u.scales)-1].s
	floor := u.cfg.DevFloor * float64(slow.Dev)
	shrink := math.Sqrt(u.cfg.Short / (2 - u.cfg.Short))
	var ratio float64
	warm := u.n >= u.cfg.Warmup
	consider := func(f *feature, s float64) {
		if warm {
			b := binOf(s)
			ratio = max(ratio, f.hist.rarity(s, b, u.cfg.Tail, u.cfg.TailFloor))
			f.hist.push(s, b)
		}
	}
	for i := range u.scales {
		if u.cfg.OnlyProfiles {
			break
		}
		f := &u.scales[i]
		consider(f, u.twoSided(f.s, v, floor, 1))
		g := &u.levels[i]
		consider(g, u.twoSided(f.s, u.short, floor*shrink, shrink))
	}
	if u.cfg.Diff && !first {
		sf := u.cfg.DevFloor * float64(u.steps.s.Dev)
		consider(&u.steps, u.twoSided(u.steps.s, step, sf, 1))
		consider(&u.stepAv, u.twoSided(u.steps.s, u.stepS, sf*shrink, shrink))
	}
	for i := range u.profiles {
		p := &u.profiles[i]
		bucket := p.bucket(t)
		p.cur = bucket
		if bucket.N >= 2 {
			consider(&p.v, u.twoSided(*bucket, v, floor, 1))
			// The short average of the residuals from the profile: a day
			// (or week) that runs low or high for a while.
			p.resid += u.cfg.Short * (v - float64(bucket.Level) - p.resid)
			zero := models.Series{Dev: bucket.Dev, N: bucket.N}
			consider(&p.av, u.twoSided(zero, p.resid, floor*shrink, shrink))
		}
	}
	// Learn.
	for i := range u.scales {
		u.learn(&u.scales[i].s, u.scales[i].rate, v)
	}
	if u.cfg.Diff && !first {
		u.learn(&u.steps.s, u.steps.rate, step)
	}
	for i := range u.profiles {
		u.learn(u.profiles[i].cur, u.scales[len(u.scales)-1].rate, v)
	}
	u.n++
	if !warm {
		return 0
	}
	score := ratio / (u.cfg.Scale + ratio)
	if u.quiet > 0 {
		u.quiet--
		return 0
	}
	if u.cfg.Suppress > 0 && score >= u.cfg.Alert {
		u.quiet = u.cfg.Suppress
	}
	return score
}

// profile is a periodic profile of the stream, one series per bucket of
// the period; v scores the value against its bucket, av the short average
// of the residual from the profile, resid.
type profile struct {
	buckets []models.Series
	period  int64 // seconds
	v, av   feature
	resid   float64
	cur     *models.Series // this point's bucket, learned after scoring
}

// bucket is the series of t's place in the period (weeks counted from the
// Unix epoch, a Thursday; days from midnight of t's zone).
func (p *profile) bucket(t time.Time) *models.Series {
	h, m, sec := t.Clock()
	into := int64(h*3600 + m*60 + sec)
	if p.period > 86400 {
		_, off := t.Zone()
		n := p.period / 86400
		days := ((t.Unix()+int64(off))/86400%n + n) % n
		into += days * 86400
	}
	return &p.buckets[into*int64(len(p.buckets))/p.period]
}

// twoSided is the surprise of x under s, up or down, whose spread is
// scaled by k and floored at floor: detect.Model's robust normal tail,
// -log10 P(|Z| >= z) one-sided, through logSurvival rather than
// Model.Surprise's exact (and four times dearer) one.
func (u *Univariate) twoSided(s models.Series, x, floor, k float64) float64 {
	if s.N < 2 {
		return 0
	}
	dev := float32(max(float64(s.Dev)*k, floor))
	level := float64(s.Level)
	if dev == 0 {
		dev = float32(1e-6 * max(math.Abs(level), 1))
	}
	sd := max(float64(dev)*spreadPerDev, u.cfg.Model.SpreadFloor*math.Abs(level))
	if sd == 0 {
		sd = 1
	}
	z := math.Abs(x-level) / sd
	if z == 0 {
		return 0
	}
	return logSurvival(z)
}

// spreadPerDev turns a mean absolute deviation into a standard deviation,
// as detect.Model does.
const spreadPerDev = 1.2533141373155003

// logSurvival is -log10 P(Z >= z) for a standard normal and z >= 0, by
// Borjesson and Sundberg's approximation Q(z) ~ phi(z) / ((1-a)z +
// a*sqrt(z^2+b)), within 0.003 (in log10 units) of the exact tail
// everywhere and without its underflow far out.
func logSurvival(z float64) float64 {
	const a, b = 0.339, 5.510
	const lnSqrt2Pi = 0.9189385332046727
	return (z*z/2 + lnSqrt2Pi + math.Log((1-a)*z+a*math.Sqrt(z*z+b))) / math.Ln10
}

func (u *Univariate) learn(s *models.Series, rate, v float64) {
	m := u.cfg.Model
	m.MinRate = rate
	m.Learn(s, v)
}
