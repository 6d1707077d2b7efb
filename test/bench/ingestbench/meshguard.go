package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/meshguard/meshguard/test/bench"
)

// buildMeshguard builds cmd/meshguard as `meshguard serve` ships: no race
// detector, no coverage, default flags.
func buildMeshguard(dir string) (string, error) {
	bin := filepath.Join(dir, "meshguard")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/meshguard/meshguard/cmd/meshguard").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/meshguard (run from the repository root): %v\n%s", err, out)
	}
	return bin, nil
}

// runMeshguard times `meshguard serve --stages STAGES` from its start
// until ClickHouse holds every produced record as a distinct flow: fetch,
// decode, store (and detect, when a stage) and the server's own insert
// work, end to end.
func (b *runner) runMeshguard(ctx context.Context, name string, run int, stages string) (result, error) {
	tag := strings.TrimPrefix(name, "meshguard-")
	db := fmt.Sprintf("%s_mg_%s%d", b.id, tag, run)
	group := fmt.Sprintf("%s-mg-%s%d", b.id, tag, run)
	// serve would create the database itself; creating it here keeps that
	// out of the timing.
	if err := b.ch.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		return result{}, fmt.Errorf("clickhouse: create database %s: %w", db, err)
	}
	b.groups = append(b.groups, group)
	if !b.keep {
		defer b.dropDatabase(db)
	}

	// MESHGUARD_* variables of the caller pass through (to try another
	// ingest.batch_size, say); these must point at this run's topic,
	// group and database.
	env := append(os.Environ(),
		"MESHGUARD_KAFKA_BROKERS="+b.brokers[0],
		"MESHGUARD_KAFKA_GROUP_ID="+group,
		"MESHGUARD_KAFKA_TOPICS_LOGS="+b.data.mixed.name,
		"MESHGUARD_KAFKA_TOPICS_SPANS=",
		"MESHGUARD_KAFKA_TOPICS_METRICS=",
		"MESHGUARD_KAFKA_DLQ_TOPIC="+b.data.mixed.name+"-dlq",
		"MESHGUARD_CLICKHOUSE_DSN=clickhouse://"+b.chAddr+"/"+db,
		// The API on a free port, unauthenticated: nothing reads it here,
		// and two runs must not collide.
		"MESHGUARD_SERVER_LISTEN=127.0.0.1:0",
		"MESHGUARD_SERVER_AUTH_MODE=none",
	)
	logPath := filepath.Join(b.dir, fmt.Sprintf("%s-%d.log", name, run))
	want := uint64(b.data.records)
	return b.measure(ctx, name, run, logPath, env, b.meshguard, []string{"serve", "--stages", stages},
		func(ctx context.Context) (done, progress bool, err error) {
			rows := tableRows(ctx, b.ch, db+".flows")
			if rows < want {
				return false, rows > 0, nil
			}
			// Count first, distinct only then: uniqExact over a million
			// flows every 100 ms would take CPU from the consumer.
			distinct, err := distinctFlows(ctx, b.ch, db)
			if err != nil {
				return false, true, nil // a slow server: ask again
			}
			if distinct > want {
				return false, true, fmt.Errorf("%d distinct flow ids stored, only %d records produced", distinct, want)
			}
			return distinct == want, true, nil
		})
}

// tableRows is count() of table; 0 while it does not exist yet.
func tableRows(ctx context.Context, conn driver.Conn, table string) uint64 {
	var n uint64
	_ = conn.QueryRow(ctx, "SELECT count() FROM "+table).Scan(&n)
	return n
}

func (b *runner) dropDatabase(db string) {
	if err := b.ch.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db); err != nil {
		fmt.Fprintf(os.Stderr, "ingestbench: drop database %s: %v\n", db, err)
	}
}

func distinctFlows(ctx context.Context, conn driver.Conn, db string) (uint64, error) {
	var n uint64
	err := conn.QueryRow(ctx, "SELECT uniqExact(flow_id) FROM "+db+".flows").Scan(&n)
	return n, err
}

// measure runs bin until done says every record went through, sampling
// what the table reports. progress marks the first sign of work (the
// startup cost: process start, schema, joining the group).
func (b *runner) measure(ctx context.Context, name string, run int, logPath string, env []string, bin string, args []string,
	check func(context.Context) (done, progress bool, err error)) (result, error) {
	r := result{consumer: name, run: run, loadBefore: loadAvg()}
	kafkaCPU, chCPU := b.kafka.cpu(), b.clickhouse.cpu()
	start := time.Now()
	p, err := bench.StartProc(name, logPath, env, bin, args...)
	if err != nil {
		return r, err
	}
	defer p.Stop(30 * time.Second)
	deadline := start.Add(b.timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-tick.C:
		}
		if p.Exited() {
			return r, p.Failure("exited before consuming every record")
		}
		pollCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		done, progress, err := check(pollCtx)
		cancel()
		if err != nil {
			return r, p.Failure("%v", err)
		}
		if progress && r.startup == 0 {
			fmt.Fprintf(os.Stderr, "  %s: first progress after %s\n", name, time.Since(start).Round(10*time.Millisecond))
			r.startup = time.Since(start)
		}
		if done {
			r.wall = time.Since(start)
			fmt.Fprintf(os.Stderr, "  %s: done after %s\n", name, r.wall.Round(10*time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			return r, p.Failure("not done after %s (raise -timeout?)", b.timeout)
		}
	}
	// Read the counters before the process exits: /proc forgets it then.
	pid := p.Cmd.Process.Pid
	if r.peakRSS, err = peakRSS(pid); err != nil {
		return r, p.Failure("%v", err)
	}
	if r.cpu, err = cpuTime(pid); err != nil {
		return r, p.Failure("%v", err)
	}
	r.kafkaCPU, r.clickhouseCPU = b.kafka.cpu()-kafkaCPU, b.clickhouse.cpu()-chCPU
	return r, nil
}
