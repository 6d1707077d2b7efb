// SPDX-License-Identifier: AGPL-3.0-only
// Part of a Go translation of ARTime by Mark Hampton (github.com/markNZed/ARTimeNAB.jl); see README.md.

package artime

import (
	"testing"

	"github.com/meshguard/meshguard/test/nab"
)

// TestDetectorsOnNAB runs the ladder and the ensemble with their default
// configurations over the whole corpus and guards the recorded figures
// (BENCHMARKS.md) for all files and for the held-out half against
// regressions. `make bench-nab` prints the tables.
func TestDetectorsOnNAB(t *testing.T) {
	if testing.Short() {
		t.Skip("the corpus runs take a few seconds")
	}
	c := nab.LoadForTest(t)
	nab.CheckFloors(t, c, "Ladder", func() nab.Detector { return NewLadder(Default()) },
		nab.Floors{"standard": 71.5, "reward_low_FP_rate": 63, "reward_low_FN_rate": 76.5},
		nab.Floors{"standard": 69.5, "reward_low_FP_rate": 60, "reward_low_FN_rate": 74.5})
	nab.CheckFloors(t, c, "Untuned", func() nab.Detector { return NewLadder(Untuned()) },
		nab.Floors{"standard": 69, "reward_low_FP_rate": 59, "reward_low_FN_rate": 74},
		nab.Floors{"standard": 68, "reward_low_FP_rate": 60, "reward_low_FN_rate": 73})
	nab.CheckFloors(t, c, "Ensemble", func() nab.Detector { return NewEnsemble(DefaultEnsemble()) },
		nab.Floors{"standard": 69, "reward_low_FP_rate": 51, "reward_low_FN_rate": 77},
		nab.Floors{"standard": 67, "reward_low_FP_rate": 52, "reward_low_FN_rate": 76})
}
