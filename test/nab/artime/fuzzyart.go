// SPDX-License-Identifier: AGPL-3.0-only
// Part of a Go translation of ARTime by Mark Hampton (github.com/markNZed/ARTimeNAB.jl); see README.md.

package artime

import "math"

// ART is the distributed dual-vigilance fuzzy ART of ARTime
// (AdaptiveResonanceCompact.jl, itself compacted from AdaptiveResonance.jl's
// DVFA): categories are complement-coded weight vectors; a sample's match
// with a category is its fuzzy-AND overlap, cubed, times the overlap of
// the latest value alone, squared. Every category matching above the upper
// vigilance learns the sample (fast commit: the weights become the
// fuzzy AND); when none does, the sample becomes a new category, and when
// the best match is also below the lower vigilance it is a mismatch.
type ART struct {
	dim          int // complement-coded length
	rhoLB, rhoUB float64
	w            []float64 // n categories of dim weights
	norm         []float64 // each category's L1 norm
	used         []int     // when each category last matched best or learned
	n, max       int       // categories, bound (0: none)
	x, m, me     []float64
}

func newART(dim, maxCategories int) ART {
	return ART{dim: dim, max: maxCategories, x: make([]float64, dim)}
}

// train presents f (values in [0, 1]) as the sample of time t and returns
// the best match, that category's match of the latest value, and whether
// some category resonated (matched at least the lower vigilance); with
// learning false nothing is learned. The very first sample only creates
// the all-ones category and matches nothing, as in ARTime.
func (a *ART) train(f []float64, learning bool, t int) (sim, energy float64, resonant bool) {
	d := a.dim
	for k, v := range f {
		a.x[k], a.x[k+d/2] = v, 1-v
	}
	if a.n == 0 {
		ones := make([]float64, d)
		for k := range ones {
			ones[k] = 1
		}
		a.add(ones, t)
		return 0, 0, true
	}
	best, nan := a.match()
	if nan {
		// Julia sorts a NaN match first and stops at it: no match at all.
		if learning {
			a.add(a.x, t)
		}
		return 0, 0, false
	}
	sim = a.m[best]
	a.used[best] = t
	if sim > 0 {
		energy = a.me[best]
	}
	if !learning {
		return sim, energy, false
	}
	switch {
	case sim >= a.rhoUB:
		for j := range a.n {
			if a.m[j] >= a.rhoUB {
				a.learn(j, t)
			}
		}
		return sim, energy, true
	case sim >= a.rhoLB:
		a.add(a.x, t)
		return sim, energy, true
	}
	a.add(a.x, t)
	return sim, energy, false
}

// match computes every category's match with a.x and returns the first
// best one, or nan when some match is not a number (a category whose
// latest-value weights are both 0). The overlaps of four categories are
// summed side by side, each in the order of its weights (the same sums as
// one at a time, bit for bit), so that the four additions overlap.
func (a *ART) match() (best int, nan bool) {
	d := a.dim
	x := a.x[:d:d]
	j := 0
	for ; j+4 <= a.n; j += 4 {
		w := a.w[j*d : (j+4)*d : (j+4)*d]
		w0, w1, w2, w3 := w[:d:d], w[d:2*d:2*d], w[2*d:3*d:3*d], w[3*d:]
		var n0, n1, n2, n3 float64
		for k, xv := range x {
			n0 += min(xv, w0[k])
			n1 += min(xv, w1[k])
			n2 += min(xv, w2[k])
			n3 += min(xv, w3[k])
		}
		a.setMatch(j, n0)
		a.setMatch(j+1, n1)
		a.setMatch(j+2, n2)
		a.setMatch(j+3, n3)
	}
	for ; j < a.n; j++ {
		w := a.w[j*d : (j+1)*d : (j+1)*d]
		num := 0.0
		for k, xv := range x {
			num += min(xv, w[k])
		}
		a.setMatch(j, num)
	}
	top := math.Inf(-1)
	for j, m := range a.m[:a.n] {
		if m != m {
			nan = true
		}
		if m > top {
			top, best = m, j
		}
	}
	return best, nan
}

// setMatch sets category j's match and latest-value match from num, its
// fuzzy-AND overlap with a.x.
func (a *ART) setMatch(j int, num float64) {
	d := a.dim
	ei := d/2 - 1
	w := a.w[j*d : (j+1)*d : (j+1)*d]
	nw := a.norm[j]
	if nw == 0 {
		nw = 0.001
	}
	fs := num / nw
	es := (min(a.x[ei], w[ei]) + min(a.x[d-1], w[d-1])) / (w[ei] + w[d-1])
	a.m[j], a.me[j] = fs*fs*fs*es*es, es
}

// learn makes category j the fuzzy AND of itself and a.x.
func (a *ART) learn(j, t int) {
	d := a.dim
	w := a.w[j*d : (j+1)*d]
	s := 0.0
	for k := range w {
		w[k] = min(w[k], a.x[k])
		s += w[k]
	}
	a.norm[j] = s
	a.used[j] = t
}

// add commits x as a new category, replacing the least recently used one
// when the bound is reached.
func (a *ART) add(x []float64, t int) {
	j := a.n
	if a.max > 0 && a.n >= a.max {
		j = 0
		for k := range a.n {
			if a.used[k] < a.used[j] {
				j = k
			}
		}
	} else {
		a.w = append(a.w, x...)
		a.norm = append(a.norm, 0)
		a.used = append(a.used, 0)
		a.m = append(a.m, 0)
		a.me = append(a.me, 0)
		a.n++
	}
	copy(a.w[j*a.dim:], x)
	s := 0.0
	for _, v := range x {
		s += v
	}
	a.norm[j], a.used[j] = s, t
}

// rescale maps the weights of the values (features from window to
// 2*window, of 2*window per sample) and of their complements onto a
// value scale x' = k*x + b.
func (a *ART) rescale(window int, k, b float64) {
	d := a.dim
	for j := range a.n {
		w := a.w[j*d : (j+1)*d]
		s := 0.0
		for i := range w {
			switch {
			case i >= window && i < 2*window:
				w[i] = k*w[i] + b
			case i >= 3*window:
				w[i] = k*w[i] + 1 - k - b
			}
			s += w[i]
		}
		a.norm[j] = s
	}
}
