package nab

import (
	"testing"
)

// TestDetectorsOnNAB runs Univariate with its default configuration over
// the whole corpus and guards the recorded figures (BENCHMARKS.md) for all
// files and for the held-out half (split.go) against regressions (the
// ARTime detectors' are in test/nab/artime). `make bench-nab` prints the
// tables.
func TestDetectorsOnNAB(t *testing.T) {
	if testing.Short() {
		t.Skip("the corpus runs take a few seconds")
	}
	CheckFloors(t, LoadForTest(t), "Univariate", func() Detector { return NewUnivariate(DefaultUnivariate()) },
		Floors{"standard": 63, "reward_low_FP_rate": 50, "reward_low_FN_rate": 69},
		Floors{"standard": 60, "reward_low_FP_rate": 44, "reward_low_FN_rate": 67})
}
