package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/oklog/run"
	"github.com/spf13/cobra"

	"github.com/meshguard/meshguard/ingest"
	"github.com/meshguard/meshguard/storage"
)

func newServeCmd() *cobra.Command {
	var configPath, stages string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the pipeline: Kafka -> ingest -> ClickHouse",
		Long: `serve runs meshguard's streaming pipeline. The ingest stage reads OTLP
telemetry from Kafka, stores every flow in ClickHouse and commits Kafka
offsets only after ClickHouse acknowledged them. SIGTERM stops fetching,
flushes, commits and leaves the consumer group.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := LoadConfig(configPath, os.Environ())
			if err != nil {
				return err
			}
			if err := checkStages(stages); err != nil {
				return err
			}
			return serve(cmd.Context(), cfg)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "config file (YAML); every key can also be set by MESHGUARD_* variables")
	cmd.Flags().StringVar(&stages, "stages", "ingest", "comma-separated stages this replica runs (ingest for now)")
	return cmd
}

func checkStages(s string) error {
	for _, st := range strings.Split(s, ",") {
		if strings.TrimSpace(st) != "ingest" {
			return fmt.Errorf("--stages: %q is not a stage this version runs; use ingest", st)
		}
	}
	return nil
}

func serve(ctx context.Context, cfg Config) error {
	log := newLogger(cfg.Log, stderr)
	store, err := storage.NewClickHouse(cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := migrateWhenReachable(ctx, store, log); err != nil {
		return fmt.Errorf("migrating the ClickHouse schema: %w", err)
	}
	consumer, err := ingest.NewConsumer(cfg.Kafka, cfg.Ingest, store, log)
	if err != nil {
		return err
	}

	var g run.Group
	{
		// Ingest: on interrupt it stops fetching and drains into the
		// store, which is still open (it closes after the group returns).
		ctx, cancel := context.WithCancel(ctx)
		g.Add(func() error { return consumer.Run(ctx) }, func(error) { cancel() })
	}
	{
		// Retention: 18.16 has no TTL, so old day partitions are dropped
		// here; on modern servers the TTL does it and this finds nothing.
		ctx, cancel := context.WithCancel(ctx)
		g.Add(func() error { retentionLoop(ctx, store, log, time.Hour); return nil }, func(error) { cancel() })
	}
	{
		// Signals end the group.
		g.Add(func() error { <-ctx.Done(); return nil }, func(error) {})
	}
	log.Info("meshguard serving", "version", version, "brokers", cfg.Kafka.Brokers, "group", cfg.Kafka.GroupID)
	err = g.Run()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	log.Info("meshguard stopped", "err", err)
	return err
}

// migrateWhenReachable migrates the schema, waiting for a ClickHouse that
// is down or still starting (a pod restarting in a loop helps nobody); a
// permanent error (bad credentials, a schema it cannot upgrade) fails now.
func migrateWhenReachable(ctx context.Context, store *storage.ClickHouse, log *slog.Logger) error {
	wait := time.Second
	for attempt := 1; ; attempt++ {
		err := store.Migrate(ctx)
		if err == nil || storage.IsPermanent(err) || ctx.Err() != nil {
			return err
		}
		log.Warn("ClickHouse not reachable yet; retrying", "err", err, "attempt", attempt, "retry_in", wait)
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
