// SPDX-License-Identifier: AGPL-3.0-only
// Part of a Go translation of ARTime by Mark Hampton (github.com/markNZed/ARTimeNAB.jl); see README.md.

package artime

import (
	"errors"
	"time"

	"github.com/meshguard/meshguard/test/nab"
)

// EnsembleConfig configures an Ensemble: its two members.
type EnsembleConfig struct {
	Univariate nab.UnivariateConfig
	ARTime     Config
}

// DefaultEnsemble is Univariate's default and an ARTime ladder chosen
// for the ensemble on the tuning half: rungs of 170, 600 and 750 points,
// each taking over as soon as it has learned (the delayed takeover of
// Default adds false positives to Univariate's).
func DefaultEnsemble() EnsembleConfig {
	a := Untuned()
	a.Rungs, a.Takeover = []int{170, 600}, 0
	return EnsembleConfig{Univariate: nab.DefaultUnivariate(), ARTime: a}
}

// Validate reports every invalid field of either member.
func (c EnsembleConfig) Validate() error {
	return errors.Join(c.Univariate.Validate(), c.ARTime.Validate())
}

// Ensemble scores a stream with Univariate (level, step and daily-profile
// surprises, ranked) and an ARTime ladder (shapes of the recent window,
// by adaptive resonance) and reports the larger score: the two miss
// different anomalies, and each is scaled to [0, 1].
type Ensemble struct {
	u *nab.Univariate
	a *Ladder
}

// NewEnsemble returns an ensemble with empty state; cfg must be valid.
func NewEnsemble(cfg EnsembleConfig) *Ensemble {
	return &Ensemble{u: nab.NewUnivariate(cfg.Univariate), a: NewLadder(cfg.ARTime)}
}

// Score feeds v to both members and returns the larger score.
func (e *Ensemble) Score(t time.Time, v float64) float64 {
	return max(e.u.Score(t, v), e.a.Score(t, v))
}
