// Command nabrun runs meshguard's univariate detector (nab.Univariate)
// over the NAB corpus, writes its results in NAB's layout, scores them with
// the project's scorer (test/nab) under the three profiles and prints the
// table; when python3 is installed it also scores the same files with
// ../shared/nab/score.py as a cross-check.
//
//	go run ./test/nab/cmd/nabrun [-nab DIR] [-out DIR] [-config JSON]
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/meshguard/meshguard/test/nab"
)

const detectorName = "meshguard"

var verbose bool

func main() {
	nabDir := flag.String("nab", "", "NAB directory (default ../shared/nab beside the repository)")
	out := flag.String("out", "", "results directory (default a new temporary directory)")
	config := flag.String("config", "", "JSON merged over nab.DefaultUnivariate() (for experiments; the reported figures use the default)")
	python := flag.Bool("python", true, "cross-check with python3 ../shared/nab/score.py when python3 exists")
	flag.BoolVar(&verbose, "v", false, "print the standard profile's score per file")
	flag.Parse()
	if err := run(*nabDir, *out, *config, *python); err != nil {
		fmt.Fprintln(os.Stderr, "nabrun:", err)
		os.Exit(1)
	}
}

func run(nabDir, out, config string, python bool) error {
	if nabDir == "" {
		root, err := repoRoot()
		if err != nil {
			return err
		}
		if nabDir, err = nab.Locate(root); err != nil {
			return err
		}
	}
	cfg := nab.DefaultUnivariate()
	if config != "" {
		if err := json.Unmarshal([]byte(config), &cfg); err != nil {
			return fmt.Errorf("-config: %w", err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("-config: %w", err)
	}
	c, err := nab.Load(nabDir)
	if err != nil {
		return err
	}
	start := time.Now()
	scores := c.Run(func() nab.Detector { return nab.NewUnivariate(cfg) }, 0)
	elapsed := time.Since(start)
	if out == "" {
		if out, err = os.MkdirTemp("", "meshguard-nab-"); err != nil {
			return err
		}
	}
	if err := c.WriteResults(out, detectorName, scores); err != nil {
		return err
	}
	results, err := c.Score(scores)
	if err != nil {
		return err
	}
	fmt.Printf("NAB v1.1, %d files, %d windows; detector %s (nab.Univariate), %s to run\n", len(c.Files), c.Windows(), detectorName, elapsed.Round(time.Millisecond))
	fmt.Printf("results: %s\n\n", filepath.Join(out, detectorName))
	fmt.Printf("%-20s %10s %10s %12s %5s %5s %9s\n", "profile", "score", "threshold", "raw", "TP", "FP", "windows")
	for _, r := range results {
		fmt.Printf("%-20s %10.2f %10.4f %12.4f %5d %5d %5d/%d\n", r.Profile, r.Normalized, r.Threshold, r.Raw, r.TP, r.FP, r.Detected, c.Windows())
	}
	if verbose {
		fmt.Printf("\n%-60s %8s %4s %4s %7s\n", "file (standard profile)", "raw", "TP", "FP", "windows")
		for _, f := range c.PerFile(scores, c.Profiles[0], results[0].Threshold) {
			fmt.Printf("%-60s %8.3f %4d %4d %3d/%d\n", f.Rel, f.Raw, f.TP, f.FP, f.Detected, f.Windows)
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
	fmt.Println("\ncross-check, python3 score.py:")
	cmd := exec.Command(py, filepath.Join(nabDir, "score.py"), nabDir, out, detectorName)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
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
