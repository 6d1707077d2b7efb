// SPDX-License-Identifier: AGPL-3.0-only
// Part of a Go translation of ARTime by Mark Hampton (github.com/markNZed/ARTimeNAB.jl); see README.md.

package artime

import (
	"math"
	"math/rand/v2"
	"testing"
)

// matchOneByOne is ART.match as it was before the categories were summed
// four at a time: the reference the faster one must equal bit for bit.
func (a *ART) matchOneByOne() (best int, nan bool) {
	d := a.dim
	ei := d/2 - 1
	x := a.x
	top := math.Inf(-1)
	for j := range a.n {
		w := a.w[j*d : (j+1)*d : (j+1)*d]
		num := 0.0
		for k, xv := range x[:d] {
			num += min(xv, w[k])
		}
		nw := a.norm[j]
		if nw == 0 {
			nw = 0.001
		}
		fs := num / nw
		es := (min(x[ei], w[ei]) + min(x[d-1], w[d-1])) / (w[ei] + w[d-1])
		m := fs * fs * fs * es * es
		if m != m {
			nan = true
		}
		a.m[j], a.me[j] = m, es
		if m > top {
			top, best = m, j
		}
	}
	return best, nan
}

// randomART returns an ART of n random categories (a few with zero
// latest-value weights, whose match is not a number) and a random sample.
func randomART(r *rand.Rand, n int) *ART {
	a := newART(32, 0)
	for range n {
		w := make([]float64, a.dim)
		for k := range w {
			w[k] = r.Float64()
		}
		if r.IntN(16) == 0 {
			w[a.dim/2-1], w[a.dim-1] = 0, 0
		}
		a.add(w, 1)
	}
	for k := range a.dim / 2 {
		v := r.Float64()
		a.x[k], a.x[k+a.dim/2] = v, 1-v
	}
	return &a
}

// TestARTMatchEqualsOneByOne: the interleaved match gives the same
// matches, best category and NaN flag as one category at a time, bit for
// bit, for every count of categories (the remainder after the groups of
// four included).
func TestARTMatchEqualsOneByOne(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for n := 1; n <= 133; n++ {
		a := randomART(r, n)
		best, nan := a.match()
		m, me := append([]float64(nil), a.m...), append([]float64(nil), a.me...)
		refBest, refNaN := a.matchOneByOne()
		if best != refBest || nan != refNaN {
			t.Fatalf("%d categories: best %d nan %v, one by one %d %v", n, best, nan, refBest, refNaN)
		}
		for j := range a.n {
			if math.Float64bits(m[j]) != math.Float64bits(a.m[j]) || math.Float64bits(me[j]) != math.Float64bits(a.me[j]) {
				t.Fatalf("%d categories: category %d matches %v (%v), one by one %v (%v)", n, j, m[j], me[j], a.m[j], a.me[j])
			}
		}
	}
}

// BenchmarkARTMatch and BenchmarkARTMatchOneByOne time one match against
// 128 categories (Default's bound), the ladder's inner loop.
func BenchmarkARTMatch(b *testing.B) {
	a := randomART(rand.New(rand.NewPCG(8, 8)), 128)
	for b.Loop() {
		a.match()
	}
}

func BenchmarkARTMatchOneByOne(b *testing.B) {
	a := randomART(rand.New(rand.NewPCG(8, 8)), 128)
	for b.Loop() {
		a.matchOneByOne()
	}
}
