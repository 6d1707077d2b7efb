package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// collectorConfig is the baseline: the collector's kafka receiver
// (franz-go) decoding otlp_proto into pdata, handed to an exporter that
// drops it. Nothing is stored; it is the least a collector can do with
// these messages. Keys are those of kafkareceiver v0.145.0's README.
const collectorConfig = `receivers:
  kafka:
    brokers: [%s]
    group_id: %s
    client_id: ingestbench
    # A new group would otherwise start at the end and read nothing.
    initial_offset: earliest
    logs:
      topics: [%s]
      encoding: otlp_proto
    # Mark after the pipeline ran, as meshguard commits after storing:
    # a committed offset then means decoded and exported.
    message_marking:
      after: true
    # The default 1s would blur the end of a run by up to a second.
    autocommit:
      enable: true
      interval: 100ms
exporters:
  nop:
service:
  telemetry:
    # No :8888 metrics endpoint to collide with another run.
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [kafka]
      exporters: [nop]
`

// otelcolBinary builds (or finds in the cache) the collector of
// test/bench/otelcol/builder-config.yaml.
func otelcolBinary() (string, error) {
	cmd := exec.Command("bash", "test/bench/otelcol.sh", "build")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("test/bench/otelcol.sh build (run from the repository root, or pass -otelcol): %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// runCollector times the collector from its start until its group's
// committed offsets reach the end of every partition.
func (b *runner) runCollector(ctx context.Context, run int) (result, error) {
	group := fmt.Sprintf("%s-otel%d", b.id, run)
	b.groups = append(b.groups, group)
	cfg := filepath.Join(b.dir, fmt.Sprintf("otelcol-%d.yaml", run))
	if err := os.WriteFile(cfg, fmt.Appendf(nil, collectorConfig, strings.Join(b.brokers, ", "), group, b.data.topic), 0o644); err != nil {
		return result{}, err
	}
	logPath := filepath.Join(b.dir, fmt.Sprintf("otelcol-%d.log", run))
	return b.measure(ctx, "otelcol", run, logPath, os.Environ(), b.otelcol, []string{"--config=" + cfg},
		func(ctx context.Context) (done, progress bool, err error) {
			got, err := committed(ctx, b.kafkaClient, group, b.data.topic, b.data.partitions)
			if err != nil {
				return false, false, nil // the group may not exist yet
			}
			done = true
			for p, end := range b.data.end {
				done = done && got[p] >= end
				progress = progress || got[p] > 0
			}
			return done, progress, nil
		})
}
