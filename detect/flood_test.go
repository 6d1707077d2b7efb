package detect

import (
	"testing"
	"time"

	"github.com/meshguard/meshguard/models"
)

// floodFrom returns a flood of perWindow requests a window from
// shop/frontend to shop/catalog, evenly spread, beginning at startMs
// (event time): the windows before it get nothing, the window it begins
// in only its tail.
func floodFrom(startMs int64, perWindow int) func(m *mini, i int, ws int64) []models.Flow {
	return func(m *mini, i int, ws int64) []models.Flow {
		var out []models.Flow
		step := m.win / int64(perWindow)
		for ts := ws; ts < ws+m.win; ts += step {
			if ts >= startMs {
				out = append(out, flow(ts, "shop/frontend", "shop/catalog", "/products", 200))
			}
		}
		return out
	}
}

// A flood that begins 5.5 s into a window puts 40 requests into it: far
// above the edge's 10 (a score well past the threshold) but under the
// flood rule's max(5 x level, 2 x peak) + 20 of about 70. Before the fix
// that window raised nothing and was learned into the edge's peak, so
// the first full window (100) had to reach 2 x 50 + 20 and did not, and
// was learned in turn: the flood taught the edge its own peak and never
// fired (the mixed mesh's request_flood miss, BENCHMARKS.md). It must
// fire in its first full window.
func TestFloodStartingLateInAWindowIsNotLearnedAsThePeak(t *testing.T) {
	m := newMini(11)
	attackAt := trainWindows + 30
	start := m.start + int64(attackAt)*m.win + 5500
	c := run(t, 11, trainWindows, attackAt+20, floodFrom(start, 90))
	var hit *models.Detection
	for _, d := range c.got {
		if d.Kind == models.RequestFlood && d.Source.Workload == "frontend" {
			hit = &d
			continue
		}
		t.Errorf("also raised %s: %s", d.Kind, d.Evidence.Summary)
	}
	if hit == nil {
		t.Fatalf("the flood was never detected; got %v", c.kinds())
	}
	firstFull := time.UnixMilli(m.start + int64(attackAt+1)*m.win).UTC()
	if !hit.WindowStart.Equal(firstFull) {
		t.Errorf("flood detected in the window of %s, want its first full window %s", hit.WindowStart, firstFull)
	}
}

// A batch job's bursts are its normal: each is far above the edge's level
// (every burst window scores past the threshold), and the rule knows the
// job by its peak only. A burst's peak is learned when the burst ends, so
// that bursts of the same size never become floods however long the job
// runs, though the peak decays with a time constant of a day: a peak
// learned only from windows below the threshold would decay under the
// bursts after about a day and raise them as floods.
func TestBatchJobBurstsAreLearnedAsThePeak(t *testing.T) {
	const (
		every  = 720 // two hours of windows
		burst  = 3
		size   = 80
		total  = 3 * 8640 // three days
		jobSrc = "ops/batch-job"
	)
	c := run(t, 12, 0, total, func(m *mini, i int, ws int64) []models.Flow {
		if i%every >= burst {
			return nil
		}
		var out []models.Flow
		for k := 0; k < size; k++ {
			out = append(out, flow(ws+int64(k)*100, jobSrc, "data/db", "/query", 200))
		}
		return out
	})
	for _, d := range c.got {
		t.Errorf("raised %s %s over %s: %s", d.Kind, d.Severity, d.WindowStart, d.Evidence.Summary)
	}
}
