// SPDX-License-Identifier: AGPL-3.0-only
// Part of a Go translation of ARTime by Mark Hampton (github.com/markNZed/ARTimeNAB.jl); see README.md.

package artime

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshguard/meshguard/test/nab"
)

// TestARTimeReproducesItsPublishedScore runs the port the way ARTime runs
// under NAB (told each file's range and length) over the corpus: it must
// score what NAB's results/final_results.json records for ARTime, 74.85 /
// 65.15 / 80.36, which it does only if every step matches the Julia code.
func TestARTimeReproducesItsPublishedScore(t *testing.T) {
	if testing.Short() {
		t.Skip("the corpus run takes a few seconds")
	}
	c := nab.LoadForTest(t)
	cfg := Published()
	scores := c.RunFiles(func(f *nab.File) nab.Detector {
		return NewKnowing(cfg, slices.Min(f.Values), slices.Max(f.Values), f.Probation())
	}, 0)
	nab.CheckPublished(t, c, scores, "ARTime", 0.01)
}

func TestARTimeDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := Default()
	bad.Window, bad.Probation = 6, 10
	err := bad.Validate()
	if err == nil {
		t.Fatal("Window 6 and Probation 10 accepted")
	}
	for _, key := range []string{"Window", "Probation"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error %q does not name %s", err, key)
		}
	}
}

// TestHaarLayout checks the transform against one worked by hand in
// Wavelets.jl's layout: [s3, d3, d2, d2, d1, d1, d1, d1], each detail
// (second - first)/sqrt 2.
func TestHaarLayout(t *testing.T) {
	x := []float64{1, 2, 3, 4, 5, 6, 7, 8}
	out := make([]float64, 8)
	haar(x, out)
	r := 1 / math.Sqrt2
	want := []float64{18 * r, 8 * r, 2, 2, r, r, r, r}
	for k := range want {
		if math.Abs(out[k]-want[k]) > 1e-12 {
			t.Fatalf("haar = %v, want %v", out, want)
		}
	}
}

// TestARTimeIsCausal scores a stream and its first half with fresh
// detectors (one ARTime, the default ladder, the ensemble): the half's
// scores must be the full run's first half, and the full run must score
// something after its learning period, or the test proves nothing.
func TestARTimeIsCausal(t *testing.T) {
	ts, vs := nab.Stream(4000, 7)
	for i := 1500; i < 1510; i++ {
		vs[i] += 80
	}
	for name, newDetector := range map[string]func() nab.Detector{
		"ARTime":   func() nab.Detector { return New(Default()) },
		"ladder":   func() nab.Detector { return NewLadder(Default()) },
		"ensemble": func() nab.Detector { return NewEnsemble(DefaultEnsemble()) },
	} {
		full := nab.ScoreStream(newDetector(), ts, vs)
		half := nab.ScoreStream(newDetector(), ts[:2000], vs[:2000])
		if nab.MaxScore(full, 0, 2000) == 0 {
			t.Errorf("%s: nothing scored in the first half", name)
		}
		for i := range half {
			if half[i] != full[i] {
				t.Fatalf("%s: point %d scores %v alone and %v with the future", name, i, half[i], full[i])
			}
		}
	}
}

// TestARTimeFindsASpikeAndIsQuietOnNoise: a daily cycle with noise and one
// large spike after the learning period: the spike's neighbourhood holds
// the run's highest score, the learning period scores 0 and most points
// score 0.
func TestARTimeFindsASpikeAndIsQuietOnNoise(t *testing.T) {
	ts, vs := nab.Stream(6000, 3)
	for i := 4500; i < 4510; i++ {
		vs[i] += 150
	}
	s := scoreARTime(Default(), ts, vs)
	if m := nab.MaxScore(s, 0, Default().Probation); m != 0 {
		t.Errorf("learning period scores up to %v, want 0", m)
	}
	spike := nab.MaxScore(s, 4500, 4530)
	if spike < 0.5 {
		t.Errorf("spike scores %v, want at least 0.5", spike)
	}
	rest := max(nab.MaxScore(s, 0, 4450), nab.MaxScore(s, 4600, len(s)))
	if rest >= spike {
		t.Errorf("elsewhere up to %v, not below the spike's %v", rest, spike)
	}
	nonzero := 0
	for _, x := range s {
		if x != 0 {
			nonzero++
		}
		if x < 0 || x > 1 {
			t.Fatalf("score %v out of [0, 1]", x)
		}
	}
	if nonzero > len(s)/100 {
		t.Errorf("%d of %d points score above 0, want at most 1%%", nonzero, len(s))
	}
}

// TestARTimeCategoriesAreBounded: on a long random walk, which makes new
// categories all the time, MaxCategories holds.
func TestARTimeCategoriesAreBounded(t *testing.T) {
	cfg := Default()
	cfg.MaxCategories = 64
	a := New(cfg)
	r := rand.New(rand.NewPCG(1, 2))
	v := 0.0
	t0 := time.Unix(0, 0)
	for i := range 50000 {
		v += r.NormFloat64()
		a.Score(t0.Add(time.Duration(i)*time.Minute), v)
	}
	if a.art.n != 64 {
		t.Errorf("%d categories, want the bound, 64", a.art.n)
	}
	u := New(Published())
	for i := range 50000 {
		u.Score(t0, float64(i%97)+r.NormFloat64())
	}
	if u.art.n <= 64 {
		t.Errorf("unbounded: %d categories; the bound was never tested", u.art.n)
	}
}

func scoreARTime(cfg Config, ts []time.Time, vs []float64) []float64 {
	return nab.ScoreStream(New(cfg), ts, vs)
}

// TestARTimeLadderScoresShortStreams: a spike at point 400 is past the
// ladder's shortest learning period (170) but inside the longest (750): the
// ladder finds it, a single ARTime with the longest period cannot.
func TestARTimeLadderScoresShortStreams(t *testing.T) {
	ts, vs := nab.Stream(1200, 5)
	for i := 400; i < 406; i++ {
		vs[i] += 150
	}
	ladder := nab.ScoreStream(NewLadder(Default()), ts, vs)
	single := scoreARTime(Default(), ts, vs)
	if m := nab.MaxScore(single, 0, 750); m != 0 {
		t.Fatalf("single ARTime scores %v within its learning period", m)
	}
	if m := nab.MaxScore(ladder, 400, 430); m < 0.5 {
		t.Errorf("ladder scores the spike %v, want at least 0.5", m)
	}
	if m := nab.MaxScore(ladder, 0, 170); m != 0 {
		t.Errorf("ladder scores %v within its shortest learning period", m)
	}
}

// TestARTRescaleIsExact: weights learned on one scale and mapped to
// another equal the weights learned on the other scale directly (the
// fuzzy AND commutes with an increasing affine map).
func TestARTRescaleIsExact(t *testing.T) {
	const window = 2
	r := rand.New(rand.NewPCG(4, 4))
	samples := make([][]float64, 5)
	for k := range samples {
		samples[k] = []float64{r.Float64(), r.Float64(), 0.2 + 0.5*r.Float64(), 0.2 + 0.5*r.Float64()}
	}
	k, b := 0.5, 0.25
	old, fresh := newART(4*window, 0), newART(4*window, 0)
	old.rhoLB, old.rhoUB, fresh.rhoLB, fresh.rhoUB = 0, 0, 0, 0
	for _, s := range samples {
		// At vigilance 0 the all-ones first category learns every sample
		// after the first: it holds their fuzzy AND.
		old.train(s, true, 1)
		mapped := slices.Clone(s)
		for j := window; j < 2*window; j++ {
			mapped[j] = k*s[j] + b
		}
		fresh.train(mapped, true, 1)
	}
	old.rescale(0, window, k, b)
	for j := range old.w {
		if math.Abs(old.w[j]-fresh.w[j]) > 1e-12 {
			t.Fatalf("weight %d: %v rescaled, %v learned on the new scale", j, old.w[j], fresh.w[j])
		}
	}
}

// TestLadderKnowingRangeIsToldOnlyTheRange: a one-rung ladder told a
// stream's range scores exactly as ARTime told that range and the rung's
// learning period (NewKnowing), and not as the causal ladder, which
// scales by its learning period's range.
func TestLadderKnowingRangeIsToldOnlyTheRange(t *testing.T) {
	ts, vs := nab.Stream(3000, 11)
	for i := 2000; i < 2006; i++ {
		vs[i] += 150
	}
	cfg := Default()
	cfg.Rungs = nil
	lo, hi := slices.Min(vs), slices.Max(vs)
	told := nab.ScoreStream(NewLadderKnowingRange(cfg, lo, hi), ts, vs)
	want := nab.ScoreStream(NewKnowing(cfg, lo, hi, cfg.Probation), ts, vs)
	if !slices.Equal(told, want) {
		t.Fatal("the ladder told the range scores otherwise than ARTime told the range and the learning period")
	}
	if slices.Equal(told, nab.ScoreStream(NewLadder(cfg), ts, vs)) {
		t.Error("the ladder told the range scores as the causal one: the range was not used")
	}
	if nab.MaxScore(told, 2000, 2030) == 0 {
		t.Error("the ladder told the range misses the spike")
	}
}
