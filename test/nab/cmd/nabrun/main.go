// Command nabrun runs one of meshguard's NAB detectors (-detector; by
// default artime.Ladder, the causal ARTime port) over the NAB corpus,
// writes its results in NAB's layout, scores them with
// the project's scorer (test/nab) under the three profiles and prints the
// table for all 58 files, the tuning half and the held-out half (the
// protocol in test/nab/split.go); when python3 is installed it also scores
// the same files with ../shared/nab/score.py as a cross-check.
//
// When choosing settings, pass -only tuning: it scores the tuning half
// alone, so that a sweep never sees the held-out half. -phases K runs the
// detector K times, with every file's first 0, 1, ..., K-1 points left
// unscored and unseen (nab.Late), and prints each set's mean, least and
// largest score: one run is one draw of a downsampling detector's phase.
// With -only tuning, -phases scores the tuning half and its two
// alternating quarters (a change worth keeping gains on both).
//
//	go run ./test/nab/cmd/nabrun [-detector NAME] [-nab DIR] [-out DIR] [-config JSON] [-only tuning] [-skip N | -phases K] [-v]
//
// Licence: nabrun links test/nab/artime, a translation of ARTime
// (github.com/markNZed/ARTimeNAB.jl) under the GNU AGPL v3 only
// (test/nab/artime/LICENSE), so a nabrun binary is covered by that
// licence. It is a benchmark tool: the meshguard binary never links it
// (artime.TestProductDoesNotLinkIt).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/meshguard/meshguard/test/nab"
	"github.com/meshguard/meshguard/test/nab/artime"
	"github.com/meshguard/meshguard/test/nab/cad"
)

const detectorName = "meshguard"

var (
	verbose  bool
	detector string
	skip     int
)

const detectors = `"artime" (artime.Ladder, the ARTime port, causal), ` +
	`"artime-untuned" (the ladder with ARTime's own constants, artime.Untuned), ` +
	`"artime-profiled" (artime.Profiled: the ladder beside a daily profile's rarest surprises), ` +
	`"ensemble" (artime.Ensemble: the larger of Univariate's and an ARTime ladder's scores), ` +
	`"univariate" (nab.Univariate), ` +
	`"artime-knowing" (ARTime as published, told each file's range and length as under NAB: ` +
	`not causal, to check the port), "artime-knowing-range" or "artime-knowing-probation" (told one of the two), ` +
	`"artime-ladder-range" (artime.Ladder told each file's range: not causal, to see what the range is worth to it), ` +
	`"cad" (cad.Causal: CAD OSE learning its range from the stream), ` +
	`"cad-knowing" (CAD OSE as published, told each file's range and probationary period: not causal), ` +
	`"artime-cad" (the larger of the default ladder's and cad's scores)`

func main() {
	nabDir := flag.String("nab", "", "NAB directory (default ../shared/nab beside the repository)")
	out := flag.String("out", "", "results directory (default a new temporary directory)")
	config := flag.String("config", "", "JSON merged over the detector's default configuration (for experiments; the reported figures use the default)")
	flag.StringVar(&detector, "detector", "artime", "the detector: "+detectors)
	python := flag.Bool("python", true, "cross-check with python3 ../shared/nab/score.py when python3 exists")
	only := flag.String("only", "", `"tuning": score the tuning half alone, for choosing settings (no files written, no cross-check)`)
	flag.IntVar(&skip, "skip", 0, "leave every file's first n points unscored and unseen (the downsampling's phase moves with n; the reported figures use 0)")
	phases := flag.Int("phases", 0, "run at skips 0 to K-1 and print each set's mean and range over them instead of one run's table (no files written, no cross-check); with -only tuning, of the tuning half and its two quarters")
	flag.BoolVar(&verbose, "v", false, "print the standard profile's score per file (with -only tuning, the tuning half's files only)")
	flag.Parse()
	if *only != "" && *only != "tuning" {
		fmt.Fprintf(os.Stderr, "nabrun: -only %q: the only choice is \"tuning\" (the held-out half is never scored alone)\n", *only)
		os.Exit(2)
	}
	if *phases > 0 {
		if skip != 0 {
			fmt.Fprintln(os.Stderr, "nabrun: -phases runs every skip itself: drop -skip")
			os.Exit(2)
		}
		if err := phaseTable(*nabDir, *config, *phases, *only == "tuning"); err != nil {
			fmt.Fprintln(os.Stderr, "nabrun:", err)
			os.Exit(1)
		}
		return
	}
	if *only == "tuning" {
		if err := tune(*nabDir, *config); err != nil {
			fmt.Fprintln(os.Stderr, "nabrun:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*nabDir, *out, *config, *python); err != nil {
		fmt.Fprintln(os.Stderr, "nabrun:", err)
		os.Exit(1)
	}
}

// setup loads the corpus and returns a maker of the chosen detector with
// its configuration (-config merged over the default).
func setup(nabDir, config string) (*nab.Corpus, func(*nab.File) nab.Detector, error) {
	if nabDir == "" {
		root, err := repoRoot()
		if err != nil {
			return nil, nil, err
		}
		if nabDir, err = nab.Locate(root); err != nil {
			return nil, nil, err
		}
	}
	newDetector, err := maker(config)
	if err != nil {
		return nil, nil, err
	}
	if skip < 0 {
		return nil, nil, fmt.Errorf("-skip %d: want 0 or more points", skip)
	}
	c, err := nab.Load(nabDir)
	return c, func(f *nab.File) nab.Detector { return nab.Late(newDetector(f), skip) }, err
}

// maker returns a maker of -detector's detector configured by config
// (merged over its default).
func maker(config string) (func(*nab.File) nab.Detector, error) {
	var cfg interface{ Validate() error }
	var newDetector func(*nab.File) nab.Detector
	switch detector {
	case "ensemble":
		e := artime.DefaultEnsemble()
		cfg = &e
		newDetector = func(*nab.File) nab.Detector { return artime.NewEnsemble(e) }
	case "artime-profiled":
		p := artime.DefaultProfiled()
		cfg = &p
		newDetector = func(*nab.File) nab.Detector { return artime.NewProfiled(p) }
	case "univariate":
		u := nab.DefaultUnivariate()
		cfg = &u
		newDetector = func(*nab.File) nab.Detector { return nab.NewUnivariate(u) }
	case "artime", "artime-untuned":
		a := artime.Default()
		if detector == "artime-untuned" {
			a = artime.Untuned()
		}
		cfg = &a
		newDetector = func(*nab.File) nab.Detector { return artime.NewLadder(a) }
	case "artime-ladder-range":
		// The causal ladder told each file's range alone: not causal, to
		// see what the range is worth to the ladder itself.
		a := artime.Default()
		cfg = &a
		newDetector = func(f *nab.File) nab.Detector {
			return artime.NewLadderKnowingRange(a, slices.Min(f.Values), slices.Max(f.Values))
		}
	case "artime-knowing", "artime-knowing-range", "artime-knowing-probation":
		// ARTime as published, told what NAB tells it of each file (its
		// range and, through the probationary period, its length), or
		// one of the two: not causal, to check the port and to see what
		// each is worth.
		a := artime.Published()
		cfg = &a
		newDetector = func(f *nab.File) nab.Detector {
			lo, hi, p := slices.Min(f.Values), slices.Max(f.Values), f.Probation()
			switch detector {
			case "artime-knowing-range":
				p = a.Probation
			case "artime-knowing-probation":
				b := a
				b.Probation = p
				return artime.New(b)
			}
			return artime.NewKnowing(a, lo, hi, p)
		}
	case "cad":
		c := cad.DefaultCausal()
		cfg = &c
		newDetector = func(*nab.File) nab.Detector { return cad.NewCausal(c) }
	case "cad-knowing":
		// CAD OSE as NAB runs it: told each file's range, its rest period
		// a fifth of the probationary period. Not causal.
		c := cad.Published()
		cfg = &c
		newDetector = func(f *nab.File) nab.Detector {
			k := c
			k.RestPeriod = f.Probation() / 5
			return cad.NewKnowing(k, slices.Min(f.Values), slices.Max(f.Values))
		}
	case "artime-cad":
		p := pairConfig{ARTime: artime.Default(), CAD: cad.DefaultCausal()}
		cfg = &p
		newDetector = func(*nab.File) nab.Detector {
			return larger{artime.NewLadder(p.ARTime), cad.NewCausal(p.CAD)}
		}
	default:
		return nil, fmt.Errorf("-detector %q: not one of %s", detector, detectors)
	}
	if config != "" {
		if err := json.Unmarshal([]byte(config), cfg); err != nil {
			return nil, fmt.Errorf("-config: %w", err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("-config: %w", err)
	}
	return newDetector, nil
}

// pairConfig configures artime-cad: the ladder and causal CAD OSE.
type pairConfig struct {
	ARTime artime.Config
	CAD    cad.CausalConfig
}

func (p pairConfig) Validate() error { return errors.Join(p.ARTime.Validate(), p.CAD.Validate()) }

// larger scores a point with both detectors and reports the larger score.
type larger [2]nab.Detector

func (l larger) Score(t time.Time, v float64) float64 {
	return max(l[0].Score(t, v), l[1].Score(t, v))
}

// tune runs the tuning half only and prints one line per profile.
func tune(nabDir, config string) error {
	c, newDetector, err := setup(nabDir, config)
	if err != nil {
		return err
	}
	half := c.Half(nab.Tuning)
	scores := half.RunFiles(newDetector, 0)
	results, err := half.Score(scores)
	if err != nil {
		return err
	}
	for _, r := range results {
		fmt.Printf("tuning %-20s %7.2f %4d/%d FP %d\n", r.Profile, r.Normalized, r.Detected, half.Windows(), r.FP)
	}
	if verbose {
		fmt.Printf("\n%-60s %8s %4s %4s %7s\n", "tuning file (standard profile, tuning threshold)", "raw", "TP", "FP", "windows")
		for _, f := range half.PerFile(scores, half.Profiles[0], results[0].Threshold) {
			fmt.Printf("%-60s %8.3f %4d %4d %3d/%d\n", f.Rel, f.Raw, f.TP, f.FP, f.Detected, f.Windows)
		}
	}
	return nil
}

func run(nabDir, out, config string, python bool) error {
	c, newDetector, err := setup(nabDir, config)
	if err != nil {
		return err
	}
	start := time.Now()
	scores := c.RunFiles(newDetector, 0)
	elapsed := time.Since(start)
	if out == "" {
		if out, err = os.MkdirTemp("", "meshguard-nab-"); err != nil {
			return err
		}
	}
	if err := c.WriteResults(out, detectorName, scores); err != nil {
		return err
	}
	points := 0
	for _, f := range c.Files {
		points += len(f.Values)
	}
	fmt.Printf("NAB v1.1, %d files, %d windows; detector %s (-detector %s), %s to run (%d points, all cores)\n", len(c.Files), c.Windows(), detectorName, detector, elapsed.Round(time.Millisecond), points)
	fmt.Printf("results: %s\n", filepath.Join(out, detectorName))
	var all []nab.Result
	for _, part := range reportSets(c) {
		results, err := part.c.Score(scores)
		if err != nil {
			return err
		}
		if all == nil {
			all = results
		}
		fmt.Printf("\n%s: %d files, %d windows\n", part.name, len(part.c.Files), part.c.Windows())
		fmt.Printf("%-20s %10s %10s %12s %5s %5s %9s\n", "profile", "score", "threshold", "raw", "TP", "FP", "windows")
		for _, r := range results {
			fmt.Printf("%-20s %10.2f %10.4f %12.4f %5d %5d %5d/%d\n", r.Profile, r.Normalized, r.Threshold, r.Raw, r.TP, r.FP, r.Detected, part.c.Windows())
		}
	}
	if verbose {
		fmt.Printf("\n%-60s %8s %4s %4s %7s\n", "file (standard profile, all-files threshold)", "raw", "TP", "FP", "windows")
		for i, f := range c.PerFile(scores, c.Profiles[0], all[0].Threshold) {
			fmt.Printf("%-60s %8.3f %4d %4d %3d/%d %s\n", f.Rel, f.Raw, f.TP, f.FP, f.Detected, f.Windows, nab.HalfOf(i))
		}
	}
	if !python {
		return nil
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		fmt.Println("\npython3 not found: no cross-check with score.py")
		return nil
	}
	fmt.Println("\ncross-check of all files, python3 score.py:")
	cmd := exec.Command(py, filepath.Join(c.Root, "score.py"), c.Root, out, detectorName)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}

// reportSet is one of the sets a full run reports: a name and its files.
type reportSet struct {
	name string
	c    *nab.Corpus
}

// reportSets are all files, the tuning half and the held-out half, in the
// order the tables print them.
func reportSets(c *nab.Corpus) []reportSet {
	return []reportSet{
		{"all files", c},
		{"tuning half (settings chosen here)", c.Half(nab.Tuning)},
		{"held-out half (never used to choose)", c.Half(nab.HeldOut)},
	}
}

// tuningSets are the tuning half and its two quarters, the sets a choice
// is judged on (a choice should gain on both quarters).
func tuningSets(c *nab.Corpus) []reportSet {
	half := c.Half(nab.Tuning)
	q := half.Quarters()
	return []reportSet{
		{"tuning half", half},
		{"tuning quarter q1", q[0]},
		{"tuning quarter q2", q[1]},
	}
}

// phaseTable runs the detector at skips 0 to k-1 and prints, for each set
// and profile, the mean score over them and the least and largest: the
// report sets, or with tuningOnly the tuning half and its quarters alone
// (the held-out half not even run).
func phaseTable(nabDir, config string, k int, tuningOnly bool) error {
	c, newDetector, err := setup(nabDir, config)
	if err != nil {
		return err
	}
	sets := reportSets(c)
	if tuningOnly {
		sets = tuningSets(c)
		c = sets[0].c
	}
	got := make([][][]float64, len(sets)) // set, profile, skip
	for n := range k {
		scores := c.RunFiles(func(f *nab.File) nab.Detector { return nab.Late(newDetector(f), n) }, 0)
		for i, set := range sets {
			results, err := set.c.Score(scores)
			if err != nil {
				return err
			}
			if got[i] == nil {
				got[i] = make([][]float64, len(results))
			}
			for p, r := range results {
				got[i][p] = append(got[i][p], r.Normalized)
			}
		}
	}
	fmt.Printf("NAB v1.1, detector %s (-detector %s), skips 0 to %d\n", detectorName, detector, k-1)
	for i, set := range sets {
		fmt.Printf("\n%s: %d files, %d windows\n", set.name, len(set.c.Files), set.c.Windows())
		fmt.Printf("%-20s %10s %10s %10s %10s\n", "profile", "skip 0", "mean", "least", "largest")
		for p, xs := range got[i] {
			mean := 0.0
			for _, x := range xs {
				mean += x / float64(len(xs))
			}
			fmt.Printf("%-20s %10.2f %10.2f %10.2f %10.2f\n", c.Profiles[p].Name, xs[0], mean, slices.Min(xs), slices.Max(xs))
		}
	}
	return nil
}

// repoRoot walks up from the working directory to the directory holding
// go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory; pass -nab")
		}
		dir = parent
	}
}
