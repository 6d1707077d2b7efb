package detect

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/meshguard/meshguard/models"
)

func TestCountSurprisePoissonTail(t *testing.T) {
	m := DefaultModel()
	var s models.Series
	for i := 0; i < 500; i++ {
		m.Learn(&s, float64([]int{0, 1, 2, 1}[i%4])) // mean 1
	}
	// P(X >= 10 | lambda 1) = 1.11e-7.
	exp, score, model := m.Surprise(s, 10, 1, true)
	if math.Abs(exp-1) > 0.05 || model != "poisson" {
		t.Fatalf("expected ~1 via poisson, got %v via %s", exp, model)
	}
	if math.Abs(score-6.95) > 0.2 {
		t.Fatalf("score %v, want about 6.95", score)
	}
	if _, s0, _ := m.Surprise(s, 1, 1, true); s0 > 0.5 {
		t.Fatalf("an ordinary count scored %v", s0)
	}
}

func TestOverdispersedCountsUseNegativeBinomial(t *testing.T) {
	m := DefaultModel()
	var s models.Series
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		m.Learn(&s, float64(r.IntN(40))) // mean ~20, sd ~11.5: overdispersed
	}
	_, pois, _ := m.countSurprise(20, 0, 45)
	_, nb, model := m.Surprise(s, 45, 1, true)
	if model != "negbin" || nb >= pois {
		t.Fatalf("model %s score %v; poisson would say %v", model, nb, pois)
	}
}

func TestLearnResistsSlowPoisoning(t *testing.T) {
	m := DefaultModel()
	var s models.Series
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 3600; i++ { // ten hours of 10 s windows at ~100
		m.Learn(&s, 100+r.NormFloat64()*10)
	}
	// Three hours ramping to ten times the rate.
	for i := 0; i < 1080; i++ {
		m.Learn(&s, 100+900*float64(i)/1080)
	}
	if s.Level > 130 {
		t.Fatalf("a three-hour ramp moved the level to %v", s.Level)
	}
	if _, score, _ := m.Surprise(s, 1000, 1, true); score < 10 {
		t.Fatalf("ten times the baseline scored only %v after the ramp", score)
	}
}
