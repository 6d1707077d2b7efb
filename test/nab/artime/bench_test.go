// SPDX-License-Identifier: AGPL-3.0-only
// Part of a Go translation of ARTime by Mark Hampton (github.com/markNZed/ARTimeNAB.jl); see README.md.

package artime

import (
	"testing"

	"github.com/meshguard/meshguard/test/nab"
)

// BenchmarkARTime is nab.BenchmarkUnivariate for the default ladder.
func BenchmarkARTime(b *testing.B) {
	cfg := Default()
	nab.BenchLong(b, func() nab.Detector { return NewLadder(cfg) })
}

// BenchmarkUntunedARTime is BenchmarkARTime for the ladder with ARTime's
// own constants (Untuned), the peer of the default's speed.
func BenchmarkUntunedARTime(b *testing.B) {
	cfg := Untuned()
	nab.BenchLong(b, func() nab.Detector { return NewLadder(cfg) })
}

// BenchmarkPublishedARTime is BenchmarkARTime for ARTime as published
// (one learning period of 750 points, no bound on its categories).
func BenchmarkPublishedARTime(b *testing.B) {
	cfg := Published()
	nab.BenchLong(b, func() nab.Detector { return New(cfg) })
}

// BenchmarkEnsemble is BenchmarkARTime for the default Ensemble.
func BenchmarkEnsemble(b *testing.B) {
	cfg := DefaultEnsemble()
	nab.BenchLong(b, func() nab.Detector { return NewEnsemble(cfg) })
}

// BenchmarkProfiled is BenchmarkARTime for the default Profiled.
func BenchmarkProfiled(b *testing.B) {
	cfg := DefaultProfiled()
	nab.BenchLong(b, func() nab.Detector { return NewProfiled(cfg) })
}

// BenchmarkARTimeTimeOfDay is BenchmarkARTime for the ladder with the
// best time-of-day input tried (BENCHMARKS.md; not the default).
func BenchmarkARTimeTimeOfDay(b *testing.B) {
	cfg := Default()
	cfg.TimeOfDay, cfg.TimeMinSpan, cfg.TimeBins = 0.5, 1, 6
	nab.BenchLong(b, func() nab.Detector { return NewLadder(cfg) })
}
