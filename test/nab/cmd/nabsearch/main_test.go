package main

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/meshguard/meshguard/test/nab"
	"github.com/meshguard/meshguard/test/nab/artime"
)

// TestSettingsRoundTrip checks that a flattened setting reaches the field
// it names once nested and merged over artime.Untuned(), and that the
// others keep their defaults.
func TestSettingsRoundTrip(t *testing.T) {
	flat := map[string]any{"K.WEnergy": 2.5, "Takeover": 0.3}
	cfg := artime.Untuned()
	b, _ := json.Marshal(nest(flat))
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	want := artime.Untuned()
	want.K.WEnergy, want.Takeover = 2.5, 0.3
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("merged %s: got %+v, want %+v", b, cfg, want)
	}
	if got := flatten(nest(flat), ""); !reflect.DeepEqual(got, flat) {
		t.Fatalf("flatten(nest(%v)) = %v", flat, got)
	}
	if got := currentValue(map[string]any{}, "K.Mask"); got != artime.Untuned().K.Mask {
		t.Fatalf("currentValue K.Mask = %v, want the default %v", got, artime.Untuned().K.Mask)
	}
}

// TestCandidatesStayInRange checks that factors are clamped to a setting's
// bounds and that neither the current value nor a clamped duplicate is
// tried again.
func TestCandidatesStayInRange(t *testing.T) {
	p := param{path: "x", factors: []float64{0.5, 1, 4, 8}, lo: 0, hi: 1}
	got := candidates(p, 0.4)
	want := []any{0.2, 1.0}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("candidates = %v, want %v", got, want)
	}
	if got := candidates(param{values: []any{1, 2}}, 1); !reflect.DeepEqual(got, []any{2}) {
		t.Fatalf("fixed candidates = %v, want [2]", got)
	}
}

// TestFitKeepsTheOtherQuarterBack checks that -fit q1 and q2 search one
// alternating quarter of the tuning half and keep the other back, that
// the two are disjoint and together the half, and that a wrong name is
// refused.
func TestFitKeepsTheOtherQuarterBack(t *testing.T) {
	tune := &nab.Corpus{}
	for _, rel := range []string{"a", "b", "c", "d", "e"} {
		tune.Files = append(tune.Files, &nab.File{Rel: rel})
	}
	names := func(c *nab.Corpus) (out []string) {
		for _, f := range c.Files {
			out = append(out, f.Rel)
		}
		return out
	}
	for fit, want := range map[string][2][]string{
		"q1": {{"a", "c", "e"}, {"b", "d"}},
		"q2": {{"b", "d"}, {"a", "c", "e"}},
	} {
		got, back, err := fitSet(tune, fit)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(names(got), want[0]) || !reflect.DeepEqual(names(back), want[1]) {
			t.Errorf("-fit %s: searched %v, kept back %v; want %v", fit, names(got), names(back), want)
		}
	}
	if got, back, err := fitSet(tune, "tuning"); err != nil || got != tune || back != nil {
		t.Errorf("-fit tuning: got %v, %v, %v; want the half itself and nothing kept back", got, back, err)
	}
	if _, _, err := fitSet(tune, "held-out"); err == nil {
		t.Error("-fit held-out: no error")
	}
}
