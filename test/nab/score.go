package nab

import (
	"fmt"
	"math"
	"sort"
)

// Result is a detector's score under one profile.
type Result struct {
	Profile string
	// Threshold is the anomaly score at or above which a row counts as a
	// detection, chosen by the sweep to maximise Raw.
	Threshold float64
	// Raw is the sum of window rewards, missed-window costs and weighted
	// false positives; Normalized maps -FN*windows..TP*windows to 0..100.
	Raw, Normalized float64
	// TP counts detections inside windows, FP detections outside.
	TP, FP int
	// Detected counts windows with at least one detection.
	Detected int
}

// row is one scored row: its anomaly score, its weight if it is a
// detection, and its window (-1 outside windows).
type row struct {
	score, weight float64
	window        int
}

// scaledSigmoid is NAB's reward curve: 1 at the far left of a window (y =
// -1), 0 at its right edge, falling to -1 after it.
func scaledSigmoid(y float64) float64 {
	if y > 3 {
		return -1
	}
	return 2/(1+math.Exp(5*y)) - 1
}

// weighRows gives every row after the probationary period its weight
// under profile p, numbering windows from firstWindow. Inside a window a
// detection earns TP*sigmoid(position), scaled so that the left edge
// earns TP; outside, a detection costs FP, less when it follows a window
// closely (NAB counts it as a late detection).
func weighRows(f *File, scores []float64, p Profile, firstWindow int) []row {
	n := len(f.Times)
	prob := f.Probation()
	maxTP := scaledSigmoid(-1)
	out := make([]row, 0, n-prob)
	next := 0
	cur := -1
	prevRight, prevWidth := -1, 0.0
	for i := 0; i < n; i++ {
		if next < len(f.Windows) && i == f.Windows[next][0] {
			cur = next
			next++
		}
		var w float64
		if cur >= 0 {
			left, right := f.Windows[cur][0], f.Windows[cur][1]
			width := float64(right-left) + 1
			pos := -float64(right-i+1) / width
			w = scaledSigmoid(pos) * p.TP / maxTP
		} else {
			u := -1.0
			if prevRight >= 0 {
				u = scaledSigmoid(math.Abs(float64(prevRight-i)) / (prevWidth - 1))
			}
			w = u * p.FP
		}
		if i >= prob {
			win := -1
			if cur >= 0 {
				win = firstWindow + cur
			}
			out = append(out, row{score: scores[i], weight: w, window: win})
		}
		if cur >= 0 && i == f.Windows[cur][1] {
			prevRight = i
			prevWidth = float64(f.Windows[cur][1]-f.Windows[cur][0]) + 1
			cur = -1
		}
	}
	return out
}

// Score scores a detector's output (anomaly scores per file, keyed by
// File.Rel) under every profile of the corpus.
func (c *Corpus) Score(scores map[string][]float64) ([]Result, error) {
	for _, f := range c.Files {
		if s, ok := scores[f.Rel]; !ok || len(s) != len(f.Times) {
			return nil, fmt.Errorf("nab: scores for %s: have %d rows, want %d", f.Rel, len(scores[f.Rel]), len(f.Times))
		}
	}
	var out []Result
	for _, p := range c.Profiles {
		out = append(out, c.scoreProfile(scores, p))
	}
	return out, nil
}

func (c *Corpus) scoreProfile(scores map[string][]float64, p Profile) Result {
	var rows []row
	nwin := 0
	for _, f := range c.Files {
		rows = append(rows, weighRows(f, scores[f.Rel], p, nwin)...)
		nwin += len(f.Windows)
	}
	thr := sweep(rows, nwin, p.FN)
	res := Result{Profile: p.Name, Threshold: thr}
	res.Raw, res.TP, res.FP, res.Detected = scoreAt(rows, nwin, thr, p.FN)
	base, perfect := -p.FN*float64(nwin), p.TP*float64(nwin)
	res.Normalized = 100 * (res.Raw - base) / (perfect - base)
	return res
}

// scoreAt is the raw score with threshold thr: each window scored outside
// the probationary period costs FN unless a row in it reaches thr, in which
// case it earns the best (earliest) such row's weight; rows outside
// windows that reach thr add their (negative) weight.
func scoreAt(rows []row, nwin int, thr, fn float64) (raw float64, tp, fp, detected int) {
	best := make([]float64, nwin)
	seen := make([]bool, nwin)
	hit := make([]bool, nwin)
	for _, r := range rows {
		if r.window >= 0 && !seen[r.window] {
			seen[r.window] = true
			best[r.window] = -fn
		}
		if r.score < thr {
			continue
		}
		if r.window < 0 {
			raw += r.weight
			fp++
			continue
		}
		tp++
		hit[r.window] = true
		best[r.window] = math.Max(best[r.window], r.weight)
	}
	for w := range best {
		if seen[w] {
			raw += best[w]
		}
		if hit[w] {
			detected++
		}
	}
	return raw, tp, fp, detected
}

// sweep returns the threshold that maximises the raw score, trying every
// distinct anomaly score from the highest down (NAB's
// calcScoreByThreshold); ties go to the higher threshold. Above every
// score (threshold 1.1, as NAB) nothing is detected.
func sweep(rows []row, nwin int, fn float64) float64 {
	sorted := make([]row, len(rows))
	copy(sorted, rows)
	sort.SliceStable(sorted, func(a, b int) bool { return sorted[a].score > sorted[b].score })
	best := make([]float64, nwin)
	seen := make([]bool, nwin)
	var winSum float64
	for _, r := range sorted {
		if r.window >= 0 && !seen[r.window] {
			seen[r.window] = true
			best[r.window] = -fn
			winSum -= fn
		}
	}
	var fpSum float64
	bestTotal, bestThr := winSum, 1.1
	cur := 1.1
	for _, r := range sorted {
		if r.score != cur {
			if t := fpSum + winSum; t > bestTotal {
				bestTotal, bestThr = t, cur
			}
			cur = r.score
		}
		if r.window < 0 {
			fpSum += r.weight
		} else if r.weight > best[r.window] {
			winSum += r.weight - best[r.window]
			best[r.window] = r.weight
		}
	}
	if t := fpSum + winSum; t > bestTotal {
		bestThr = cur
	}
	return bestThr
}

// FileResult is one file's share of a profile's score at a given
// threshold.
type FileResult struct {
	Rel              string
	Raw              float64
	TP, FP, Detected int
	Windows          int
}

// PerFile breaks a profile's score at threshold thr down by file, for
// diagnosis (the threshold is the corpus-wide one from Score).
func (c *Corpus) PerFile(scores map[string][]float64, p Profile, thr float64) []FileResult {
	var out []FileResult
	for _, f := range c.Files {
		rows := weighRows(f, scores[f.Rel], p, 0)
		fr := FileResult{Rel: f.Rel, Windows: len(f.Windows)}
		fr.Raw, fr.TP, fr.FP, fr.Detected = scoreAt(rows, len(f.Windows), thr, p.FN)
		out = append(out, fr)
	}
	return out
}
