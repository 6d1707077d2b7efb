package nab

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

// This file holds what the tests and benchmarks of this package and of the
// detectors kept outside it (test/nab/artime, under another licence, and
// test/nab/cad) share:
// exported, since a test file is visible to its own package only.

var (
	corpusOnce sync.Once
	corpus     *Corpus
	corpusErr  error
)

// LoadForTest loads ../shared/nab once per test binary and fails (not
// skips) when it is missing: the benchmark is part of the deliverable.
func LoadForTest(tb testing.TB) *Corpus {
	tb.Helper()
	corpusOnce.Do(func() {
		// Not test/testenv's RepoRoot: that package would link the
		// Kubernetes and Kafka clients into nabrun.
		_, file, _, ok := runtime.Caller(0)
		if !ok {
			corpusErr = ErrNoCorpus
			return
		}
		var dir string
		if dir, corpusErr = Locate(filepath.Join(filepath.Dir(file), "..", "..")); corpusErr == nil {
			corpus, corpusErr = Load(dir)
		}
	})
	if corpusErr != nil {
		tb.Fatal(corpusErr)
	}
	return corpus
}

// Stream returns n points, 5 minutes apart, of a noisy daily cycle.
func Stream(n int, seed uint64) ([]time.Time, []float64) {
	r := rand.New(rand.NewPCG(seed, 1))
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	ts, vs := make([]time.Time, n), make([]float64, n)
	for i := range n {
		ts[i] = t0.Add(time.Duration(i) * 5 * time.Minute)
		vs[i] = 100 + 20*math.Sin(2*math.Pi*float64(i)/288) + r.NormFloat64()*3
	}
	return ts, vs
}

// MaxScore is the largest score in s[from:to].
func MaxScore(s []float64, from, to int) float64 {
	m := 0.0
	for _, x := range s[from:to] {
		m = math.Max(m, x)
	}
	return m
}

// ScoreStream scores ts, vs with d and returns the scores.
func ScoreStream(d Detector, ts []time.Time, vs []float64) []float64 {
	out := make([]float64, len(vs))
	for i := range vs {
		out[i] = d.Score(ts[i], vs[i])
	}
	return out
}

// Published is NAB's scoreboard (results/final_results.json): each
// detector's normalised score by profile.
func Published(c *Corpus) (map[string]map[string]float64, error) {
	raw, err := os.ReadFile(filepath.Join(c.Root, "results", "final_results.json"))
	if err != nil {
		return nil, err
	}
	var published map[string]map[string]float64
	if err := json.Unmarshal(raw, &published); err != nil {
		return nil, fmt.Errorf("nab: final_results.json: %w", err)
	}
	return published, nil
}

// CheckPublished scores every file of c and fails t where a profile's
// score is not within tol of what NAB's scoreboard records for detector:
// the check that a port scores as the original does.
func CheckPublished(t *testing.T, c *Corpus, scores map[string][]float64, detector string, tol float64) {
	t.Helper()
	published, err := Published(c)
	if err != nil {
		t.Fatal(err)
	}
	want, ok := published[detector]
	if !ok {
		t.Fatalf("no %s in NAB's scoreboard", detector)
	}
	results, err := c.Score(scores)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(want) {
		t.Fatalf("%d profiles scored, the scoreboard has %d", len(results), len(want))
	}
	for _, r := range results {
		t.Logf("%s %s: %.6f (published %.6f)", detector, r.Profile, r.Normalized, want[r.Profile])
		if math.Abs(r.Normalized-want[r.Profile]) > tol {
			t.Errorf("%s: %.4f, %s's published score is %.4f", r.Profile, r.Normalized, detector, want[r.Profile])
		}
	}
}

// Floors are the lowest normalised scores a detector may reach, by profile.
type Floors map[string]float64

// CheckFloors runs a fresh detector from newDetector over every file of c
// and fails t where a profile's score, on all files or on the held-out
// half, is below its floor: a guard of the figures recorded in
// BENCHMARKS.md against regressions.
func CheckFloors(t *testing.T, c *Corpus, name string, newDetector func() Detector, all, heldOut Floors) {
	t.Helper()
	scores := c.Run(newDetector, 0)
	for _, part := range []struct {
		name  string
		c     *Corpus
		floor Floors
	}{
		{"all files", c, all},
		{"held-out half", c.Half(HeldOut), heldOut},
	} {
		results, err := part.c.Score(scores)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range results {
			t.Logf("%s, %s: %-18s %6.2f (threshold %.4f, %d/%d windows, %d false positives)", name, part.name, r.Profile, r.Normalized, r.Threshold, r.Detected, part.c.Windows(), r.FP)
			if r.Normalized < part.floor[r.Profile] {
				t.Errorf("%s, %s: %s: %.2f, below the recorded %g", name, part.name, r.Profile, r.Normalized, part.floor[r.Profile])
			}
		}
	}
}

// BenchLong scores the corpus's files over 15,000 points (Twitter volumes
// and the like) with fresh detectors from newDetector, one per file as in
// Run, on one goroutine. points/s is by the wall clock; points/cpu-s by
// the process's CPU time, the figure to quote on a shared machine (issue
// 18 asks for at least 1M points per second per core).
func BenchLong(b *testing.B, newDetector func() Detector) {
	c := LoadForTest(b)
	var files []*File
	points := 0
	for _, f := range c.Files {
		if len(f.Values) > 15000 {
			files = append(files, f)
			points += len(f.Values)
		}
	}
	if len(files) == 0 {
		b.Fatal("no long files in the corpus")
	}
	cpu0 := cpuTime(b)
	for b.Loop() {
		for _, f := range files {
			u := newDetector()
			for i, v := range f.Values {
				u.Score(f.Times[i], v)
			}
		}
	}
	total := float64(points) * float64(b.N)
	b.ReportMetric(total/b.Elapsed().Seconds(), "points/s")
	b.ReportMetric(total/(cpuTime(b)-cpu0).Seconds(), "points/cpu-s")
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
