package nab

import (
	"testing"
)

// TestUnivariateOnNAB runs Univariate with its default configuration over
// the whole corpus and guards the recorded figures (BENCHMARKS.md) for all
// files and for the held-out half (split.go) against regressions. `make
// bench-nab` prints the tables.
func TestUnivariateOnNAB(t *testing.T) {
	if testing.Short() {
		t.Skip("the corpus run takes a few seconds")
	}
	c := testCorpus(t)
	cfg := DefaultUnivariate()
	scores := c.Run(func() Detector { return NewUnivariate(cfg) }, 0)
	for _, part := range []struct {
		name  string
		c     *Corpus
		floor map[string]float64
	}{
		{"all files", c, map[string]float64{"standard": 63, "reward_low_FP_rate": 50, "reward_low_FN_rate": 69}},
		{"held-out half", c.Half(HeldOut), map[string]float64{"standard": 60, "reward_low_FP_rate": 44, "reward_low_FN_rate": 67}},
	} {
		results, err := part.c.Score(scores)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range results {
			t.Logf("%s: %-18s %6.2f (threshold %.4f, %d/%d windows, %d false positives)", part.name, r.Profile, r.Normalized, r.Threshold, r.Detected, part.c.Windows(), r.FP)
			if r.Normalized < part.floor[r.Profile] {
				t.Errorf("%s: %s: %.2f, below the recorded %.0f", part.name, r.Profile, r.Normalized, part.floor[r.Profile])
			}
		}
	}
}
