package nab

import (
	"runtime"
	"sync"
	"time"
)

// Detector scores one stream, point by point, causally: the score of a
// point may depend only on it and the points before it.
type Detector interface {
	Score(t time.Time, v float64) float64
}

// Late returns d leaving a file's first n points unscored and unseen,
// so that a detector that reduces every few points to one (ARTime's
// downsampling) groups the rest at another phase: how much a score owes
// to the phase is the spread of its scores over n = 0, 1, ... (issue 18).
func Late(d Detector, n int) Detector {
	if n <= 0 {
		return d
	}
	return &late{d: d, n: n}
}

type late struct {
	d    Detector
	n, i int
}

func (l *late) Score(t time.Time, v float64) float64 {
	if l.i < l.n {
		l.i++
		return 0
	}
	return l.d.Score(t, v)
}

// Run runs a fresh detector (from newDetector) over every file, workers
// files at a time (GOMAXPROCS when workers < 1), and returns the scores
// keyed by File.Rel.
func (c *Corpus) Run(newDetector func() Detector, workers int) map[string][]float64 {
	return c.RunFiles(func(*File) Detector { return newDetector() }, workers)
}

// RunFiles is Run with a detector made for each file: for detectors that
// are told something of the file before its first point (artime.NewKnowing,
// ARTime's view under NAB), which a causal detector may not be.
func (c *Corpus) RunFiles(newDetector func(*File) Detector, workers int) map[string][]float64 {
	if workers < 1 {
		workers = runtime.GOMAXPROCS(0)
	}
	out := make(map[string][]float64, len(c.Files))
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan *File)
	for range workers {
		wg.Go(func() {
			for f := range work {
				d := newDetector(f)
				s := make([]float64, len(f.Values))
				for i, v := range f.Values {
					s[i] = d.Score(f.Times[i], v)
				}
				mu.Lock()
				out[f.Rel] = s
				mu.Unlock()
			}
		})
	}
	for _, f := range c.Files {
		work <- f
	}
	close(work)
	wg.Wait()
	return out
}
