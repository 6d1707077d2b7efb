// Package cad translates CAD OSE, the Contextual Anomaly Detector (Open
// Source Edition; Mikhail Smirnov, 2016), from NAB's copy
// (nab/detectors/context_ose, MIT licence: LICENSE), NAB's third-best
// detector (69.90 standard). It learns which sets of facts follow which
// (contexts over the last value's bits and the contexts that were active
// before it) and scores a point by how few of the contexts it selects come
// true and how many new ones it makes. Run as NAB runs it (NewKnowing:
// told each file's range) it reproduces the published scores; Causal
// learns the range from the stream instead (issue 18).
package cad

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Config sets a detector.
type Config struct {
	// BaseThreshold and RestPeriod: a point scores 0 while one of the last
	// RestPeriod raw scores is at or above BaseThreshold.
	BaseThreshold float64
	RestPeriod    int
	// MaxLeft is the most facts a left semi-context of a derived context
	// may hold (maxLeftSemiContextsLenght).
	MaxLeft int
	// MaxActive is how many of the active contexts feed the next step
	// (maxActiveNeuronsNum).
	MaxActive int
	// Bits is the number of bits a value is quantised to over the range
	// (numNormValueBits): 2^Bits - 1 steps.
	Bits int
}

// Published is CAD OSE's own settings. NAB sets RestPeriod to a fifth of
// each file's probationary period (NewKnowing does); 150 is that fifth
// for the files of 5,000 points or more.
func Published() Config {
	return Config{BaseThreshold: 0.75, RestPeriod: 150, MaxLeft: 7, MaxActive: 15, Bits: 3}
}

// Validate reports every field that is out of range, by name.
func (c Config) Validate() error {
	var errs []error
	if c.BaseThreshold <= 0 || c.BaseThreshold > 1 {
		errs = append(errs, fmt.Errorf("cad: BaseThreshold %v: want (0, 1]", c.BaseThreshold))
	}
	errs = append(errs, atLeast("RestPeriod", c.RestPeriod, 1), atLeast("MaxLeft", c.MaxLeft, 1), atLeast("MaxActive", c.MaxActive, 1))
	if c.Bits < 1 || c.Bits > 16 {
		errs = append(errs, fmt.Errorf("cad: Bits %d: want 1 to 16", c.Bits))
	}
	return errors.Join(errs...)
}

// Detector is CAD OSE over one stream whose range is fixed up front.
type Detector struct {
	cfg       Config
	lo, width float64 // a value's step is (v-lo)/width
	mem       memory
	left      []int64   // the last step's facts: its value's and its active contexts'
	hist      []float64 // ring of the last RestPeriod raw scores
	histN     int
}

// NewKnowing returns a detector for values in [lo, hi], as NAB runs CAD
// OSE: told the whole file's minimum and maximum (not causal). cfg must be
// valid.
func NewKnowing(cfg Config, lo, hi float64) *Detector {
	steps := float64(int(1)<<cfg.Bits - 1)
	full := hi - lo
	if full == 0 {
		full = steps
	}
	d := &Detector{cfg: cfg, lo: lo, width: full / steps, mem: newMemory(cfg.MaxLeft)}
	d.hist = make([]float64, cfg.RestPeriod)
	// CAD OSE's history starts as [1.0]: nothing scores for RestPeriod points.
	d.hist[0], d.histN = 1, 1
	return d
}

// Score returns v's anomaly score in [0, 1].
func (d *Detector) Score(_ time.Time, v float64) float64 {
	selected, added := d.step(valueFacts(int64((v-d.lo)/d.width), d.cfg.Bits))
	raw := (1 - selected + added) / 2
	out := raw
	if slices.Max(d.hist[:min(d.histN, len(d.hist))]) >= d.cfg.BaseThreshold {
		out = 0
	}
	d.hist[d.histN%len(d.hist)] = raw
	d.histN++
	return out
}

// step feeds one value's facts and returns the share of the selected
// contexts that came true and the share of the potential new contexts
// that were new (CAD OSE's step).
func (d *Detector) step(sens []int64) (active, added float64) {
	m := &d.mem
	uniq := map[string]struct{}{}
	newZero := false
	if len(d.left) > 0 && len(sens) > 0 {
		zero := pair{d.left, sens}
		uniq[zero.key()] = struct{}{}
		newZero = m.addZero(zero)
	}
	m.sides[1].cross(sens)
	act, selected, pot := m.activate(newZero)
	for _, p := range pot {
		uniq[p.key()] = struct{}{}
	}
	if selected > 0 {
		active = float64(len(act)) / float64(selected)
	}
	// The most used contexts feed the next step, ties broken by the
	// Python hashes CAD OSE sorts by.
	slices.SortStableFunc(act, func(a, b activeContext) int {
		if a.count != b.count {
			return a.count - b.count
		}
		if c := cmpInt(a.lh, b.lh); c != 0 {
			return c
		}
		return cmpInt(a.rh, b.rh)
	})
	if len(act) > d.cfg.MaxActive {
		act = act[len(act)-d.cfg.MaxActive:]
	}
	left := slices.Clone(sens)
	for _, a := range act {
		left = append(left, neuronFact+int64(a.id))
	}
	slices.Sort(left)
	d.left = slices.Compact(left)
	n := m.add(pot)
	m.sides[0].cross(d.left)
	if newZero {
		n++
		if len(uniq) > 0 {
			added = float64(n) / float64(len(uniq))
		}
	}
	return active, added
}

// neuronFact offsets an active context's id into a fact of its own (CAD
// OSE's 2**31 + id).
const neuronFact = 1 << 31

// valueFacts encodes a quantised value as CAD OSE does: bit s of n is fact
// 2s+bit, over at least bits bits. A negative n (below the range, which
// only Causal's range allows) is its magnitude's facts and fact -1.
func valueFacts(n int64, bits int) []int64 {
	var out []int64
	if n < 0 {
		out = append(out, -1)
		n = -n
	}
	for s := 0; n > 0 || s < bits; s++ {
		out = append(out, int64(2*s)+n&1)
		n >>= 1
	}
	return out
}

// atLeast reports a field below its least value, by name.
func atLeast(name string, v, least int) error {
	if v < least {
		return fmt.Errorf("cad: %s %d: want at least %d", name, v, least)
	}
	return nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
