package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/meshguard/meshguard/test/bench"
)

// The collector's config, in parts: one kafka receiver (franz-go) per
// encoding, each on its own topic and group, as a collector takes one
// encoding per topic. Keys are those of kafkareceiver v0.165.0's README.
const receiverConfig = `  kafka/%[1]s:
    brokers: [%[2]s]
    group_id: %[3]s
    client_id: ingestbench
    # A new group would otherwise start at the end and read nothing.
    initial_offset: earliest
    logs:
      topics: [%[4]s]
      encoding: %[1]s
    # Mark after the pipeline ran, as meshguard commits after storing:
    # a committed offset then means decoded and handed to the exporter.
    message_marking:
      after: true
    # The default 1s would blur the end of a run by up to a second.
    autocommit:
      enable: true
      interval: 100ms
`

// nopExporter drops what it gets: the least a collector can do with
// these messages.
const nopExporter = `  nop:
`

// clickhouseExporter stores the logs in ClickHouse as a user of the
// collector would, instead of meshguard: the exporter's own schema
// (otel_logs, created at start as the default create_schema does) and the
// batching its README recommends (sending_queue.batch, not the batch
// processor), with block_on_overflow so that a full queue slows the
// receiver instead of dropping logs, and a 30 s timeout: on this shared
// machine inserts of the default 5 s timed out and were retried, storing
// rows twice. Everything else is the default of clickhouseexporter
// v0.165.0 (config.go, README): lz4, async_insert, 10 consumers, 1000
// queued requests, retries.
const clickhouseExporter = `  clickhouse:
    endpoint: tcp://%s?dial_timeout=10s
    database: %s
    logs_table_name: otel_logs
    create_schema: true
    timeout: 30s
    sending_queue:
      enabled: true
      block_on_overflow: true
      batch:
        flush_timeout: 200ms
        min_size: 8192
`

const serviceConfig = `service:
  telemetry:
    # No :8888 metrics endpoint to collide with another run.
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [%s]
      exporters: [%s]
`

// collectorConfig is the whole config for exporter (its name and its
// config block), with one receiver and group per encoding's topic.
func (b *runner) collectorConfig(groups []string, exporter, exporterBlock string) string {
	var sb strings.Builder
	sb.WriteString("receivers:\n")
	var names []string
	for i, t := range b.data.byEncoding {
		fmt.Fprintf(&sb, receiverConfig, t.encoding, strings.Join(b.brokers, ", "), groups[i], t.name)
		names = append(names, "kafka/"+t.encoding)
	}
	sb.WriteString("exporters:\n")
	sb.WriteString(exporterBlock)
	fmt.Fprintf(&sb, serviceConfig, strings.Join(names, ", "), exporter)
	return sb.String()
}

// otelcolBinary builds (or finds in the cache) the collector of
// test/bench/otelcol/bench-config.yaml.
func otelcolBinary() (string, error) {
	cmd := exec.Command("bash", "test/bench/otelcol.sh", "bench")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("test/bench/otelcol.sh bench (run from the repository root, or pass -otelcol): %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// collectorGroups names the run's group of each receiver.
func (b *runner) collectorGroups(tag string, run int) []string {
	var groups []string
	for _, t := range b.data.byEncoding {
		groups = append(groups, fmt.Sprintf("%s-%s%d-%s", b.id, tag, run, t.encoding))
	}
	b.groups = append(b.groups, groups...)
	return groups
}

// startCollector writes the run's config and measures the collector
// with it until check says done.
func (b *runner) startCollector(ctx context.Context, name string, run int, config string,
	check func(context.Context) (done, progress bool, err error)) (result, error) {
	cfg := filepath.Join(b.dir, fmt.Sprintf("%s-%d.yaml", name, run))
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		return result{}, err
	}
	logPath := filepath.Join(b.dir, fmt.Sprintf("%s-%d.log", name, run))
	return b.measure(ctx, name, run, logPath, os.Environ(), b.otelcol, []string{"--config=" + cfg}, check)
}

// runCollectorNop times the collector -> nop from its start until every
// group's committed offsets reach the end of every partition of its topic.
func (b *runner) runCollectorNop(ctx context.Context, name string, run int) (result, error) {
	groups := b.collectorGroups("nop", run)
	return b.startCollector(ctx, name, run, b.collectorConfig(groups, "nop", nopExporter),
		func(ctx context.Context) (done, progress bool, err error) {
			done = true
			for i, t := range b.data.byEncoding {
				got, err := bench.Committed(ctx, b.kafkaClient, groups[i], t.name, b.data.partitions)
				if err != nil {
					return false, progress, nil // the group may not exist yet
				}
				for p, end := range t.end {
					done = done && got[p] >= end
					progress = progress || got[p] > 0
				}
			}
			return done, progress, nil
		})
}

// runCollectorClickHouse times the collector -> ClickHouse from its start
// until its logs table holds every produced record, each once (a retried
// insert stores its rows again: distinct (request_id, reporter) pairs are
// the records). The exporter's queue acknowledges a message before it is
// inserted, so committed offsets say nothing here: only the table does.
func (b *runner) runCollectorClickHouse(ctx context.Context, name string, run int) (result, error) {
	db := fmt.Sprintf("%s_otel%d", b.id, run)
	if err := b.ch.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		return result{}, fmt.Errorf("clickhouse: create database %s: %w", db, err)
	}
	if !b.keep {
		defer b.dropDatabase(db)
	}
	groups := b.collectorGroups("ch", run)
	want := uint64(b.data.records)
	return b.startCollector(ctx, name, run, b.collectorConfig(groups, "clickhouse", fmt.Sprintf(clickhouseExporter, b.chAddr, db)),
		func(ctx context.Context) (done, progress bool, err error) {
			n := tableRows(ctx, b.ch, db+".otel_logs")
			if n < want {
				return false, n > 0, nil
			}
			var distinct uint64
			err = b.ch.QueryRow(ctx, "SELECT uniqExact(LogAttributes['request_id'], LogAttributes['reporter']) FROM "+db+".otel_logs").Scan(&distinct)
			if err != nil {
				return false, true, nil // a slow server: ask again
			}
			if distinct > want {
				return false, true, fmt.Errorf("%d distinct records stored, only %d produced", distinct, want)
			}
			if distinct == want && n > want {
				fmt.Fprintf(os.Stderr, "  %s run %d: %d rows for %d records (retried inserts)\n", name, run, n, want)
			}
			return distinct == want, true, nil
		})
}
