// SPDX-License-Identifier: AGPL-3.0-only
// Part of a Go translation of ARTime by Mark Hampton (github.com/markNZed/ARTimeNAB.jl); see README.md.

package artime

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/meshguard/meshguard/test/nab"
)

// ProfiledConfig configures a Profiled detector.
type ProfiledConfig struct {
	// ARTime is the ladder's configuration.
	ARTime Config
	// Profile is the daily-profile model's: a nab.Univariate scoring its
	// profiles alone (OnlyProfiles).
	Profile nab.UnivariateConfig
	// Power is the exponent the profile's score is raised to before it is
	// compared with the ladder's: the larger, the rarer a surprise must be
	// to count beside the ladder's detections.
	Power float64
}

// DefaultProfiled is the Untuned ladder beside Univariate's daily profile
// alone (OnlyProfiles, no step features), its score raised to the 4th
// power, chosen on the tuning half (README): the powers 3 to 8 score
// within 0.05 of each other there.
func DefaultProfiled() ProfiledConfig {
	u := nab.DefaultUnivariate()
	u.OnlyProfiles, u.Diff = true, false
	return ProfiledConfig{ARTime: Untuned(), Profile: u, Power: 4}
}

// Validate reports every invalid field of c.
func (c ProfiledConfig) Validate() error {
	var errs []error
	if !c.Profile.OnlyProfiles {
		errs = append(errs, errors.New("Profile: OnlyProfiles is not set"))
	}
	if !(c.Power >= 1) {
		errs = append(errs, fmt.Errorf("Power: %v is below 1", c.Power))
	}
	return errors.Join(append(errs, c.ARTime.Validate(), c.Profile.Validate())...)
}

// Profiled is the ARTime ladder with a time of day: ARTime sees only the
// shape of the last few downsampled values, so a day that does not do what
// the days before did at that hour (a daily peak that does not come) is
// invisible to it. Beside the ladder a nab.Univariate scores the value
// against a daily profile (its hour's level, and the short average of the
// residual), ranked against its own history; its score, raised to Power,
// counts only when it beats the ladder's, so only its rarest surprises
// reach the threshold of the ladder's detections.
type Profiled struct {
	a     *Ladder
	u     *nab.Univariate
	power float64
}

// NewProfiled returns a detector with empty state; cfg must be valid.
func NewProfiled(cfg ProfiledConfig) *Profiled {
	return &Profiled{a: NewLadder(cfg.ARTime), u: nab.NewUnivariate(cfg.Profile), power: cfg.Power}
}

// Score feeds v to both models and returns the larger of the ladder's
// score and the profile's raised to Power.
func (p *Profiled) Score(t time.Time, v float64) float64 {
	return max(p.a.Score(t, v), math.Pow(p.u.Score(t, v), p.power))
}
