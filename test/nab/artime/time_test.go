// SPDX-License-Identifier: AGPL-3.0-only
// Part of a Go translation of ARTime by Mark Hampton (github.com/markNZed/ARTimeNAB.jl); see README.md.

package artime

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestTimeFeaturesEncodeThePhase checks Config.TimeOfDay's features: at
// 06:00 (a quarter turn) sin is 1 and cos 0, squeezed about 0.5 by the
// weight; TimeBins rounds 07:59 down to 04:00 with 6 bins; Weekend marks
// Saturday.
func TestTimeFeaturesEncodeThePhase(t *testing.T) {
	sat6 := time.Date(2014, 4, 5, 6, 0, 0, 0, time.UTC) // a Saturday
	for _, c := range []struct {
		cfg  Config
		at   time.Time
		want []float64
	}{
		{Config{TimeOfDay: 1}, sat6, []float64{1, 0.5}},
		{Config{TimeOfDay: 0.5}, sat6, []float64{0.75, 0.5}},
		{Config{TimeOfDay: 2}, sat6, []float64{1, 0.5, 1, 0.5}},
		{Config{TimeOfDay: 1, TimeEncoding: 1}, sat6, []float64{0.5, 0}},
		{Config{TimeOfDay: 1, TimeBins: 6}, sat6.Add(119 * time.Minute), []float64{(1 + math.Sin(math.Pi/3)) / 2, (1 + math.Cos(math.Pi/3)) / 2}},
		{Config{TimeOfDay: 1, Weekend: 0.5}, sat6, []float64{1, 0.5, 0.75}},
		{Config{Weekend: 1}, sat6.AddDate(0, 0, 2), []float64{0}},
	} {
		a := &Detector{cfg: c.cfg}
		out := make([]float64, len(c.want))
		a.timeFeatures(out, c.at)
		for k := range out {
			if math.Abs(out[k]-c.want[k]) > 1e-12 {
				t.Errorf("%+v at %s: %v, want %v", c.cfg, c.at, out, c.want)
				break
			}
		}
	}
}

// TestTimeFeaturesNeedTheirSpan: a detector whose learning period spans
// less than TimeMinSpan days learns ARTime's feature vector; one whose
// learning period spans more has the time features in front of it.
func TestTimeFeaturesNeedTheirSpan(t *testing.T) {
	start := time.Date(2014, 4, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		probation, ntime int
	}{{170, 0}, {750, 2}} { // 14 hours and 62 hours of 5-minute points
		cfg := Default()
		cfg.Probation, cfg.Rungs, cfg.TimeOfDay, cfg.TimeMinSpan = c.probation, nil, 1, 1
		a := New(cfg)
		for i := range 2 * c.probation {
			a.Score(start.Add(time.Duration(i)*5*time.Minute), float64(i%50))
		}
		if a.ntime != c.ntime || a.art.dim != 2*(2*cfg.Window+c.ntime) {
			t.Errorf("learning for %d points: %d time features, ART of %d, want %d and %d", c.probation, a.ntime, a.art.dim, c.ntime, 2*(2*cfg.Window+c.ntime))
		}
	}
}

// TestARTRescaleSkipsTheTimeFeatures is TestARTRescaleIsExact with a
// leading time feature, which a rescale of the values leaves alone.
func TestARTRescaleSkipsTheTimeFeatures(t *testing.T) {
	const window, off = 2, 1
	r := rand.New(rand.NewPCG(4, 5))
	k, b := 0.5, 0.25
	old, fresh := newART(2*(off+2*window), 0), newART(2*(off+2*window), 0)
	old.rhoLB, old.rhoUB, fresh.rhoLB, fresh.rhoUB = 0, 0, 0, 0
	for range 5 {
		s := []float64{r.Float64(), r.Float64(), r.Float64(), 0.2 + 0.5*r.Float64(), 0.2 + 0.5*r.Float64()}
		old.train(s, true, 1)
		mapped := slices.Clone(s)
		for j := off + window; j < off+2*window; j++ {
			mapped[j] = k*s[j] + b
		}
		fresh.train(mapped, true, 1)
	}
	old.rescale(off, window, k, b)
	for j := range old.w {
		if math.Abs(old.w[j]-fresh.w[j]) > 1e-12 {
			t.Fatalf("weight %d: %v rescaled, %v learned on the new scale", j, old.w[j], fresh.w[j])
		}
	}
}
