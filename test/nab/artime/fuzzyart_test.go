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

// randomART returns an ART of n random categories and a random sample;
// in one ART of four, one category has zero latest-value weights (its
// match is not a number).
func randomART(r *rand.Rand, n int) *ART {
	a := newART(32, 0)
	nanAt := -1
	if r.IntN(4) == 0 {
		nanAt = r.IntN(n)
	}
	for j := range n {
		w := make([]float64, a.dim)
		for k := range w {
			w[k] = r.Float64()
		}
		if j == nanAt {
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

// TestARTMatchEqualsOneByOne: match finds the same best category, the
// same NaN flag and, bit for bit, the same match and latest-value match of
// the best category and of every category at or above the upper vigilance
// (those that learn) as the one-at-a-time loop, for every count of
// categories and upper vigilances from 0 (nothing skipped) to 1.
func TestARTMatchEqualsOneByOne(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	skipped := 0
	for _, ub := range []float64{0, 0.3, 0.6, 0.9, 0.97, 1} {
		for n := 1; n <= 133; n++ {
			a := randomART(r, n)
			a.rhoUB = ub
			best, nan := a.match()
			m, me := append([]float64(nil), a.m...), append([]float64(nil), a.me...)
			refBest, refNaN := a.matchOneByOne()
			if best != refBest || nan != refNaN {
				t.Fatalf("rhoUB %v, %d categories: best %d nan %v, one by one %d %v", ub, n, best, nan, refBest, refNaN)
			}
			if nan {
				continue
			}
			for j := range a.n {
				if j != best && a.m[j] < ub {
					if math.Float64bits(m[j]) != math.Float64bits(a.m[j]) {
						skipped++
					}
					continue
				}
				if math.Float64bits(m[j]) != math.Float64bits(a.m[j]) || math.Float64bits(me[j]) != math.Float64bits(a.me[j]) {
					t.Fatalf("rhoUB %v, %d categories: category %d matches %v (%v), one by one %v (%v)", ub, n, j, m[j], me[j], a.m[j], a.me[j])
				}
			}
		}
	}
	if skipped == 0 {
		t.Error("no category's overlap was skipped: the bound was never tested")
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
