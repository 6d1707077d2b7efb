package cad

import (
	"errors"
	"fmt"
	"time"
)

// CausalConfig sets a Causal detector: CAD OSE's settings and how the
// range is learned.
type CausalConfig struct {
	CAD Config
	// Learn is the number of points seen before the first score: their
	// range is the first one.
	Learn int
	// Keep is how many of the latest points a restart replays.
	Keep int
	// Margin widens the range, on each restart, by this fraction of its
	// width on each side, so that a slowly growing stream does not restart
	// at every point.
	Margin float64
}

// DefaultCausal is the causal variant chosen on the tuning half (of 15
// tried: learning 150, 400 or 750 points, a fixed range or restarts,
// margin 0 to 0.25; BENCHMARKS.md).
func DefaultCausal() CausalConfig {
	return CausalConfig{CAD: Published(), Learn: 400, Keep: 750, Margin: 0.1}
}

// Validate reports every field that is out of range, by name.
func (c CausalConfig) Validate() error {
	errs := []error{c.CAD.Validate(), atLeast("Learn", c.Learn, 1), atLeast("Keep", c.Keep, 1)}
	if c.Margin < 0 {
		errs = append(errs, fmt.Errorf("cad: Margin %v: want at least 0", c.Margin))
	}
	return errors.Join(errs...)
}

// Causal is CAD OSE told no range: its range is the stream's so far.
// CAD OSE quantises values over a fixed range and its memory holds facts
// of that quantisation, so a value outside the range restarts it with
// the range widened to include the value, replaying the last Keep points
// to relearn their contexts. Its state is bounded by Keep only as far as
// CAD OSE's memory is (which grows with the stream, as published).
type Causal struct {
	cfg      CausalConfig
	lo, hi   float64
	recent   []float64 // ring of the last Keep points, next at n%Keep
	n        int
	d        *Detector
	Restarts int
}

// NewCausal returns a detector with empty state; cfg must be valid.
func NewCausal(cfg CausalConfig) *Causal {
	return &Causal{cfg: cfg, recent: make([]float64, 0, cfg.Keep)}
}

// Score returns v's score: 0 for the first Learn points.
func (c *Causal) Score(t time.Time, v float64) float64 {
	if c.n == 0 {
		c.lo, c.hi = v, v
	}
	outside := v < c.lo || v > c.hi
	c.lo, c.hi = min(c.lo, v), max(c.hi, v)
	if c.d == nil && c.n+1 < c.cfg.Learn {
		c.remember(v)
		return 0
	}
	if c.d == nil || outside {
		c.restart()
	}
	c.remember(v)
	return c.d.Score(t, v)
}

func (c *Causal) remember(v float64) {
	if len(c.recent) < c.cfg.Keep {
		c.recent = append(c.recent, v)
	} else {
		c.recent[c.n%c.cfg.Keep] = v
	}
	c.n++
}

// restart makes a fresh detector over the widened range and replays the
// kept points, oldest first.
func (c *Causal) restart() {
	w := c.hi - c.lo
	c.lo, c.hi = c.lo-c.cfg.Margin*w, c.hi+c.cfg.Margin*w
	c.d = NewKnowing(c.cfg.CAD, c.lo, c.hi)
	start := 0
	if len(c.recent) == c.cfg.Keep {
		start = c.n % c.cfg.Keep
	}
	for i := range c.recent {
		c.d.Score(time.Time{}, c.recent[(start+i)%len(c.recent)])
	}
	c.Restarts++
}
