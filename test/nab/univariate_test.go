package nab

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func scoreAll(ts []time.Time, vs []float64) []float64 {
	u := NewUnivariate(DefaultUnivariate())
	out := make([]float64, len(vs))
	for i := range vs {
		out[i] = u.Score(ts[i], vs[i])
	}
	return out
}

func TestUnivariateDefaultIsValid(t *testing.T) {
	if err := DefaultUnivariate().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := DefaultUnivariate()
	bad.Rates, bad.Tail = nil, 2
	err := bad.Validate()
	if err == nil {
		t.Fatal("empty Rates and Tail 2 accepted")
	}
	for _, key := range []string{"Rates", "Tail"} {
		if !contains(err.Error(), key) {
			t.Errorf("error %q does not name %s", err, key)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestUnivariateScoresInRangeAndQuietOnNoise(t *testing.T) {
	ts, vs := Stream(4000, 1)
	s := scoreAll(ts, vs)
	for i, x := range s {
		if !(x >= 0 && x <= 1) {
			t.Fatalf("score[%d] = %v, outside [0, 1]", i, x)
		}
	}
	for i := range DefaultUnivariate().Warmup {
		if s[i] != 0 {
			t.Fatalf("score[%d] = %v during warm-up", i, s[i])
		}
	}
	if m := MaxScore(s, 1000, 4000); m >= 0.6 {
		t.Errorf("largest score on plain noise after warm-up = %.3f, want < 0.6", m)
	}
}

func TestUnivariateFindsAnomalies(t *testing.T) {
	const at = 3000
	cases := map[string]func(vs []float64){
		"spike": func(vs []float64) { vs[at] += 60 },
		"dip":   func(vs []float64) { vs[at] -= 60 },
		"level shift": func(vs []float64) {
			for i := at; i < len(vs); i++ {
				vs[i] += 15
			}
		},
		"flat line": func(vs []float64) {
			for i := at; i < len(vs); i++ {
				vs[i] = 100
			}
		},
	}
	ts, clean := Stream(3500, 2)
	base := scoreAll(ts, clean)
	quiet := MaxScore(base, at, at+50)
	for name, inject := range cases {
		t.Run(name, func(t *testing.T) {
			vs := append([]float64(nil), clean...)
			inject(vs)
			s := scoreAll(ts, vs)
			got := MaxScore(s, at, at+50)
			if got < 0.45 || got <= quiet {
				t.Errorf("largest score within 50 points of the anomaly = %.3f (%.3f without it), want >= 0.45 (NAB's threshold for the default is 0.44)", got, quiet)
			}
		})
	}
}

// TestUnivariateCausal checks that a point's score does not depend on the
// points after it.
func TestUnivariateCausal(t *testing.T) {
	ts, vs := Stream(3000, 3)
	full := scoreAll(ts, vs)
	vs2 := append([]float64(nil), vs...)
	for i := 2000; i < len(vs2); i++ {
		vs2[i] = -vs2[i] * 7
	}
	changed := scoreAll(ts, vs2)
	for i := range 2000 {
		if full[i] != changed[i] {
			t.Fatalf("score[%d] changed from %v to %v when later points changed", i, full[i], changed[i])
		}
	}
	if MaxScore(changed, 2000, 2100) == MaxScore(full, 2000, 2100) {
		t.Fatal("the changed tail did not change any score: the test proves nothing")
	}
}

// TestUnivariateSuppressesRepeats checks that after a detection the next
// Suppress points score zero, and that without suppression they would not.
func TestUnivariateSuppressesRepeats(t *testing.T) {
	ts, vs := Stream(3000, 4)
	for i := 2500; i < 2520; i++ {
		vs[i] += 80 // a burst: every point of it is anomalous
	}
	cfg := DefaultUnivariate()
	run := func(cfg UnivariateConfig) []float64 {
		u := NewUnivariate(cfg)
		out := make([]float64, len(vs))
		for i := range vs {
			out[i] = u.Score(ts[i], vs[i])
		}
		return out
	}
	s := run(cfg)
	first := -1
	for i := 2500; i < 2520; i++ {
		if s[i] >= cfg.Alert {
			first = i
			break
		}
	}
	if first < 0 {
		t.Fatal("the burst was not detected")
	}
	if m := MaxScore(s, first+1, first+1+cfg.Suppress); m != 0 {
		t.Errorf("score %v within Suppress points of the detection at %d", m, first)
	}
	cfg.Suppress = 0
	if m := MaxScore(run(cfg), first+1, 2520); m < cfg.Alert {
		t.Errorf("without suppression the rest of the burst scores at most %v: the test proves nothing", m)
	}
}

func TestUnivariateIgnoresNaN(t *testing.T) {
	ts, vs := Stream(1500, 5)
	u := NewUnivariate(DefaultUnivariate())
	for i := range vs {
		u.Score(ts[i], vs[i])
	}
	if s := u.Score(ts[0], math.NaN()); s != 0 {
		t.Errorf("NaN scored %v", s)
	}
	if s := u.Score(ts[0], math.Inf(1)); s != 0 {
		t.Errorf("+Inf scored %v", s)
	}
}

func TestTailWindowRarity(t *testing.T) {
	w := tailWindow{size: 100}
	for i := range 300 {
		w.push(float64(i%100), binOf(float64(i%100))) // the last 100 pushes are 0..99
	}
	if len(w.ring) != 100 || min(w.ring[0], w.ring[99]) != 0 || max(w.ring[0], w.ring[99]) != 99 {
		t.Fatalf("window holds %d values, want the last 100 pushes", len(w.ring))
	}
	if c, sum := w.below(tailBins); c != 100 || sum != 4950 {
		t.Fatalf("the bins count %d values summing to %v, want the last 100 pushes (sum 4950): old values were not taken out", c, sum)
	}
	r := func(v float64) float64 { return w.rarity(v, binOf(v), 0.1, 0.2) }
	mid, top, beyond, far := r(50), r(99), r(120), r(200)
	if math.Abs(mid-(-math.Log10(51.0/101))) > 1e-12 {
		t.Errorf("rarity(50) = %v, want -log10(51/101)", mid)
	}
	if !(mid < top && top < beyond && beyond < far) {
		t.Errorf("rarity not increasing: %v %v %v %v", mid, top, beyond, far)
	}
}

// TestLogSurvivalIsCloseToExact checks the fast normal tail against the
// exact one (via math.Erfc) where the latter does not underflow.
func TestLogSurvivalIsCloseToExact(t *testing.T) {
	for z := 0.0; z <= 30; z += 0.05 {
		exact := -math.Log10(0.5 * math.Erfc(z/math.Sqrt2))
		if got := logSurvival(z); math.Abs(got-exact) > 0.003 {
			t.Errorf("logSurvival(%.2f) = %.5f, exact %.5f", z, got, exact)
		}
	}
}

// TestBinOfIsMonotone checks that the tail window's bins keep the order of
// the values across the linear and logarithmic ranges.
func TestBinOfIsMonotone(t *testing.T) {
	prev := binOf(0)
	for v := 0.001; v < 1e9; v *= 1.001 {
		b := binOf(v)
		if b < prev || b >= tailBins {
			t.Fatalf("binOf(%v) = %d after %d (tailBins %d)", v, b, prev, tailBins)
		}
		prev = b
	}
	if binOf(39.99) >= binOf(40) || binOf(0.29) >= binOf(0.31) {
		t.Error("neighbouring values share a bin where the bins should separate them")
	}
}

// TestTailWindowLeadingMatchesCounts checks the Fenwick descent against a
// plain count of the bins.
func TestTailWindowLeadingMatchesCounts(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	w := tailWindow{size: 500}
	var per [tailBins]int
	for range 500 {
		v := math.Abs(r.NormFloat64()) * 30
		per[binOf(v)]++
		w.push(v, binOf(v))
	}
	for _, target := range []int{0, 1, 100, 250, 490, 499} {
		want, sum := 0, 0
		for want < tailBins && sum+per[want] <= target {
			sum += per[want]
			want++
		}
		if got := w.leading(target); got != want {
			t.Errorf("leading(%d) = %d, counting the bins gives %d", target, got, want)
		}
	}
}
