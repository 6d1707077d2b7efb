package nab

import (
	"syscall"
	"testing"
	"time"
)

// BenchmarkUnivariate scores the corpus's longest heavy-tailed files
// (Twitter volumes and the like, over 15,000 points each) with the default
// configuration, one detector per file as in Run, on one goroutine.
// points/s is by the wall clock; points/cpu-s by the process's CPU time,
// the figure to quote on a shared machine (issue 18 asks for at least 1M
// points per second per core).
func BenchmarkUnivariate(b *testing.B) {
	cfg := DefaultUnivariate()
	benchLong(b, func() Detector { return NewUnivariate(cfg) })
}

// benchLong scores the corpus's files over 15,000 points with fresh
// detectors from newDetector, one per file, on one goroutine.
func benchLong(b *testing.B, newDetector func() Detector) {
	c := testCorpus(b)
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

// BenchmarkARTime is BenchmarkUnivariate for the default ARTime ladder.
func BenchmarkARTime(b *testing.B) {
	cfg := DefaultARTime()
	benchLong(b, func() Detector { return NewARTimeLadder(cfg) })
}

// BenchmarkPublishedARTime is BenchmarkUnivariate for ARTime as published
// (one learning period of 750 points, no bound on its categories).
func BenchmarkPublishedARTime(b *testing.B) {
	cfg := PublishedARTime()
	benchLong(b, func() Detector { return NewARTime(cfg) })
}

// BenchmarkEnsemble is BenchmarkUnivariate for the default Ensemble.
func BenchmarkEnsemble(b *testing.B) {
	cfg := DefaultEnsemble()
	benchLong(b, func() Detector { return NewEnsemble(cfg) })
}
