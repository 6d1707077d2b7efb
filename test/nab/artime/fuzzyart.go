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
	tail         []float64 // the sum of each category's second half of weights (match's bound)
	used         []int     // when each category last matched best or learned
	n, max       int       // categories, bound (0: none)
	et           int       // leading features (time) counted in the latest-value match too
	fixed        int       // leading features (time) a category never learns: they stay as committed
	x, m, me     []float64
	cand         []int     // match's categories whose overlap is summed
	part         []float64 // and the first half of each one's overlap
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

// match computes the match with a.x of every category that could be the
// best one or could learn a.x (match at least rhoUB), and returns the
// first best one, or nan when some match is not a number (a category whose
// latest-value weights are both 0). A category's match is its overlap fs
// (at most 1, weights and sample being in [0, 1]) cubed times its
// latest-value match es squared, so es*es bounds it from above, in
// floating point too; so does, with a little slack for rounding, the
// overlap of the first half of the weights plus the sum of the second
// half. A category whose bound is below both rhoUB and the match of the
// category with the largest es can neither be the best nor learn: its
// overlap is not summed (or not past the half), and its a.m is left at
// the bound. The overlaps are summed four categories side by side, each
// in the order of its weights, so every match computed is the
// one-at-a-time loop's, bit for bit (TestARTMatchEqualsOneByOne; on NAB,
// the ladder's work falls from 812 to about 500 minima per point, ARTime
// as published's from 859 to 285).
func (a *ART) match() (best int, nan bool) {
	d := a.dim
	ei := d/2 - 1
	x := a.x[:d:d]
	for _, v := range x {
		if v != v || v < 0 {
			return a.matchAll()
		}
	}
	top, first := -1.0, 0
	for j := range a.n {
		w := a.w[j*d : (j+1)*d : (j+1)*d]
		es := (min(x[ei], w[ei]) + min(x[d-1], w[d-1])) / (w[ei] + w[d-1])
		if a.et > 0 {
			es = a.energy(x, w)
		}
		if !(es >= 0) {
			return a.matchAll()
		}
		a.me[j], a.m[j] = es, es*es
		if a.m[j] > top {
			top, first = a.m[j], j
		}
	}
	a.setMatchES(first, a.overlap(first))
	bound := min(a.rhoUB, a.m[first])
	cand := a.cand[:0]
	for j := range a.n {
		if j != first && a.m[j] >= bound {
			cand = append(cand, j)
		}
	}
	a.cand = cand
	// The first half of each candidate's overlap; the second is at most
	// the sum of its second half of weights (up to rounding, which the
	// slack covers), so a candidate whose bound is then below the bound
	// is dropped. The others go on summing from the half, in order.
	h := d / 2
	part := a.part[:0]
	k := 0
	for ; k+4 <= len(cand); k += 4 {
		j0, j1, j2, j3 := cand[k], cand[k+1], cand[k+2], cand[k+3]
		w0, w1, w2, w3 := a.w[j0*d:j0*d+h:j0*d+h], a.w[j1*d:j1*d+h:j1*d+h], a.w[j2*d:j2*d+h:j2*d+h], a.w[j3*d:j3*d+h:j3*d+h]
		var n0, n1, n2, n3 float64
		for i, xv := range x[:h:h] {
			n0 += min(xv, w0[i])
			n1 += min(xv, w1[i])
			n2 += min(xv, w2[i])
			n3 += min(xv, w3[i])
		}
		part = append(part, n0, n1, n2, n3)
	}
	for _, j := range cand[k:] {
		w := a.w[j*d : j*d+h : j*d+h]
		n := 0.0
		for i, xv := range x[:h:h] {
			n += min(xv, w[i])
		}
		part = append(part, n)
	}
	a.part = part
	keep := 0
	for c, j := range cand {
		nw := a.norm[j]
		if nw == 0 {
			nw = 0.001
		}
		fs, es := (part[c]+a.tail[j])/nw, a.me[j]
		if ub := fs * fs * fs * es * es * (1 + 1e-9); ub < bound {
			a.m[j] = ub
			continue
		}
		cand[keep], part[keep] = j, part[c]
		keep++
	}
	cand, part = cand[:keep], part[:keep]
	k = 0
	for ; k+4 <= len(cand); k += 4 {
		j0, j1, j2, j3 := cand[k], cand[k+1], cand[k+2], cand[k+3]
		w0, w1, w2, w3 := a.w[j0*d+h:(j0+1)*d:(j0+1)*d], a.w[j1*d+h:(j1+1)*d:(j1+1)*d], a.w[j2*d+h:(j2+1)*d:(j2+1)*d], a.w[j3*d+h:(j3+1)*d:(j3+1)*d]
		n0, n1, n2, n3 := part[k], part[k+1], part[k+2], part[k+3]
		for i, xv := range x[h:] {
			n0 += min(xv, w0[i])
			n1 += min(xv, w1[i])
			n2 += min(xv, w2[i])
			n3 += min(xv, w3[i])
		}
		a.setMatchES(j0, n0)
		a.setMatchES(j1, n1)
		a.setMatchES(j2, n2)
		a.setMatchES(j3, n3)
	}
	for c, j := range cand[k:] {
		w := a.w[j*d+h : (j+1)*d : (j+1)*d]
		n := part[k+c]
		for i, xv := range x[h:] {
			n += min(xv, w[i])
		}
		a.setMatchES(j, n)
	}
	top = math.Inf(-1)
	for j, m := range a.m[:a.n] {
		if m > top {
			top, best = m, j
		}
	}
	return best, false
}

// matchAll is match without the bound: every category's match, for a
// sample or weights outside [0, 1] or a match that is not a number.
func (a *ART) matchAll() (best int, nan bool) {
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
		a.setMatch(j, a.overlap(j))
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

// energy is the latest-value match of weights w with sample x: the
// overlap of the latest value and its complement (and of the first a.et
// features and their complements) over those weights' sum.
func (a *ART) energy(x, w []float64) float64 {
	d := a.dim
	ei := d/2 - 1
	num, den := min(x[ei], w[ei])+min(x[d-1], w[d-1]), w[ei]+w[d-1]
	for k := range a.et {
		num += min(x[k], w[k]) + min(x[d/2+k], w[d/2+k])
		den += w[k] + w[d/2+k]
	}
	return num / den
}

// setMatchES is setMatch for a category whose latest-value match a.me[j]
// is already set.
func (a *ART) setMatchES(j int, num float64) {
	nw := a.norm[j]
	if nw == 0 {
		nw = 0.001
	}
	fs, es := num/nw, a.me[j]
	a.m[j] = fs * fs * fs * es * es
}

// overlap is category j's fuzzy-AND overlap with a.x, |x AND w|.
func (a *ART) overlap(j int) float64 {
	d := a.dim
	w := a.w[j*d : (j+1)*d : (j+1)*d]
	num := 0.0
	for k, xv := range a.x[:d:d] {
		num += min(xv, w[k])
	}
	return num
}

// setMatch sets category j's match and latest-value match from num, its
// fuzzy-AND overlap with a.x.
func (a *ART) setMatch(j int, num float64) {
	d := a.dim
	w := a.w[j*d : (j+1)*d : (j+1)*d]
	nw := a.norm[j]
	if nw == 0 {
		nw = 0.001
	}
	fs := num / nw
	es := a.energy(a.x, w)
	a.m[j], a.me[j] = fs*fs*fs*es*es, es
}

// learn makes category j the fuzzy AND of itself and a.x.
func (a *ART) learn(j, t int) {
	d := a.dim
	w := a.w[j*d : (j+1)*d]
	for k := range w {
		if a.fixed == 0 || k%(d/2) >= a.fixed {
			w[k] = min(w[k], a.x[k])
		}
	}
	a.setNorm(j)
	a.used[j] = t
}

// setNorm sets category j's norm (its weights summed in order) and the
// sum of its second half of weights.
func (a *ART) setNorm(j int) {
	d := a.dim
	w := a.w[j*d : (j+1)*d : (j+1)*d]
	s, tail := 0.0, 0.0
	for _, v := range w {
		s += v
	}
	for _, v := range w[d/2:] {
		tail += v
	}
	a.norm[j], a.tail[j] = s, tail
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
		a.tail = append(a.tail, 0)
		a.used = append(a.used, 0)
		a.m = append(a.m, 0)
		a.me = append(a.me, 0)
		a.n++
	}
	copy(a.w[j*a.dim:], x)
	a.setNorm(j)
	a.used[j] = t
}

// rescale maps the weights of the values (features from off+window to
// off+2*window, the last of each sample's) and of their complements onto a
// value scale x' = k*x + b.
func (a *ART) rescale(off, window int, k, b float64) {
	d := a.dim
	for j := range a.n {
		w := a.w[j*d : (j+1)*d]
		for i := range w {
			switch {
			case i >= off+window && i < off+2*window:
				w[i] = k*w[i] + b
			case i >= d/2+off+window:
				w[i] = k*w[i] + 1 - k - b
			}
		}
		a.setNorm(j)
	}
}
