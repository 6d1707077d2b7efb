package nab

import (
	"slices"
	"testing"
	"time"
)

// seen records the values a detector is given and scores each with it.
type seen struct{ got []float64 }

func (s *seen) Score(_ time.Time, v float64) float64 {
	s.got = append(s.got, v)
	return v
}

func TestLateHidesTheFirstPoints(t *testing.T) {
	inner := &seen{}
	d := Late(inner, 2)
	var out []float64
	for _, v := range []float64{1, 2, 3, 4} {
		out = append(out, d.Score(time.Time{}, v))
	}
	if want := []float64{0, 0, 3, 4}; !slices.Equal(out, want) {
		t.Errorf("scores %v, want %v", out, want)
	}
	if want := []float64{3, 4}; !slices.Equal(inner.got, want) {
		t.Errorf("detector saw %v, want %v", inner.got, want)
	}
	if d := Late(inner, 0); d != Detector(inner) {
		t.Errorf("Late(d, 0) = %T, want d itself", d)
	}
}
