// SPDX-License-Identifier: AGPL-3.0-only
// Part of a Go translation of ARTime by Mark Hampton (github.com/markNZed/ARTimeNAB.jl); see README.md.

package artime

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/meshguard/meshguard/test/nab"
)

// dailyJumps is n points, 5 minutes apart, of a level that jumps from 20
// to 80 for 8 hours every day (NAB's art_daily_jumpsup style), with a
// little noise; on day skip the jump does not come.
func dailyJumps(n, skip int) ([]time.Time, []float64) {
	r := rand.New(rand.NewPCG(3, 3))
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	ts, vs := make([]time.Time, n), make([]float64, n)
	for i := range n {
		ts[i] = t0.Add(time.Duration(i) * 5 * time.Minute)
		day, into := i/288, i%288
		vs[i] = 20 + r.NormFloat64()
		if into >= 96 && into < 192 && day != skip {
			vs[i] = 80 + r.NormFloat64()
		}
	}
	return ts, vs
}

// TestProfiledFindsAMissingDailyJump: on the day the jump does not come
// the ladder sees a flat stretch like every night's and scores nothing,
// while Profiled, through its daily profile, scores it above the ladder's
// threshold on NAB (0.37 on the tuning half); on the ordinary days before
// the profile adds nothing that high to the ladder's scores.
func TestProfiledFindsAMissingDailyJump(t *testing.T) {
	const skip = 10
	ts, vs := dailyJumps(14*288, skip)
	from, to := skip*288+96, skip*288+192
	ladder := nab.ScoreStream(NewLadder(Untuned()), ts, vs) // Profiled's own ladder
	profiled := nab.ScoreStream(NewProfiled(DefaultProfiled()), ts, vs)
	if m := nab.MaxScore(ladder, from, to); m >= 0.37 {
		t.Errorf("the ladder scores the missing jump %v: the profile is not needed", m)
	}
	if m := nab.MaxScore(profiled, from, to); m < 0.37 {
		t.Errorf("Profiled scores the missing jump %v, want at least 0.37", m)
	}
	for i := 3 * 288; i < skip*288; i++ {
		if profiled[i] != ladder[i] && profiled[i] >= 0.37 {
			t.Fatalf("the profile scores %v at point %d, an ordinary day's", profiled[i], i)
		}
	}
}

func TestProfiledConfigValidates(t *testing.T) {
	if err := DefaultProfiled().Validate(); err != nil {
		t.Fatal(err)
	}
	c := DefaultProfiled()
	c.Profile.OnlyProfiles, c.Power = false, 0.5
	if err := c.Validate(); err == nil {
		t.Error("a profile model scoring everything and a power below 1 pass")
	}
	c = DefaultProfiled()
	c.Profile.Seasonal = 0
	if err := c.Validate(); err == nil {
		t.Error("OnlyProfiles without a profile passes")
	}
}
