// Command nabsearch chooses artime.Ladder's settings on NAB's tuning half
// alone, by coordinate descent: each setting in turn is tried at a few
// values and the best one kept when it raises the tuning half's standard
// score by more than -min and lowers neither quarter of the tuning half
// (its files alternating) by more than -drop, so that no choice rests on
// one quarter's windows. It never scores the held-out half. It starts
// from artime.Untuned() (-from is merged over it). Each score is the mean
// over -phases: the ladder run with every file's first n points left
// unscored (nab.Late), for each n listed, since one downsampling phase's
// score is partly luck. artime.TunedConstants and the 0.24 takeover of
// artime.Default come from a run with the defaults (phase 0) and then one
// from its result with -phases 1,3,5 (BENCHMARKS.md). With -fit q1 or q2
// it searches one quarter and prints the other's score beside every
// figure, never using it: a test of the search rule itself, whether what
// it gains on the files it sees carries to files it does not.
//
//	go run ./test/nab/cmd/nabsearch [-from JSON] [-rounds 4] [-min 0.2] [-drop 1] [-phases 0] [-fine] [-params K.Mask,...] [-fit tuning]
//
// Licence: like nabrun it links test/nab/artime (GNU AGPL v3 only).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/meshguard/meshguard/test/nab"
	"github.com/meshguard/meshguard/test/nab/artime"
)

// param is one setting, by its JSON path in artime.Config, and the values
// tried: fixed ones, or factors of the current value.
type param struct {
	path    string
	values  []any
	factors []float64
	lo, hi  float64
	integer bool
}

var params = []param{
	{path: "Levels", values: []any{40, 60, 100, 120, 160}},
	{path: "Chomp", values: []any{0.0, 0.025, 0.05, 0.1, 0.125}},
	{path: "InitialRho", values: []any{0.7, 0.75, 0.85, 0.9}},
	{path: "WindowsPerProbation", values: []any{8, 10, 16, 20}},
	{path: "Margin", factors: []float64{0.8, 0.9, 1.1, 1.25}, lo: 0, hi: 5},
	{path: "Takeover", factors: []float64{0.8, 0.9, 1.1, 1.25}, lo: 0.05, hi: 0.95},
	{path: "MaxCategories", values: []any{64, 96, 192, 256}},
	{path: "K.Mask", factors: []float64{0.5, 0.75, 1.33, 2}, lo: 0.125, hi: 8},
	{path: "K.MeanBand", factors: []float64{0, 0.5, 2}, lo: 0, hi: 1},
	{path: "K.BelowCat", factors: []float64{0.8, 0.9, 1.1, 1.25}, lo: 0, hi: 1},
	{path: "K.BelowAnomaly", factors: []float64{0.8, 0.9, 1.05, 1.1}, lo: 0, hi: 1},
	{path: "K.RhoEvery", factors: []float64{0.5, 0.75, 1.5, 2}, lo: 0.05, hi: 4},
	{path: "K.UBMax", values: []any{0.93, 0.95, 0.99}},
	{path: "K.LBRise", factors: []float64{0.5, 0.75, 1.33, 2}, lo: 0, hi: 1},
	{path: "K.LBFall", factors: []float64{0.5, 0.75, 1.33, 2}, lo: 0, hi: 2},
	{path: "K.DiffMin", factors: []float64{0, 0.5, 2}, lo: 0, hi: 1},
	{path: "K.DiffCap", factors: []float64{0.5, 0.75, 1.33, 2}, lo: 0.01, hi: 1},
	{path: "K.DecrMin", factors: []float64{0.5, 2, 4}, lo: 0, hi: 1},
	{path: "K.WUB", factors: []float64{0, 0.5, 2}, lo: 0, hi: 10},
	{path: "K.WLB", factors: []float64{0.5, 2}, lo: 0, hi: 10},
	{path: "K.WEnergy", factors: []float64{0, 0.5, 0.75, 1.33, 2}, lo: 0, hi: 10},
	{path: "Probation", values: []any{650, 700, 800, 900}},
	{path: "Rungs", values: []any{[]any{170, 400}, []any{170, 600}, []any{130, 400, 600}, []any{200, 400, 600}, []any{170, 300, 600}, []any{170, 400, 550}}},
}

// eval is a setting's score on the files searched (all) and on their two
// alternating parts, and on the files kept back (check; -fit).
type eval struct{ all, q1, q2, check float64 }

func main() {
	from := flag.String("from", "{}", "JSON settings to start from (merged over artime.Untuned())")
	rounds := flag.Int("rounds", 4, "passes over the settings")
	minGain := flag.Float64("min", 0.2, "least gain of the tuning half's standard score to keep a change")
	drop := flag.Float64("drop", 1, "most either tuning quarter may lose")
	only := flag.String("params", "", "comma-separated settings to search (default all)")
	phases := flag.String("phases", "0", "comma-separated start offsets: each evaluation is the mean of the scores with the first n points of every file left unscored, n in the list (the downsampling's phase moves with n)")
	fine := flag.Bool("fine", false, "try factors 0.9, 0.95, 1.05 and 1.1 of every factor setting as well")
	fitTo := flag.String("fit", "tuning", `the files searched: "tuning" (the tuning half), or "q1" or "q2" (one of its alternating quarters, the other kept back and only printed beside, to see whether a search rule's gains carry to files it did not see)`)
	flag.Parse()
	root, _ := filepath.Abs(".")
	dir, err := nab.Locate(root)
	if err != nil {
		fail(err)
	}
	c, err := nab.Load(dir)
	if err != nil {
		fail(err)
	}
	// Every evaluation runs the whole tuning half once (with -fit, the
	// searched quarter and the one kept back together) and scores it
	// by part.
	half := c.Half(nab.Tuning)
	tune, check, err := fitSet(half, *fitTo)
	if err != nil {
		fail(err)
	}
	q := tune.Quarters()
	parts := []*nab.Corpus{tune, q[0], q[1]}
	if check != nil {
		parts = append(parts, check)
	}
	cur := map[string]any{}
	if err := json.Unmarshal([]byte(*from), &cur); err != nil {
		fail(err)
	}
	flat := flatten(cur, "")
	var offsets []int
	for _, f := range strings.Split(*phases, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			fail(fmt.Errorf("-phases %q: want non-negative integers separated by commas", *phases))
		}
		offsets = append(offsets, n)
	}
	score := func(set map[string]any) (eval, error) {
		cfg := artime.Untuned()
		b, _ := json.Marshal(nest(set))
		if err := json.Unmarshal(b, &cfg); err != nil {
			return eval{}, err
		}
		if err := cfg.Validate(); err != nil {
			return eval{}, err
		}
		var e eval
		if check == nil {
			e.check = math.NaN()
		}
		for _, n := range offsets {
			s := half.Run(func() nab.Detector { return nab.Late(artime.NewLadder(cfg), n) }, 0)
			for k, part := range parts {
				r, err := part.Score(s)
				if err != nil {
					return eval{}, err
				}
				*[]*float64{&e.all, &e.q1, &e.q2, &e.check}[k] += r[0].Normalized / float64(len(offsets))
			}
		}
		return e, nil
	}
	base, err := score(flat)
	if err != nil {
		fail(err)
	}
	fmt.Printf("start %s: %s\n", show(flat), base)
	var sel []param
	for _, p := range params {
		if *fine && p.factors != nil {
			p.factors = append(slices.Clone(p.factors), 0.9, 0.95, 1.05, 1.1)
		}
		if *only == "" || strings.Contains(","+*only+",", ","+p.path+",") {
			sel = append(sel, p)
		}
	}
	for round := range *rounds {
		changed := false
		for _, p := range sel {
			curV := currentValue(flat, p.path)
			bestV, best := any(nil), base
			for _, v := range candidates(p, curV) {
				try := clone(flat)
				try[p.path] = v
				e, err := score(try)
				if err != nil {
					continue
				}
				ok := e.all > best.all+*minGain && e.q1 > base.q1-*drop && e.q2 > base.q2-*drop
				fmt.Printf("  %-20s %-8v %s%s\n", p.path, v, e, map[bool]string{true: " *"}[ok])
				if ok {
					bestV, best = v, e
				}
			}
			if bestV != nil {
				flat[p.path] = bestV
				base = best
				changed = true
				fmt.Printf("round %d keep %s: %s\n", round, show(flat), base)
			}
		}
		if !changed {
			break
		}
	}
	fmt.Printf("final %s: %s\n", show(flat), base)
}

func (e eval) String() string {
	s := fmt.Sprintf("%.2f (%.2f, %.2f)", e.all, e.q1, e.q2)
	if !math.IsNaN(e.check) {
		s += fmt.Sprintf(" kept back %.2f", e.check)
	}
	return s
}

// fitSet returns the files -fit names and the files kept back from
// them (nil when none are).
func fitSet(tune *nab.Corpus, fit string) (*nab.Corpus, *nab.Corpus, error) {
	q := tune.Quarters()
	switch fit {
	case "tuning":
		return tune, nil, nil
	case "q1":
		return q[0], q[1], nil
	case "q2":
		return q[1], q[0], nil
	}
	return nil, nil, fmt.Errorf("-fit %q: want tuning, q1 or q2", fit)
}

// currentValue is the setting's value in set, or artime.Untuned()'s.
func currentValue(set map[string]any, path string) float64 {
	if v, ok := set[path]; ok {
		return toF(v)
	}
	b, _ := json.Marshal(artime.Untuned())
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return toF(flatten(m, "")[path])
}

func candidates(p param, cur float64) []any {
	if p.values != nil {
		var out []any
		for _, v := range p.values {
			if toF(v) != cur {
				out = append(out, v)
			}
		}
		return out
	}
	var out []any
	for _, f := range p.factors {
		v := math.Min(p.hi, math.Max(p.lo, cur*f))
		v = math.Round(v*1e4) / 1e4
		if v != cur && !slices.Contains(out, any(v)) {
			out = append(out, v)
		}
	}
	return out
}

func toF(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case int:
		return float64(x)
	}
	return math.NaN()
}

func flatten(m map[string]any, prefix string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			for k2, v2 := range flatten(sub, prefix+k+".") {
				out[k2] = v2
			}
			continue
		}
		out[prefix+k] = v
	}
	return out
}

func nest(flat map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range flat {
		parts := strings.Split(k, ".")
		m := out
		for _, p := range parts[:len(parts)-1] {
			if _, ok := m[p].(map[string]any); !ok {
				m[p] = map[string]any{}
			}
			m = m[p].(map[string]any)
		}
		m[parts[len(parts)-1]] = v
	}
	return out
}

func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func show(flat map[string]any) string {
	b, _ := json.Marshal(nest(flat))
	return string(b)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "nabsearch:", err)
	os.Exit(1)
}
