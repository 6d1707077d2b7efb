package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/meshguard/meshguard/detect"
	"github.com/meshguard/meshguard/ingest"
	"github.com/meshguard/meshguard/respond"
	"github.com/meshguard/meshguard/respond/alert"
	"github.com/meshguard/meshguard/storage"
)

func newServeCmd() *cobra.Command {
	var configPath, stages string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the pipeline: Kafka -> ingest -> ClickHouse, detect",
		Long: `serve runs meshguard's streaming pipeline. The ingest stage reads OTLP
telemetry from Kafka, stores every flow in ClickHouse and commits Kafka
offsets only after ClickHouse acknowledged them. The detect stage scores
every window of flows against the baselines and writes detections to
ClickHouse. SIGTERM stops fetching, flushes, commits, saves the baselines
and leaves the consumer group.

Stages: a replica running ingest and detect feeds both from one consumer;
a replica running detect alone reads Kafka in its own consumer group
(kafka.group_id + "-detect"), so detection scales with partitions
independently of storage. respond and alert read every replica's
detections from ClickHouse; with respond.leader_election on, only the
replica holding the Lease acts and alerts, so any number may run them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := LoadServeConfig(configPath, os.Environ())
			if err != nil {
				return err
			}
			st, err := parseStages(stages)
			if err != nil {
				return err
			}
			return serve(cmd.Context(), cfg, st)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "config file (YAML); every key can also be set by MESHGUARD_* variables")
	cmd.Flags().StringVar(&stages, "stages", "ingest,detect,respond,alert", "comma-separated stages this replica runs: "+strings.Join(knownStages, ", "))
	return cmd
}

var knownStages = []string{"ingest", "detect", "respond", "alert"}

type stageSet map[string]bool

func parseStages(s string) (stageSet, error) {
	set := stageSet{}
	for _, st := range strings.Split(s, ",") {
		st = strings.TrimSpace(st)
		if !slices.Contains(knownStages, st) {
			return nil, fmt.Errorf("--stages: %q is not a stage; use a comma-separated list of %s", st, strings.Join(knownStages, ", "))
		}
		set[st] = true
	}
	return set, nil
}

func serve(ctx context.Context, cfg Config, stages stageSet) error {
	log := newLogger(cfg.Log, stderr)
	store, err := storage.NewClickHouse(cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer store.Close()
	reg := newRegistry()
	ready := &readiness{store: store}

	// The HTTP server starts first, so that probes answer (live, not yet
	// ready) while ClickHouse or Kafka are still out of reach. It stops
	// last, after the pipeline drained.
	var wiring serverWiring
	srvErr := make(chan error, 1)
	srvCtx, stopServer := context.WithCancel(context.WithoutCancel(ctx))
	defer func() { stopServer(); <-srvErr }()
	if err := startServer(srvCtx, cfg, store, reg, ready, &wiring, log, srvErr); err != nil {
		return err
	}

	if err := migrateWhenReachable(ctx, store, log); err != nil {
		return fmt.Errorf("migrating the ClickHouse schema: %w", err)
	}

	var g run.Group
	var next storage.FlowConsumer
	kcfg := cfg.Kafka
	if stages["ingest"] {
		next = store
	}
	if stages["detect"] {
		det, err := newDetector(ctx, cfg.Detect, detect.Sinks(detect.StorageSink(store), countDetections(reg)), store, log)
		if err != nil {
			return err
		}
		registerDetector(reg, det)
		// The detector goes last: it never fails a batch, so a store
		// retry cannot make it count the batch twice.
		if next != nil {
			next = storage.Fanout(next, det)
		} else {
			next = det
			kcfg.GroupID += "-detect"
		}
		ctx, cancel := context.WithCancel(ctx)
		g.Add(func() error { return det.RunSaver(ctx, store, 5*time.Minute, log) }, func(error) { cancel() })
		tctx, tcancel := context.WithCancel(ctx)
		g.Add(func() error { return det.RunTicker(tctx) }, func(error) { tcancel() })
	}
	if stages["respond"] || stages["alert"] {
		resp, alerter, err := addResponse(ctx, &g, cfg, stages, store, reg, log, &wiring)
		if err != nil {
			return err
		}
		wiring.set(resp, alerter)
	}
	if next != nil {
		consumer, err := ingest.NewConsumer(kcfg, cfg.Ingest, next, log)
		if err != nil {
			return err
		}
		registerConsumer(reg, consumer)
		ready.setConsumer(consumer)
		// Ingest: on interrupt it stops fetching and drains into the
		// store, which is still open (it closes after the group returns).
		ctx, cancel := context.WithCancel(ctx)
		g.Add(func() error { return consumer.Run(ctx) }, func(error) { cancel() })
	}
	if stages["ingest"] {
		// Retention: 18.16 has no TTL, so old day partitions are dropped
		// here; on modern servers the TTL does it and this finds nothing.
		ctx, cancel := context.WithCancel(ctx)
		g.Add(func() error { retentionLoop(ctx, store, log, time.Hour); return nil }, func(error) { cancel() })
	}
	{
		// Signals end the group.
		g.Add(func() error { <-ctx.Done(); return nil }, func(error) {})
	}
	ready.setStarted()
	return runGroup(&g, log, cfg, kcfg, stages)
}

func runGroup(g *run.Group, log *slog.Logger, cfg Config, kcfg ingest.KafkaConfig, stages stageSet) error {
	log.Info("meshguard serving", "version", version, "stages", stages.String(), "brokers", kcfg.Brokers, "group", kcfg.GroupID)
	err := g.Run()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	log.Info("meshguard stopped", "err", err)
	return err
}

// addResponse adds the respond and alert stages: a feed of every
// replica's detections from ClickHouse into the responder (policies) and
// the alerter (Slack), gated on leadership so that one replica acts.
func addResponse(ctx context.Context, g *run.Group, cfg Config, stages stageSet, store *storage.ClickHouse, reg *prometheus.Registry, log *slog.Logger, wiring *serverWiring) (*respond.Responder, *alert.Alerter, error) {
	var sinks []detect.Sink
	var alerter *alert.Alerter
	if stages["alert"] {
		deps := alert.Deps{Log: log, Actions: store, Registerer: reg}
		if stages["respond"] {
			// The alerter is built before the responder it reports for
			// (the responder sends it its decisions), so clicks reach the
			// responder through the wiring, which has it once it exists.
			// Without the respond stage here there is nothing to click:
			// this replica's alerter learns of no action.
			deps.Controller = modeCeiling{op: wiring, mode: cfg.Respond.Mode}
		}
		var err error
		alerter, err = alert.New(cfg.Alert, deps)
		if err != nil {
			return nil, nil, err
		}
		ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		// The alerter drains last: it is interrupted after the group's
		// other actors, and drains within its own bound.
		g.Add(func() error { return alerter.Run(ctx) }, func(error) { cancel() })
	}
	var resp *respond.Responder
	if stages["respond"] {
		kube, err := cfg.Kubernetes.RESTConfig()
		if err != nil && cfg.Respond.Backend != respond.BackendGitOps {
			return nil, nil, fmt.Errorf("respond needs the Kubernetes API: %w", err)
		}
		deps := respond.Deps{Kube: kube, Actions: store, Blast: store, Logger: log, Identity: os.Getenv("POD_NAME")}
		decisions := actionSinks{countActions(reg)}
		if alerter != nil {
			decisions = append(decisions, alerter)
		}
		deps.Sink = decisions
		if cfg.Respond.Backend == respond.BackendGitOps {
			deps.Backend = respond.NewGitOpsBackend(cfg.Respond.GitOpsDir)
			if kube == nil {
				deps.Resolver = respond.ConventionResolver
			}
		}
		resp, err = respond.New(cfg.Respond, deps)
		if err != nil {
			return nil, nil, err
		}
		sinks = append(sinks, resp)
		ctx, cancel := context.WithCancel(ctx)
		g.Add(func() error { return resp.Run(ctx) }, func(error) { cancel() })
	}
	if alerter != nil {
		sinks = append(sinks, alerter)
	}
	feed := &detect.Feed{Store: store, Sink: detect.Sinks(sinks...), Log: log}
	if resp != nil && cfg.Respond.LeaderElection.Enabled {
		feed.Active = resp.Leading
	}
	ctx, cancel := context.WithCancel(ctx)
	g.Add(func() error { return feed.Run(ctx, cfg.Detect.Hold) }, func(error) { cancel() })
	return resp, alerter, nil
}

func (s stageSet) String() string {
	var out []string
	for _, st := range knownStages {
		if s[st] {
			out = append(out, st)
		}
	}
	return strings.Join(out, ",")
}

// newDetector builds the detector and gives it its memory back: the saved
// baselines first, then edge_minute history for edges they lack. Neither is
// worth failing start-up for: without them the detector relearns.
func newDetector(ctx context.Context, cfg detect.Config, sink detect.Sink, store *storage.ClickHouse, log *slog.Logger) (*detect.Detector, error) {
	det, err := detect.New(cfg, sink, log)
	if err != nil {
		return nil, err
	}
	if n, err := det.Restore(ctx, store); err != nil {
		log.Warn("saved baselines not restored; relearning", "err", err)
	} else {
		log.Info("baselines restored", "edges", n)
	}
	if cfg.History > 0 {
		now := time.Now()
		rows, err := store.EdgeMinutes(ctx, now.Add(-cfg.History), now)
		if err != nil {
			log.Warn("no warm start from edge_minute", "err", err)
		} else {
			log.Info("baselines warm-started from history", "edges", det.WarmStart(rows), "minutes", len(rows))
		}
	}
	return det, nil
}

// migrateWhenReachable migrates the schema, waiting for a ClickHouse that
// is down or still starting. A permanent error (refused credentials, a
// schema it cannot upgrade) is logged as an error naming the setting and
// retried slowly rather than returned: exiting would only put the pod in a
// crash loop, while waiting lets a fixed Secret or server take effect.
func migrateWhenReachable(ctx context.Context, store *storage.ClickHouse, log *slog.Logger) error {
	wait := time.Second
	for attempt := 1; ; attempt++ {
		err := store.Migrate(ctx)
		if err == nil || ctx.Err() != nil {
			return err
		}
		if storage.IsPermanent(err) {
			wait = time.Minute
			log.Error("ClickHouse refused the schema migration; fix the setting named below, retrying", "err", err, "attempt", attempt, "retry_in", wait)
		} else {
			log.Warn("ClickHouse not reachable yet; retrying", "err", err, "attempt", attempt, "retry_in", wait)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// retentionLoop drops expired partitions now and every interval until ctx
// ends. A failure is logged and tried again next time: retention is never
// worth stopping ingest for.
func retentionLoop(ctx context.Context, store *storage.ClickHouse, log *slog.Logger, every time.Duration) {
	for {
		if n, err := store.DropExpiredPartitions(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("dropping expired partitions failed; retrying later", "err", err, "retry_in", every)
		} else if n > 0 {
			log.Info("dropped expired partitions", "partitions", n)
		}
		select {
		case <-time.After(every):
		case <-ctx.Done():
			return
		}
	}
}
