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
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/detect"
	"github.com/meshguard/meshguard/identity"
	"github.com/meshguard/meshguard/ingest"
	"github.com/meshguard/meshguard/respond"
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
	setMemoryLimit(cfg.Ingest.MemoryLimitMiB, log)
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
	kcfg := cfg.Kafka
	spec, err := serveSpec(cfg, stages, store, reg, log)
	if err != nil {
		return err
	}
	p, err := buildPipeline(spec)
	if err != nil {
		return err
	}
	if spec.Identity != nil {
		if err := startIdentity(ctx, cfg, spec.Identity, log); err != nil {
			return err
		}
	}
	if det := p.Detector; det != nil {
		restoreDetector(ctx, det, cfg.Detect.History, store, log)
		registerDetector(reg, det)
		if !stages["ingest"] {
			kcfg.GroupID += "-detect"
		}
		ctx, cancel := context.WithCancel(ctx)
		g.Add(func() error { return det.RunSaver(ctx, store, 5*time.Minute, log) }, func(error) { cancel() })
		tctx, tcancel := context.WithCancel(ctx)
		g.Add(func() error { return det.RunTicker(tctx) }, func(error) { tcancel() })
	}
	if p.Handlers != nil {
		addResponse(ctx, &g, cfg, p, store, log)
		wiring.set(p.Responder, p.Alerter)
	}
	if p.Flows != nil || p.Detect != nil {
		icfg := cfg.Ingest
		icfg.MaxFuture = cfg.Detect.MaxFuture // one bound, checked once: at ingest
		next, opts := p.ingestOptions()
		ing, err := ingest.NewConsumer(kcfg, icfg, next, log, opts...)
		if err != nil {
			return err
		}
		registerConsumer(reg, ing)
		ready.setConsumer(ing)
		// Ingest: on interrupt it stops fetching and drains into the
		// store, which is still open (it closes after the group returns).
		ctx, cancel := context.WithCancel(ctx)
		g.Add(func() error { return ing.Run(ctx) }, func(error) { cancel() })
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

// serveSpec is the pipeline the stages of this replica make up.
func serveSpec(cfg Config, stages stageSet, store *storage.ClickHouse, reg *prometheus.Registry, log *slog.Logger) (pipelineSpec, error) {
	spec := pipelineSpec{Actions: store, Blast: store, Log: log, Registerer: reg}
	if stages["ingest"] {
		spec.Store = store
	}
	if stages["ingest"] || stages["detect"] {
		spec.Identity = identityFor(cfg, log)
	}
	if stages["detect"] {
		spec.Detect, spec.Detections = &cfg.Detect, store
		spec.Baselines, spec.HandoffWait = store, cfg.Kafka.SessionTimeout
		spec.DetectionTaps = []consumer.Detections{countDetections(reg)}
	}
	if stages["respond"] {
		kube, err := kubeFor(cfg)
		if err != nil {
			return spec, fmt.Errorf("respond needs the Kubernetes API: %w", err)
		}
		spec.Respond = &cfg.Respond
		spec.RespondDeps = respond.Deps{Kube: kube, Identity: os.Getenv("POD_NAME")}
		spec.ActionTaps = []consumer.Actions{countActions(reg)}
	}
	if stages["alert"] {
		spec.Alert = &cfg.Alert
	}
	spec.Handoff = stages["detect"] && (stages["respond"] || stages["alert"])
	return spec, nil
}

// identityFor is the resolver serve runs: with identity.enabled and a
// cluster named (kubernetes.kubeconfig, or meshguard running in a pod). A
// KUBECONFIG or ~/.kube/config left on a machine is not taken as one:
// resolving a mesh's telemetry against another cluster's pods would fill
// in wrong identities.
func identityFor(cfg Config, log *slog.Logger) *identity.Resolver {
	if !cfg.Identity.Enabled {
		return nil
	}
	if cfg.Kubernetes.Kubeconfig == "" {
		if _, err := rest.InClusterConfig(); err != nil {
			log.Info("identity resolution off: no cluster (set kubernetes.kubeconfig, or run in a pod)")
			return nil
		}
	}
	ic := cfg.Identity
	// Late records must still find the pods they came from.
	ic.Remember = max(ic.Remember, cfg.Detect.AllowedLateness+time.Minute)
	return identity.New(ic)
}

// startIdentity starts the resolver's informers. Ingest holds its batches
// (identity.ErrNotSynced) until they listed the cluster.
func startIdentity(ctx context.Context, cfg Config, r *identity.Resolver, log *slog.Logger) error {
	kube, err := cfg.Kubernetes.RESTConfig()
	if err != nil {
		return fmt.Errorf("identity.enabled needs the Kubernetes API (or set identity.enabled: false): %w", err)
	}
	cs, err := kubernetes.NewForConfig(kube)
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	return r.Start(ctx, cs, log)
}

// addResponse runs the respond and alert stages: a feed of every
// replica's detections from ClickHouse into the responder (policies) and
// the alerter (Slack), gated on leadership so that one replica acts.
func addResponse(ctx context.Context, g *run.Group, cfg Config, p *pipeline, store *storage.ClickHouse, log *slog.Logger) {
	if a := p.Alerter; a != nil {
		ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		// The alerter drains last: it is interrupted after the group's
		// other actors, and drains within its own bound.
		g.Add(func() error { return a.Run(ctx) }, func(error) { cancel() })
	}
	feed := &storage.Feed{Store: store, Sink: p.Handlers, Log: log}
	if r := p.Responder; r != nil {
		ctx, cancel := context.WithCancel(ctx)
		g.Add(func() error { return r.Run(ctx) }, func(error) { cancel() })
		if cfg.Respond.LeaderElection.Enabled {
			feed.Active = r.Leading
		}
	}
	if h := p.Handoff; h != nil {
		h.active = feed.Active
		ctx, cancel := context.WithCancel(ctx)
		g.Add(func() error { return h.Run(ctx) }, func(error) { cancel() })
	}
	ctx, cancel := context.WithCancel(ctx)
	g.Add(func() error { return feed.Run(ctx, cfg.Detect.Hold) }, func(error) { cancel() })
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

// restoreDetector gives the detector the edge_minute history for edges
// its partitions' saved baselines lack. The baselines themselves are
// restored partition by partition as the group assigns them (the
// hand-off, detect/handoff.go): restoring every partition here would
// keep, and save over, the state of partitions another replica owns.
// Neither is worth failing start-up for: without them the detector
// relearns.
func restoreDetector(ctx context.Context, det *detect.Detector, history time.Duration, store *storage.ClickHouse, log *slog.Logger) {
	if history > 0 {
		now := time.Now()
		rows, err := store.EdgeMinutes(ctx, now.Add(-history), now)
		if err != nil {
			log.Warn("no warm start from edge_minute", "err", err)
		} else {
			log.Info("baselines warm-started from history", "edges", det.WarmStart(rows), "minutes", len(rows))
		}
	}
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
		if consumer.IsPermanent(err) {
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
