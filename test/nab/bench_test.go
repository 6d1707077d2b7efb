package nab

import "testing"

// BenchmarkUnivariate scores the corpus's longest files with the default
// configuration (BenchLong).
func BenchmarkUnivariate(b *testing.B) {
	cfg := DefaultUnivariate()
	BenchLong(b, func() Detector { return NewUnivariate(cfg) })
}
