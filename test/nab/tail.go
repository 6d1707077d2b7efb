package nab

import (
	"math"
	"math/bits"
	"sync"
)

// tailWindow keeps the last size values pushed (surprises, which are not
// negative) and says how rare a new value is among them: the empirical
// tail probability inside the history, and beyond its top fraction an
// exponential tail fitted to the excesses over the threshold (peaks over
// threshold), so that values larger than anything seen still rank by how
// much larger they are.
//
// The values are counted in tailBins bins (0.02 wide up to 40, then 1/128
// of an octave up to 2^28), in two Fenwick trees (counts and sums), so that a push and a rarity cost O(log tailBins) whatever the
// history's length; the ring of the last size values says which to take
// out. A sorted slice, which this replaced, cost O(size) per push.
type tailWindow struct {
	size  int
	ring  []float64
	bins  []uint16 // the bin of each ring entry
	next  int
	tree  []node // Fenwick tree of counts and sums per bin (1-based)
	total float64
}

const (
	// Below linearTop the bins are 1/linearPer wide: a detection's rarity
	// turns on the distance from the tail threshold to the value in units
	// of the tail's mean excess, which may be as small as TailFloor (0.2),
	// so the threshold must be known to a few hundredths.
	linearTop = 40
	linearPer = 50
	// Above it, 1<<binBits bins per octave, from 2^5 (32) to 2^28.
	binBits = 7
	// firstR is linearTop's bin counted from 32 (linearTop is 1.25 octaves
	// past 32).
	firstR   = (linearTop - 32) << binBits / 32
	tailBins = linearTop*linearPer + (28-5+1)<<binBits - firstR
)

// binOf is v's bin: linear below linearTop, above it from v's
// floating-point exponent and top mantissa bits (a logarithm without the
// cost of one).
func binOf(v float64) int {
	if !(v > 0) {
		return 0
	}
	if v < linearTop {
		return int(v * linearPer)
	}
	f := math.Float64bits(v)
	e := int(f>>52) - 1023 - 5
	r := e<<binBits | int(f>>(52-binBits))&(1<<binBits-1)
	return min(linearTop*linearPer+r-firstR, tailBins-1)
}

// log10Ints is log10(i) for i up to 1<<16, read-only and shared: the
// rarities of counts without a logarithm per point.
var log10Ints = sync.OnceValue(func() []float64 {
	t := make([]float64, 1<<16+1)
	for i := 1; i < len(t); i++ {
		t[i] = math.Log10(float64(i))
	}
	return t
})

// log10Of is log10(i) for i >= 1.
func log10Of(tab []float64, i int) float64 {
	if i < len(tab) {
		return tab[i]
	}
	return math.Log10(float64(i))
}

// node is a Fenwick tree node: both sums side by side, one cache line
// visit per step.
type node struct {
	cnt int32
	sum float64
}

func (w *tailWindow) add(b int, dc int32, dv float64) {
	for i := b + 1; i <= tailBins; i += i & -i {
		w.tree[i].cnt += dc
		w.tree[i].sum += dv
	}
	w.total += dv
}

// below returns the count and sum of the values in bins 0..b-1.
func (w *tailWindow) below(b int) (int, float64) {
	var c int32
	var s float64
	for i := b; i > 0; i -= i & -i {
		c += w.tree[i].cnt
		s += w.tree[i].sum
	}
	return int(c), s
}

// leading returns the largest b such that bins 0..b-1 hold at most
// target values.
func (w *tailWindow) leading(target int) int {
	pos, rem := 0, int32(target)
	for step := 1 << (bits.Len(tailBins) - 1); step > 0; step >>= 1 {
		if next := pos + step; next <= tailBins && w.tree[next].cnt <= rem {
			pos = next
			rem -= w.tree[next].cnt
		}
	}
	return pos
}

// push adds v, whose bin is b (binOf(v)), taking out the oldest value
// once the window is full.
func (w *tailWindow) push(v float64, b int) {
	if w.tree == nil {
		w.tree = make([]node, tailBins+1)
		w.ring = make([]float64, 0, w.size)
		w.bins = make([]uint16, 0, w.size)
	}
	if len(w.ring) < w.size {
		w.ring = append(w.ring, v)
		w.bins = append(w.bins, uint16(b))
	} else {
		w.add(int(w.bins[w.next]), -1, -w.ring[w.next])
		w.ring[w.next], w.bins[w.next] = v, uint16(b)
		w.next = (w.next + 1) % w.size
	}
	w.add(b, 1, v)
}

// rarity is -log10 of the estimated probability of a value at least v,
// whose bin is b (binOf(v)).
func (w *tailWindow) rarity(v float64, b int, tail, floor float64) float64 {
	n := len(w.ring)
	if n < 32 {
		return 0
	}
	k := int(max(8, tail*float64(n)))
	// bu is the bin of the k-th largest value; u, that bin's mean, stands
	// for the value.
	bu := w.leading(n - k)
	cb, sb := w.below(bu)
	ca, sa := w.below(bu + 1)
	u := (sa - sb) / float64(ca-cb)
	tab := log10Ints()
	if v <= u {
		c, _ := w.below(b)
		return log10Of(tab, n+1) - log10Of(tab, n-c+1)
	}
	// The k largest: those above bin bu, and the rest of k at about u.
	excess := (w.total - sa) - float64(n-ca)*u
	beta := max(excess/float64(k), floor)
	return log10Of(tab, n+1) - log10Of(tab, k) + (v-u)/beta/math.Ln10
}
