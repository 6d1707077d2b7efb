package nab

import (
	"math"
	"path/filepath"
	"testing"
	"time"
)

func TestCorpusShape(t *testing.T) {
	c := LoadForTest(t)
	if len(c.Files) != 58 || c.Windows() != 116 {
		t.Fatalf("corpus has %d files and %d windows, want 58 and 116", len(c.Files), c.Windows())
	}
	rows := 0
	for _, f := range c.Files {
		rows += len(f.Times)
		for _, w := range f.Windows {
			if w[0] > w[1] {
				t.Errorf("%s: window %v runs backwards", f.Rel, w)
			}
		}
	}
	if rows != 365558 {
		t.Errorf("corpus has %d rows, want 365558", rows)
	}
}

// TestScoreMatchesPublished scores the published outputs of two NAB
// detectors and compares with NAB's own scoreboard
// (results/final_results.json).
func TestScoreMatchesPublished(t *testing.T) {
	c := LoadForTest(t)
	published, err := Published(c)
	if err != nil {
		t.Fatal(err)
	}
	if got := published["windowedGaussian"]["standard"]; math.Abs(got-39.649523496077585) > 1e-9 {
		t.Fatalf("final_results.json says windowedGaussian standard = %v; the file is not NAB v1.1's", got)
	}
	for _, det := range []string{"null", "windowedGaussian"} {
		t.Run(det, func(t *testing.T) {
			scores, err := c.ReadResults(filepath.Join(c.Root, "results"), det)
			if err != nil {
				t.Fatal(err)
			}
			CheckPublished(t, c, scores, det, 1e-6)
		})
	}
}

// TestScoreRules checks the scoring rules on a synthetic corpus, where the
// expected figures follow from NAB's definitions by hand.
func TestScoreRules(t *testing.T) {
	f := &File{Rel: "x/a.csv", Windows: [][2]int{{40, 49}}}
	for i := 0; i < 100; i++ {
		f.Times = append(f.Times, testTime(i))
		f.Values = append(f.Values, 0)
	}
	std := Profile{Name: "standard", TP: 1, FP: 0.11, FN: 1}
	c := &Corpus{Files: []*File{f}, Profiles: []Profile{std}}
	score := func(hits ...int) Result {
		s := make([]float64, 100)
		for _, h := range hits {
			s[h] = 1
		}
		r, err := c.Score(map[string][]float64{f.Rel: s})
		if err != nil {
			t.Fatal(err)
		}
		return r[0]
	}
	if r := score(); r.Normalized != 0 || r.Raw != -1 {
		t.Errorf("no detection: raw %v normalized %v, want -1 and 0", r.Raw, r.Normalized)
	}
	// A detection at the left edge of the window earns TP exactly.
	if r := score(40); math.Abs(r.Raw-1) > 1e-12 || r.Normalized != 100 {
		t.Errorf("left-edge detection: raw %v normalized %v, want 1 and 100", r.Raw, r.Normalized)
	}
	// Only the earliest detection in a window counts.
	if a, b := score(40), score(40, 45); a.Raw != b.Raw {
		t.Errorf("a second detection in the window changed the score: %v vs %v", a.Raw, b.Raw)
	}
	// A detection in the probationary period (15 rows) is ignored; one
	// far from a window costs FP.
	if r := score(40, 5); r.Raw != score(40).Raw {
		t.Errorf("probationary detection counted: %v", r.Raw)
	}
	if r := score(40, 20); math.Abs(r.Raw-(1-0.11)) > 1e-12 {
		t.Errorf("one false positive: raw %v, want 0.89", r.Raw)
	}
	// A detection right after the window costs almost nothing.
	if r := score(40, 50); r.Raw > 1 || r.Raw < 1-0.11*0.5 {
		t.Errorf("detection just after the window: raw %v, want under 1 and above 1-FP/2", r.Raw)
	}
	// A late detection earns less than an early one.
	if late, early := score(48), score(41); !(late.Raw < early.Raw && late.Raw > 0) {
		t.Errorf("late %v, early %v: want 0 < late < early", late.Raw, early.Raw)
	}
}

func testTime(i int) time.Time {
	return time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute)
}
