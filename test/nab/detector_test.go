package nab

import (
	"testing"
)

// TestUnivariateOnNAB runs Univariate with its default
// configuration over the whole corpus and guards the recorded figures
// (BENCHMARKS.md) against regressions. `make bench-nab` prints the table.
func TestUnivariateOnNAB(t *testing.T) {
	if testing.Short() {
		t.Skip("the corpus run takes a few seconds")
	}
	c := testCorpus(t)
	cfg := DefaultUnivariate()
	scores := c.Run(func() Detector { return NewUnivariate(cfg) }, 0)
	results, err := c.Score(scores)
	if err != nil {
		t.Fatal(err)
	}
	floor := map[string]float64{"standard": 65, "reward_low_FP_rate": 52, "reward_low_FN_rate": 72}
	for _, r := range results {
		t.Logf("%-18s %6.2f (threshold %.4f, %d/%d windows, %d false positives)", r.Profile, r.Normalized, r.Threshold, r.Detected, c.Windows(), r.FP)
		if r.Normalized < floor[r.Profile] {
			t.Errorf("%s: %.2f, below the recorded %.0f", r.Profile, r.Normalized, floor[r.Profile])
		}
	}
}
