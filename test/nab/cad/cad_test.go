package cad

import (
	"slices"
	"strings"
	"testing"

	"github.com/meshguard/meshguard/test/nab"
)

// TestCADReproducesItsPublishedScore runs the port as NAB runs CAD OSE
// (told each file's range, RestPeriod a fifth of its probationary period)
// over the corpus: it must score what NAB's results/final_results.json
// records for contextOSE, 69.90 / 66.98 / 73.18.
func TestCADReproducesItsPublishedScore(t *testing.T) {
	if testing.Short() {
		t.Skip("the corpus run takes several seconds")
	}
	c := nab.LoadForTest(t)
	scores := c.RunFiles(func(f *nab.File) nab.Detector {
		cfg := Published()
		cfg.RestPeriod = f.Probation() / 5
		return NewKnowing(cfg, slices.Min(f.Values), slices.Max(f.Values))
	}, 0)
	nab.CheckPublished(t, c, scores, "contextOSE", 0.01)
}

func TestValueFacts(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want []int64
	}{
		{0, []int64{0, 2, 4}},
		{5, []int64{1, 2, 5}},    // 101
		{7, []int64{1, 3, 5}},    // 111
		{9, []int64{1, 2, 4, 7}}, // 1001: past the range, a fourth bit
		{-2, []int64{-1, 0, 3, 4}},
	} {
		if got := valueFacts(c.n, 3); !slices.Equal(got, c.want) {
			t.Errorf("valueFacts(%d) = %v, want %v", c.n, got, c.want)
		}
	}
}

func TestConfigValidateNamesTheKey(t *testing.T) {
	if err := DefaultCausal().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := DefaultCausal()
	bad.CAD.RestPeriod, bad.Keep = 0, 0
	err := bad.Validate()
	if err == nil {
		t.Fatal("RestPeriod 0 and Keep 0 accepted")
	}
	for _, key := range []string{"RestPeriod", "Keep"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error %q does not name %s", err, key)
		}
	}
}

// TestCausalIsCausal scores a stream and its first half with fresh
// detectors: the half's scores must be the full run's first half, and the
// first half must score something, or the test proves nothing.
func TestCausalIsCausal(t *testing.T) {
	ts, vs := nab.Stream(3000, 3)
	for i := 1200; i < 1210; i++ {
		vs[i] += 80
	}
	full := nab.ScoreStream(NewCausal(DefaultCausal()), ts, vs)
	half := nab.ScoreStream(NewCausal(DefaultCausal()), ts[:1500], vs[:1500])
	if nab.MaxScore(full, 0, 1500) == 0 {
		t.Fatal("nothing scored in the first half")
	}
	for i := range half {
		if half[i] != full[i] {
			t.Fatalf("point %d scores %v alone and %v with the future", i, half[i], full[i])
		}
	}
}

// TestCausalRestartsOnANewRange: a level shift beyond everything seen
// restarts the detector (once for the shift, more only for the shifted
// level's own noise past the margin), scores the shift highly, and the
// first Learn points score 0.
func TestCausalRestartsOnANewRange(t *testing.T) {
	ts, vs := nab.Stream(3000, 5)
	for i := 2000; i < len(vs); i++ {
		vs[i] += 200
	}
	d := NewCausal(DefaultCausal())
	s := nab.ScoreStream(d, ts, vs)
	if m := nab.MaxScore(s, 0, DefaultCausal().Learn-1); m != 0 {
		t.Errorf("the learning points score up to %v, want 0", m)
	}
	if d.Restarts < 2 || d.Restarts > 10 {
		t.Errorf("%d restarts: want the first start, the shift's and a few more", d.Restarts)
	}
	if m := nab.MaxScore(s, 2000, 2010); m < 0.75 {
		t.Errorf("the shift scores at most %v, want at least 0.75", m)
	}
}

// BenchmarkCAD: go test -run '^$' -bench . -benchtime 3x -cpu 1 ./test/nab/cad/
func BenchmarkCAD(b *testing.B) {
	nab.BenchLong(b, func() nab.Detector { return NewCausal(DefaultCausal()) })
}
