// SPDX-License-Identifier: AGPL-3.0-only
// Part of a Go translation of ARTime by Mark Hampton (github.com/markNZed/ARTimeNAB.jl); see README.md.

// Package artime holds ARTime (Mark Hampton, 2021; the NAB leader at
// 74.85), translated from its Julia source, and the detectors built on it
// (Ladder, Ensemble, Profiled). It is under the GNU AGPL v3 only, as ARTime is
// (LICENSE), and is built only into the benchmark tools nabrun and nabsearch
// (test/nab/cmd): the meshguard binary never links it
// (TestProductDoesNotLinkIt).
package artime

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Detector is a Go translation of ARTime (github.com/markNZed/ARTimeNAB.jl,
// src/ARTime.jl and src/AdaptiveResonanceCompact.jl), an
// adaptive-resonance detector over windows of a downsampled, discretised
// stream:
//
//   - every sstep points are reduced to one value: the window's maximum or
//     minimum, whichever lies farther from a running average, or its mean
//     when that extreme is within 10% of it;
//   - the value is scaled into [0, 1], rounded to one of Levels levels and
//     pulled onto an approximate running median when within Chomp of it;
//   - the last Window values and their Haar wavelet transform (both scaled
//     to [0, 1]) form a feature vector, complement-coded and fed to a
//     distributed dual-vigilance fuzzy ART: a vector resonating with no
//     category above the lower vigilance is a candidate anomaly, scored by
//     how far below both vigilances it falls;
//   - both vigilances adapt: the upper one is the running mean of all
//     similarities, the lower one follows the smallest recent similarity
//     and the similarities at past anomalies; masks after a new category
//     or an anomaly keep one event from being reported many times.
//
// The probationary period is learned in one batch at its end, as ARTime
// does, and scores 0. What ARTime reads from the whole file up front (its
// minimum, maximum and length, through NAB's detector base class) this
// port does not: the learning period is the fixed Probation points (and
// Ladder runs several), and the scale is the range of those points
// widened by Margin, later values beyond it either clamped or, with Expand,
// widening it (ARTime never sees one, since its range is the file's).
// NewKnowing restores ARTime's view, for checking the port only.
// Not safe for concurrent use.
type Detector struct {
	cfg   Config
	sstep int // points per downsampled value
	trend int // downsampled values in the probationary period
	mask  int // downsampled values masked after an anomaly

	i          int // points seen
	dsWin      []float64
	dsAvg      float64
	dsi        int // downsampled values seen, from 1 as in ARTime
	known      bool
	lo, span   float64 // the scale: (ds-lo)/span
	pmin, pmax float64 // range of the points seen so far, until known
	pending    []float64
	pendingT   []time.Time // the time of each pending value (with time features)
	ntime      int         // time features at the front of the feature vector

	medbin               []int
	medlevel, below, abv int
	fwin                 []float64
	feat, wave           []float64

	art ART

	lastAnomalyI   int
	lastAnomalySim float64
	lastRhoUpdateI int
	maskAfterCat   bool
	noNewCat       int
	// The similarities at past anomalies: their sum and count for the
	// mean, and the last one, which is lowered while its mask lasts.
	histSum  float64
	histN    int
	histLast float64
	rhoSum   float64 // running mean of all similarities (the upper vigilance)
	rhoN     int
	simWin   ring // the last trend/2+1 similarities
	simDiff  ring // the last trend+1 (upper vigilance - similarity)
}

// Config configures an ARTime detector. Default holds
// ARTime's own constants; one configuration serves every stream.
type Config struct {
	// Window is the number of downsampled values in a feature window (a
	// power of two, for the Haar transform).
	Window int
	// WindowsPerProbation sets the downsampling: the probationary period
	// holds about this many windows of downsampled values.
	WindowsPerProbation int
	// Levels is the number of discretisation levels of [0, 1].
	Levels int
	// Chomp is the distance from the running median within which a value
	// is taken to be the median.
	Chomp float64
	// InitialRho is the vigilance of the ART that picks the starting
	// vigilance from the probationary period.
	InitialRho float64
	// Probation is the number of points learned before any score: the
	// same for every stream (ARTime takes NAB's, 15% of the file and at
	// most 750 points, from the file's length).
	Probation int
	// Rungs are shorter learning periods, ascending and below Probation,
	// run beside it by NewLadder until it has learned.
	Rungs []int
	// Takeover, when in (0, 1) (0: off), delays a longer rung's taking over until
	// the stream is its learning period divided by Takeover long (ARTime
	// learns for a fraction of the stream, 15% under NAB).
	Takeover float64
	// Margin widens the probationary period's range by this fraction of it
	// on each side; the scale maps that range onto [0, 1].
	Margin float64
	// Expand widens the scale to take in any later value beyond it (and
	// maps everything learned onto the new scale) instead of clamping.
	Expand bool
	// MaxCategories bounds the ART's categories (0: unbounded, as in
	// ARTime); past it a new category replaces the one least recently
	// chosen.
	MaxCategories int
	// TimeOfDay, when above 0, adds the time of day of each downsampled
	// value (the time of its latest point) to the front of the feature
	// vector as a pair of phases (TimeEncoding), so that a value usual at
	// one hour but not at another is a new category. The weight is the
	// pair's share of the match against that of one value: ceil(weight)
	// copies of the pair, each squeezed about 0.5 to weight/copies of [0, 1].
	TimeOfDay float64
	// DayOfWeek is TimeOfDay for the time of the week (Monday 00:00 to
	// Sunday 24:00, one turn).
	DayOfWeek float64
	// TimeEncoding is how a phase p in [0, 1) becomes two features in
	// [0, 1]: 0 (the default) (1+sin 2 pi p)/2 and (1+cos 2 pi p)/2;
	// 1 two triangle waves a quarter turn apart, whose L1 distance is
	// proportional to the phase difference.
	TimeEncoding int
	// TimeMinSpan, in days, keeps the time features out of a detector
	// whose learning period spans less (it cannot have learned the
	// daily pattern): its feature vector is ARTime's.
	TimeMinSpan float64
	// TimeInEnergy counts the time features in the latest-value match
	// (the ART's "energy", squared in every match) as well.
	TimeInEnergy bool
	// TimeFixed keeps each category's time features as they were when it
	// was committed: learning widens only its values and wavelet, so a
	// category stays with the time it first saw.
	TimeFixed bool
	// TimeBins, when above 0, rounds each phase down to one of this many
	// bins (its start) before encoding it.
	TimeBins int
	// Weekend, when above 0, adds one feature, 1 on Saturday and Sunday
	// and 0 otherwise, squeezed about 0.5 to Weekend of [0, 1] (at most 1).
	Weekend float64
	// K holds the constants ARTime writes into its code (Default: its own).
	K Constants
}

// Constants are the numbers ARTime's code fixes, exposed to be chosen on
// the tuning half like the rest; ARTimeConstants returns ARTime's.
type Constants struct {
	// Mask is the length of the masks after an anomaly, in windows.
	Mask float64
	// MeanBand: a downsampled extreme within this fraction of the mean is
	// replaced by the mean.
	MeanBand float64
	// BelowCat and BelowAnomaly: during a mask, a mismatch is reported
	// only when its similarity is below this fraction of the last
	// anomaly's (after a new category, after an anomaly).
	BelowCat, BelowAnomaly float64
	// RhoEvery is the period of the vigilance updates, in learning periods.
	RhoEvery float64
	// UBMax caps the upper vigilance; LBRise is the fraction of the gap to
	// the smallest recent similarity the lower one rises by; LBFall the
	// fraction of the mean recent shortfall (each shortfall counted when
	// above DiffMin, capped at DiffCap, the mean at least DecrMin) it
	// falls by.
	UBMax, LBRise, LBFall, DiffMin, DiffCap, DecrMin float64
	// WUB, WLB and WEnergy weigh an anomaly's confidence: its distance
	// below the upper and the lower vigilance and its latest value's
	// mismatch.
	WUB, WLB, WEnergy float64
}

// ARTimeConstants returns ARTime's own constants.
func ARTimeConstants() Constants {
	return Constants{
		Mask: 1.5, MeanBand: 0.1, BelowCat: 0.70, BelowAnomaly: 0.90, RhoEvery: 0.5,
		UBMax: 0.97, LBRise: 0.19, LBFall: 0.5, DiffMin: 0.05, DiffCap: 0.37, DecrMin: 0.01,
		WUB: 0.35, WLB: 0.65, WEnergy: 1.5,
	}
}

// Default is ARTime's configuration plus what a causal detector
// needs in place of the file's length and range, and ARTime's constants
// as chosen again for it, all on the tuning half (README): learning
// periods of 170, 400, 600 and 750 points (a ladder, NewLadder; 750 is
// NAB's upper bound), each longer one taking over once the stream is its
// period/0.24 long; the scale the learning period's range widened by its
// width on each side and widened further to take in later values; at most
// 128 categories; the constants TunedConstants.
func Default() Config {
	c := Untuned()
	c.Takeover, c.K = 0.24, TunedConstants()
	return c
}

// TunedConstants are ARTime's constants as cmd/nabsearch chose them for
// the ladder on the tuning half (BENCHMARKS.md, "ARTime's constants chosen
// again" and "chosen over the downsampling's phases"): longer masks after
// an anomaly (15 values, not 12) that let a deeper mismatch through sooner
// (below 0.52 of the last anomaly's similarity, not 0.90), an upper
// vigilance capped at 0.99, a lower one that rises more slowly and falls
// on every shortfall, a wider band in which a downsampled extreme counts
// as the mean, and a confidence that weighs the upper vigilance twice and
// the latest value's mismatch about five times as much as ARTime does.
func TunedConstants() Constants {
	k := ARTimeConstants()
	k.Mask = 1.875
	k.BelowAnomaly = 0.5184
	k.MeanBand = 0.2
	k.UBMax = 0.99
	k.LBRise = 0.1069
	k.DiffMin = 0
	k.DiffCap = 0.555
	k.DecrMin = 0.005
	k.WUB = 0.7
	k.WLB = 0.325
	k.WEnergy = 7.98
	return k
}

// Untuned is the ladder as it was before its constants were chosen again
// (issue 18's first causal port, 69.34 on all files): ARTime's constants,
// the takeover at period/0.3. Ensemble and Profiled, chosen on it, keep it.
func Untuned() Config {
	return Config{
		Window:              8,
		WindowsPerProbation: 13,
		Levels:              80,
		Chomp:               0.075,
		InitialRho:          0.80,
		Probation:           750,
		Rungs:               []int{170, 400, 600},
		Takeover:            0.3,
		Margin:              1,
		Expand:              true,
		MaxCategories:       128,
		K:                   ARTimeConstants(),
	}
}

// Published is ARTime exactly as published: no margin, no widening,
// no bound on the categories, one learning period (which NAB sets per file;
// NewKnowing).
func Published() Config {
	c := Untuned()
	c.Rungs, c.Takeover, c.Margin, c.Expand, c.MaxCategories = nil, 0, 0, false, 0
	return c
}

// Validate reports every invalid field of c.
func (c Config) Validate() error {
	var errs []error
	if c.Window < 2 || c.Window&(c.Window-1) != 0 {
		errs = append(errs, fmt.Errorf("Window: %d is not a power of two above 1", c.Window))
	}
	if c.WindowsPerProbation < 1 || c.Levels < 1 || c.MaxCategories < 0 {
		errs = append(errs, fmt.Errorf("WindowsPerProbation, Levels, MaxCategories: %d, %d, %d out of range", c.WindowsPerProbation, c.Levels, c.MaxCategories))
	}
	if c.Probation < 4*c.Window {
		errs = append(errs, fmt.Errorf("Probation: %d is below four windows (%d)", c.Probation, 4*c.Window))
	}
	for k, r := range c.Rungs {
		if r < 4*c.Window || r >= c.Probation || (k > 0 && r <= c.Rungs[k-1]) {
			errs = append(errs, fmt.Errorf("Rungs: %v are not ascending, from four windows (%d) and below Probation (%d)", c.Rungs, 4*c.Window, c.Probation))
			break
		}
	}
	if c.TimeOfDay < 0 || c.DayOfWeek < 0 || c.TimeMinSpan < 0 || c.TimeBins < 0 || c.Weekend < 0 || c.Weekend > 1 || c.TimeEncoding < 0 || c.TimeEncoding > 1 {
		errs = append(errs, fmt.Errorf("TimeOfDay, DayOfWeek, TimeMinSpan, TimeBins, Weekend, TimeEncoding: %v, %v, %v, %d, %v, %d out of range", c.TimeOfDay, c.DayOfWeek, c.TimeMinSpan, c.TimeBins, c.Weekend, c.TimeEncoding))
	}
	if k := c.K; !(k.Mask > 0) || k.MeanBand < 0 || !(k.BelowCat >= 0 && k.BelowCat <= 1) || !(k.BelowAnomaly >= 0 && k.BelowAnomaly <= 1) ||
		!(k.RhoEvery > 0) || !(k.UBMax > 0 && k.UBMax <= 1) || k.LBRise < 0 || k.LBFall < 0 || k.DiffMin < 0 || k.DiffCap < 0 || k.DecrMin < 0 ||
		k.WUB < 0 || k.WLB < 0 || k.WEnergy < 0 {
		errs = append(errs, fmt.Errorf("K: %+v out of range (Mask and RhoEvery above 0, BelowCat, BelowAnomaly and UBMax in [0, 1], the rest at least 0)", k))
	}
	if !(c.InitialRho > 0 && c.InitialRho <= 1) || c.Chomp < 0 || c.Margin < 0 || c.Takeover < 0 || c.Takeover >= 1 {
		errs = append(errs, fmt.Errorf("InitialRho, Chomp, Margin, Takeover: %v, %v, %v, %v out of range", c.InitialRho, c.Chomp, c.Margin, c.Takeover))
	}
	return errors.Join(errs...)
}

// New returns a detector with empty state and the one learning
// period cfg.Probation (cfg.Rungs are NewLadder's); cfg must be
// valid (Validate).
func New(cfg Config) *Detector {
	a := &Detector{cfg: cfg, pmin: math.Inf(1), pmax: math.Inf(-1)}
	a.setup(cfg.Probation)
	return a
}

// NewKnowing returns the detector as ARTime runs under NAB: told
// the file's minimum and maximum and its probationary period (from its
// length) before the first point. That is not causal; it exists to check
// the port against ARTime's published score, not to be scored as ours.
func NewKnowing(cfg Config, min, max float64, probation int) *Detector {
	a := &Detector{cfg: cfg, known: true, lo: min, span: max - min}
	a.setup(probation)
	return a
}

func (a *Detector) setup(probation int) {
	c := a.cfg
	probation -= probation % 2
	// Julia's round(Int, div(p, w*n)) is the integer quotient.
	a.sstep = max(1, probation/(c.Window*c.WindowsPerProbation))
	a.trend = probation / a.sstep
	a.mask = int(float64(c.Window) * c.K.Mask)
	a.dsWin = make([]float64, a.sstep)
	a.dsi = 1
	a.medbin = make([]int, c.Levels+1)
	a.fwin = make([]float64, c.Window)
	a.ntime = 2 * (int(math.Ceil(c.TimeOfDay)) + int(math.Ceil(c.DayOfWeek)))
	if c.Weekend > 0 {
		a.ntime++
	}
	a.feat = make([]float64, a.ntime+2*c.Window)
	a.wave = make([]float64, c.Window)
	a.simWin = newRing(a.trend/2+1, 1)
	a.simDiff = newRing(a.trend+1, 0)
	a.art = newART(2*len(a.feat), c.MaxCategories)
	if c.TimeInEnergy {
		a.art.et = a.ntime
	}
	if c.TimeFixed {
		a.art.fixed = a.ntime
	}
	a.pending = make([]float64, 0, a.trend)
	if a.ntime > 0 {
		a.pendingT = make([]time.Time, 0, a.trend)
	}
}

// Score learns v and returns its anomaly score in [0, 1]: non-zero only
// on a downsampled point that ARTime calls anomalous.
func (a *Detector) Score(t time.Time, v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	a.i++
	a.dsWin[a.i%a.sstep] = v
	if !a.known {
		a.pmin, a.pmax = min(a.pmin, v), max(a.pmax, v)
	}
	if a.i%a.sstep != 0 {
		return 0
	}
	ds := a.downsample()
	i := a.dsi
	a.dsi++
	if i <= a.trend {
		a.pending = append(a.pending, ds)
		if a.ntime > 0 {
			a.pendingT = append(a.pendingT, t)
		}
		if i == a.trend {
			a.learnProbation()
		}
		return 0
	}
	return a.detect(a.features(ds, i, t), i)
}

// downsample reduces the last sstep points to one value.
func (a *Detector) downsample() float64 {
	sum, hi, lo := 0.0, math.Inf(-1), math.Inf(1)
	for _, x := range a.dsWin {
		sum += x
		hi, lo = max(hi, x), min(lo, x)
	}
	mean := sum / float64(len(a.dsWin))
	if a.dsi == 1 {
		a.dsAvg = mean
	}
	a.dsAvg = (a.dsAvg + mean) / 2
	ds := hi
	if math.Abs(hi-a.dsAvg) < math.Abs(lo-a.dsAvg) {
		ds = lo
	}
	if math.Abs(ds-mean) < a.cfg.K.MeanBand*mean {
		ds = mean
	}
	return ds
}

// learnProbation fixes the scale (when not told), turns the probationary
// period's values into features and learns them as ARTime does: the
// starting vigilance from an ART over them in order of typicality, then
// every one through detect, which scores nothing this early.
func (a *Detector) learnProbation() {
	if !a.known {
		r := a.pmax - a.pmin
		a.lo, a.span = a.pmin-a.cfg.Margin*r, r*(1+2*a.cfg.Margin)
		a.known = true
	}
	if a.ntime > 0 && a.pendingT[len(a.pendingT)-1].Sub(a.pendingT[0]).Hours() < 24*a.cfg.TimeMinSpan {
		a.ntime = 0
		a.feat = a.feat[:2*a.cfg.Window]
		a.art = newART(2*len(a.feat), a.cfg.MaxCategories)
	}
	feats := make([][]float64, len(a.pending))
	for k, ds := range a.pending {
		var t time.Time
		if a.ntime > 0 {
			t = a.pendingT[k]
		}
		feats[k] = slices.Clone(a.features(ds, k+1, t))
	}
	a.pending, a.pendingT = nil, nil
	rho := initRho(feats[a.cfg.Window-1:], a.trend, a.cfg)
	a.art.rhoLB, a.art.rhoUB = rho, rho
	for k, f := range feats {
		a.detect(f, k+1)
	}
}

// features scales, discretises and levels ds (the i-th downsampled value)
// and returns the feature vector of the window ending at it (at time t):
// the time features (Config.TimeOfDay, DayOfWeek), the wavelet transform
// and the values, or zeros while the window is not yet full.
func (a *Detector) features(ds float64, i int, t time.Time) []float64 {
	c := a.cfg
	if c.Expand && a.span > 0 && (ds < a.lo || ds > a.lo+a.span) {
		lo, hi := min(a.lo, ds), max(a.lo+a.span, ds)
		a.rescale(lo, hi-lo)
	}
	ds -= a.lo
	if a.span != 0 {
		ds /= a.span
	}
	nl := float64(c.Levels)
	level := int(math.RoundToEven(min(max(ds*nl, 0), nl)))
	ds = float64(level) / nl
	a.levelize(level, i)
	if med := float64(a.medlevel) / nl; math.Abs(ds-med) < c.Chomp {
		ds = med
	}
	copy(a.fwin, a.fwin[1:])
	a.fwin[len(a.fwin)-1] = ds
	w := c.Window
	if i < w {
		clear(a.feat)
		return a.feat
	}
	if a.ntime > 0 {
		a.timeFeatures(a.feat[:a.ntime], t)
	}
	f := a.feat[a.ntime:]
	copy(a.wave, a.fwin)
	unitRange(a.wave)
	haar(a.wave, f[:w])
	unitRange(f[:w])
	copy(f[w:], a.fwin)
	return a.feat
}

// timeFeatures writes t's time-of-day and time-of-week phases to out, each
// as ceil(weight) copies of a pair (Config.TimeOfDay).
func (a *Detector) timeFeatures(out []float64, t time.Time) {
	c := a.cfg
	sec := float64(t.Hour()*3600+t.Minute()*60+t.Second()) + float64(t.Nanosecond())/1e9
	day := (int(t.Weekday()) + 6) % 7 // Monday 0
	k := 0
	for _, p := range []struct{ weight, phase float64 }{
		{c.TimeOfDay, sec / 86400},
		{c.DayOfWeek, (float64(day)*86400 + sec) / (7 * 86400)},
	} {
		n := int(math.Ceil(p.weight))
		if n == 0 {
			continue
		}
		if c.TimeBins > 0 {
			p.phase = math.Floor(p.phase*float64(c.TimeBins)) / float64(c.TimeBins)
		}
		var u, v float64
		switch c.TimeEncoding {
		case 1:
			u = math.Abs(2*p.phase - 1)
			v = math.Abs(2*math.Mod(p.phase+0.25, 1) - 1)
		default:
			s, co := math.Sincos(2 * math.Pi * p.phase)
			u, v = (1+s)/2, (1+co)/2
		}
		amp := p.weight / float64(n)
		for range n {
			out[k], out[k+1] = 0.5+amp*(u-0.5), 0.5+amp*(v-0.5)
			k += 2
		}
	}
	if c.Weekend > 0 {
		we := 0.0
		if day >= 5 {
			we = 1
		}
		out[k] = 0.5 + c.Weekend*(we-0.5)
	}
}

// rescale moves the scale to (lo, span) and maps what was learned on the
// old one onto it: the fuzzy-AND weights exactly (an increasing affine map
// commutes with min), the window and the level histogram to the nearest
// level.
func (a *Detector) rescale(lo, span float64) {
	k := a.span / span
	b := (a.lo - lo) / span
	a.lo, a.span = lo, span
	for j := range a.fwin {
		a.fwin[j] = k*a.fwin[j] + b
	}
	nl := len(a.medbin) - 1
	to := func(l int) int {
		return int(math.RoundToEven(min(max(k*float64(l)+b*float64(nl), 0), float64(nl))))
	}
	bins := make([]int, len(a.medbin))
	for l, n := range a.medbin {
		bins[to(l)] += n
	}
	a.medbin, a.medlevel = bins, to(a.medlevel)
	a.below, a.abv = 0, 0
	for l, n := range bins {
		if l < a.medlevel {
			a.below += n
		} else if l > a.medlevel {
			a.abv += n
		}
	}
	a.art.rescale(a.ntime, a.cfg.Window, k, b)
}

// levelize tracks the median level, roughly, by a histogram of levels and
// the counts below and above the current median, as ARTime does.
func (a *Detector) levelize(level, i int) {
	a.medbin[level]++
	medpos := i / 2
	if i == 1 {
		a.medlevel = level
	}
	if a.medlevel > level {
		a.below++
	} else if a.medlevel < level {
		a.abv++
	}
	top := len(a.medbin) - 1
	if medpos < a.abv {
		a.below += a.medbin[a.medlevel]
		a.medlevel++
		for a.medlevel < top && a.medbin[a.medlevel] == 0 {
			a.medlevel++
		}
		a.abv -= a.medbin[a.medlevel]
	} else if medpos < a.below {
		a.abv += a.medbin[a.medlevel]
		a.medlevel--
		for a.medlevel > 0 && a.medbin[a.medlevel] == 0 {
			a.medlevel--
		}
		a.below -= a.medbin[a.medlevel]
	}
}

// unitRange shifts x to a minimum of 0 and scales it to a maximum of 1
// (when not constant).
func unitRange(x []float64) {
	lo, hi := slices.Min(x), 0.0
	for k := range x {
		x[k] -= lo
		hi = max(hi, x[k])
	}
	if hi != 0 {
		for k := range x {
			x[k] /= hi
		}
	}
}

// haar writes the full orthonormal Haar transform of x (length a power of
// two; x is overwritten) to out in Wavelets.jl's layout and signs: the
// coarsest scaling coefficient, then details from coarsest to finest,
// each detail (second - first)/sqrt 2.
func haar(x, out []float64) {
	for n := len(x); n > 1; n /= 2 {
		h := n / 2
		for k := range h {
			s := (x[2*k] + x[2*k+1]) * math.Sqrt2 / 2
			out[h+k] = (x[2*k+1] - x[2*k]) * math.Sqrt2 / 2
			x[k] = s
		}
	}
	out[0] = x[0]
}

// detect runs the i-th feature vector through the ART and ARTime's masks
// and vigilance updates, and returns its anomaly score.
func (a *Detector) detect(f []float64, i int) float64 {
	since := i - a.lastAnomalyI
	updateAfterAnomaly := since == a.mask
	updateForTrend := i-a.lastRhoUpdateI >= int(float64(a.trend)*a.cfg.K.RhoEvery)
	maskAfterAnomaly := since <= a.mask
	if i > a.trend+a.mask && a.maskAfterCat && a.noNewCat >= a.mask {
		a.maskAfterCat = false
	}
	learning := i >= a.cfg.Window
	sim, energy, resonant := a.art.train(f, learning, i)
	mismatch := !learning || !resonant
	if mismatch {
		a.noNewCat = 0
	} else {
		a.noNewCat++
	}
	a.rhoSum += sim
	a.rhoN++
	a.simWin.push(sim)
	a.simDiff.push(a.art.rhoUB - sim)
	if since < a.mask && a.histN > 0 && sim < a.histLast {
		a.histSum += sim - a.histLast
		a.histLast = sim
	}
	masking := a.maskAfterCat || maskAfterAnomaly
	scale := a.cfg.K.BelowCat
	if maskAfterAnomaly {
		scale = a.cfg.K.BelowAnomaly
	}
	belowLast := sim < a.lastAnomalySim*scale
	score := 0.0
	if i > a.trend && mismatch && (!masking || belowLast) {
		score = a.confidence(sim, energy)
		a.histSum += sim
		a.histN++
		a.histLast = sim
		a.lastAnomalySim = sim
		a.lastAnomalyI = i
	}
	a.maskAfterCat = mismatch || a.maskAfterCat
	if i > a.trend && (updateAfterAnomaly || updateForTrend) {
		a.updateRho(i)
	}
	return score
}

// updateRho moves the vigilances: the upper to the mean similarity (at
// most 0.97), the lower up towards the smallest recent similarity or down
// by half the recent shortfall below the upper, no lower than the mean
// similarity at past anomalies.
func (a *Detector) updateRho(i int) {
	k := a.cfg.K
	minSim := a.simWin.min()
	ub := min(k.UBMax, a.rhoSum/float64(a.rhoN))
	prev := a.art.rhoLB
	var lb float64
	if prev <= minSim {
		lb = prev + (minSim-prev)*k.LBRise
	} else {
		decr := 0.0
		if i > a.trend*2 {
			sum, n := 0.0, 0
			for _, d := range a.simDiff.v {
				if d > k.DiffMin {
					sum += min(k.DiffCap, d)
					n++
				}
			}
			if n > 0 {
				decr = sum / float64(n)
			}
		}
		decr = max(k.DecrMin, decr)
		lb = prev - decr*k.LBFall
		if a.histN > 0 {
			lb = max(a.histSum/float64(a.histN), lb)
		}
	}
	a.art.rhoLB, a.art.rhoUB = min(ub, lb), ub
	a.lastRhoUpdateI = i
	a.maskAfterCat = true
}

// confidence is ARTime's score of an anomaly of similarity sim (energy
// similarity energy): how far below the vigilances it falls, plus the
// mismatch of the latest value.
func (a *Detector) confidence(sim, energy float64) float64 {
	sim = min(0.999, sim)
	ub := ((1 - sim) - (1 - a.art.rhoUB)) / (1 - sim)
	lb := ((1 - sim) - (1 - a.art.rhoLB)) / (1 - sim)
	k := a.cfg.K
	s := min(1.0, ub*k.WUB+lb*k.WLB+(1-energy)*k.WEnergy)
	return math.RoundToEven(s*1e6) / 1e6
}

// initRho is ARTime's starting vigilance: the mean similarity over the
// second half of an ART (vigilance InitialRho) trained on the probation's
// feature vectors, most atypical first (by summed cosine similarity).
func initRho(feats [][]float64, trend int, c Config) float64 {
	n := len(feats)
	sum := make([]float64, n)
	for i := range n {
		sum[i]++ // the diagonal
		for j := range i {
			s := similarity(feats[i], feats[j])
			sum[i] += s
			sum[j] += s
		}
	}
	order := make([]int, n)
	for k := range order {
		order[k] = k
	}
	slices.SortStableFunc(order, func(p, q int) int {
		switch {
		case sum[p] < sum[q]:
			return -1
		case sum[p] > sum[q]:
			return 1
		}
		return 0
	})
	art := newART(2*len(feats[0]), 0)
	art.rhoLB, art.rhoUB = c.InitialRho, c.InitialRho
	sims := make([]float64, n)
	for k, o := range order {
		sims[k], _, _ = art.train(feats[o], true, k+1)
	}
	from := trend/2 - 1
	if from < 0 || from >= n {
		from = n / 2
	}
	total := 0.0
	for _, s := range sims[from:] {
		total += s
	}
	return total / float64(n-from)
}

// similarity is ARTime's near-cosine similarity of two vectors.
func similarity(t1, t2 []float64) float64 {
	var n1, n2, dot float64
	for k := range t1 {
		n1 += t1[k] * t1[k]
		n2 += t2[k] * t2[k]
		dot += t1[k] * t2[k]
	}
	n1, n2 = math.Sqrt(n1), math.Sqrt(n2)
	switch {
	case n1 == 0:
		return 1 - n2
	case n2 == 0:
		return 1 - n1
	}
	return dot / (n1 * n2)
}

// ring is a fixed window of the last len(v) values, oldest overwritten.
type ring struct {
	v    []float64
	next int
}

func newRing(n int, fill float64) ring {
	r := ring{v: make([]float64, n)}
	for k := range r.v {
		r.v[k] = fill
	}
	return r
}

func (r *ring) push(x float64) {
	r.v[r.next] = x
	r.next = (r.next + 1) % len(r.v)
}

func (r *ring) min() float64 { return slices.Min(r.v) }
