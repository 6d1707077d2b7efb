// Command eval measures meshguard's detectors on a generated mesh
// (`make eval`): the realistic scenario of scenario/, with each attack
// class injected once after the learning period, goes through ingest's
// decoder into detect, and the report says per class whether and how fast
// it was detected, and how many false detections the benign traffic
// raised per 1000 service-hours. It is a report: the exit status is 0
// whatever the figures (1 only when the run itself failed).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/meshguard/meshguard/scenario"
)

func main() {
	cfg := DefaultConfig()
	start := flag.String("start", cfg.Start.Format(time.RFC3339), "event time the mesh starts at (RFC 3339)")
	flag.DurationVar(&cfg.Duration, "duration", cfg.Duration, "event time to play")
	flag.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the generator")
	flag.Float64Var(&cfg.Scale, "scale", cfg.Scale, "multiplier of the benign traffic")
	flag.Float64Var(&cfg.Strength, "strength", cfg.Strength, "strength of every attack")
	attacks := flag.String("attacks", "all", `attacks to inject: comma-separated kinds, "all" or "none"`)
	flag.IntVar(&cfg.Partitions, "partitions", cfg.Partitions, "detector shards (flows spread by source workload)")
	flag.DurationVar(&cfg.Detect.Window, "window", cfg.Detect.Window, "detect.window")
	flag.DurationVar(&cfg.Detect.LearningPeriod, "learning", cfg.Detect.LearningPeriod, "detect.learning_period (attacks start after it)")
	flag.Float64Var(&cfg.Detect.Threshold, "threshold", cfg.Detect.Threshold, "detect.threshold")
	flag.BoolVar(&cfg.StolenCertificate, "stolen-certificate", cfg.StolenCertificate, "with mtls_downgrade, also inject its stolen-certificate form")
	flag.BoolVar(&cfg.Mixed, "mixed", cfg.Mixed, "the mixed mesh: stock text, label form and k8sattributes proxies, otlp_json, callers outside the mesh, restarts; identities resolved, respond deciding")
	flag.BoolVar(&cfg.Live, "live", cfg.Live, "the detector's clock follows the event time read, as in serve on a live mesh: early firing and the idle close act")
	verbose := flag.Bool("v", false, "list every false detection")
	flag.Parse()

	var err error
	if cfg.Start, err = time.Parse(time.RFC3339, *start); err != nil {
		fail(fmt.Errorf("-start: %w", err))
	}
	if cfg.Kinds, err = scenario.ParseKinds(*attacks); err != nil {
		fail(fmt.Errorf("-attacks: %w", err))
	}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		fail(err)
	}
	rep.Print(os.Stdout, *verbose)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "eval:", err)
	os.Exit(1)
}
