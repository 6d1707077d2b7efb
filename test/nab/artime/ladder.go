// SPDX-License-Identifier: AGPL-3.0-only
// Part of a Go translation of ARTime by Mark Hampton (github.com/markNZed/ARTimeNAB.jl); see README.md.

package artime

import (
	"slices"
	"time"
)

// Ladder runs ARTime with several learning periods side by side and
// scores each point with the longest-learning one whose learning period
// is over: ARTime scales its time step and its vigilance updates with
// its probationary period (15% of the file under NAB, which a causal
// detector does not know), so a short stream is served by a rung that
// learned briefly and a long one by a rung that learned longer. A rung
// is dropped once a longer one takes over, so the cost is the longest
// rung's after its learning period.
type Ladder struct {
	rungs []*Detector // shortest learning period first
	ends  []int       // the point at which each rung's learning ends
	i     int
}

// NewLadder returns a ladder with a rung for each of cfg.Rungs and
// one for cfg.Probation; cfg must be valid (Validate).
func NewLadder(cfg Config) *Ladder {
	l := &Ladder{}
	for _, p := range append(slices.Clone(cfg.Rungs), cfg.Probation) {
		c := cfg
		c.Probation = p
		r := New(c)
		l.rungs = append(l.rungs, r)
		end := r.trend * r.sstep
		if f := cfg.Takeover; f > 0 && f < 1 && len(l.ends) > 0 {
			end = max(end, int(float64(p)/f))
		}
		l.ends = append(l.ends, end)
	}
	return l
}

// Score feeds v to every live rung and returns the score of the longest-
// learning rung past its learning period (0 while none is).
func (l *Ladder) Score(t time.Time, v float64) float64 {
	l.i++
	score := 0.0
	for k, r := range l.rungs {
		if r == nil {
			continue
		}
		s := r.Score(t, v)
		if l.i > l.ends[k] {
			score = s
			// Every shorter rung is superseded.
			for j := range k {
				l.rungs[j] = nil
			}
		}
	}
	return score
}

// NewLadderKnowingRange returns the ladder with every rung told the
// stream's minimum and maximum before the first point, as NAB tells
// ARTime (NewKnowing), but nothing of its length. That is not causal; it
// exists to measure what the file's range is worth to the ladder
// (BENCHMARKS.md, "Where the causal ladder's gap lies").
func NewLadderKnowingRange(cfg Config, min, max float64) *Ladder {
	l := NewLadder(cfg)
	for _, r := range l.rungs {
		r.known, r.lo, r.span = true, min, max-min
	}
	return l
}
