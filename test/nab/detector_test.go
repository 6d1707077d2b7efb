package nab

import (
	"testing"
)

// TestDetectorsOnNAB runs each detector with its default configuration
// over the whole corpus and guards the recorded figures (BENCHMARKS.md)
// for all files and for the held-out half (split.go) against regressions.
// `make bench-nab` prints the tables.
func TestDetectorsOnNAB(t *testing.T) {
	if testing.Short() {
		t.Skip("the corpus runs take a few seconds")
	}
	c := testCorpus(t)
	type floors map[string]float64
	for _, d := range []struct {
		name         string
		newDetector  func() Detector
		all, heldOut floors
	}{
		{
			"Univariate", func() Detector { return NewUnivariate(DefaultUnivariate()) },
			floors{"standard": 63, "reward_low_FP_rate": 50, "reward_low_FN_rate": 69},
			floors{"standard": 60, "reward_low_FP_rate": 44, "reward_low_FN_rate": 67},
		},
		{
			"ARTimeLadder", func() Detector { return NewARTimeLadder(DefaultARTime()) },
			floors{"standard": 69, "reward_low_FP_rate": 59, "reward_low_FN_rate": 74},
			floors{"standard": 68, "reward_low_FP_rate": 60, "reward_low_FN_rate": 73},
		},
		{
			"Ensemble", func() Detector { return NewEnsemble(DefaultEnsemble()) },
			floors{"standard": 69, "reward_low_FP_rate": 51, "reward_low_FN_rate": 77},
			floors{"standard": 67, "reward_low_FP_rate": 52, "reward_low_FN_rate": 76},
		},
	} {
		scores := c.Run(d.newDetector, 0)
		for _, part := range []struct {
			name  string
			c     *Corpus
			floor floors
		}{
			{"all files", c, d.all},
			{"held-out half", c.Half(HeldOut), d.heldOut},
		} {
			results, err := part.c.Score(scores)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range results {
				t.Logf("%s, %s: %-18s %6.2f (threshold %.4f, %d/%d windows, %d false positives)", d.name, part.name, r.Profile, r.Normalized, r.Threshold, r.Detected, part.c.Windows(), r.FP)
				if r.Normalized < part.floor[r.Profile] {
					t.Errorf("%s, %s: %s: %.2f, below the recorded %.0f", d.name, part.name, r.Profile, r.Normalized, part.floor[r.Profile])
				}
			}
		}
	}
}
