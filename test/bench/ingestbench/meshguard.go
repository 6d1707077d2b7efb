package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
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

// runMeshguard times `meshguard serve` from its start until ClickHouse
// holds every produced record as a distinct flow: fetch, decode, store and
// the server's own insert work, end to end.
func (b *runner) runMeshguard(ctx context.Context, run int) (result, error) {
	db := fmt.Sprintf("%s_mg%d", b.id, run)
	group := fmt.Sprintf("%s-mg%d", b.id, run)
	// serve would create the database itself; creating it here keeps that
	// out of the timing.
	if err := b.ch.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		return result{}, fmt.Errorf("clickhouse: create database %s: %w", db, err)
	}
	b.groups = append(b.groups, group)
	if !b.keep {
		defer func() {
			if err := b.ch.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db); err != nil {
				fmt.Fprintf(os.Stderr, "ingestbench: drop database %s: %v\n", db, err)
			}
		}()
	}

	// MESHGUARD_* variables of the caller pass through (to try another
	// ingest.batch_size, say); these must point at this run's topic,
	// group and database.
	env := append(os.Environ(),
		"MESHGUARD_KAFKA_BROKERS="+b.brokers[0],
		"MESHGUARD_KAFKA_GROUP_ID="+group,
		"MESHGUARD_KAFKA_TOPICS_LOGS="+b.data.topic,
		"MESHGUARD_KAFKA_TOPICS_SPANS=",
		"MESHGUARD_KAFKA_TOPICS_METRICS=",
		"MESHGUARD_KAFKA_DLQ_TOPIC="+b.data.topic+"-dlq",
		"MESHGUARD_CLICKHOUSE_DSN=clickhouse://"+b.chAddr+"/"+db,
	)
	logPath := filepath.Join(b.dir, fmt.Sprintf("meshguard-%d.log", run))
	want := uint64(b.data.records)
	return b.measure(ctx, "meshguard", run, logPath, env, b.meshguard, []string{"serve"},
		func(ctx context.Context) (done, progress bool, err error) {
			rows := flowRows(ctx, b.ch, db)
			if rows < want {
				return false, rows > 0, nil
			}
			// Count first, distinct only then: uniqExact over a million
			// flows every 100 ms would take CPU from the consumer.
			distinct, err := distinctFlows(ctx, b.ch, db)
			if err != nil {
				return false, true, err
			}
			if distinct > want {
				return false, true, fmt.Errorf("%d distinct flow ids stored, only %d records produced", distinct, want)
			}
			return distinct == want, true, nil
		})
}

// flowRows is count() of db.flows; 0 while the table does not exist yet.
func flowRows(ctx context.Context, conn driver.Conn, db string) uint64 {
	var n uint64
	_ = conn.QueryRow(ctx, "SELECT count() FROM "+db+".flows").Scan(&n)
	return n
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
	p, err := startProc(name, logPath, env, bin, args...)
	if err != nil {
		return r, err
	}
	defer p.stop(30 * time.Second)
	deadline := start.Add(b.timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-tick.C:
		}
		if p.exited() {
			return r, p.failure("exited before consuming every record")
		}
		pollCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		done, progress, err := check(pollCtx)
		cancel()
		if err != nil {
			return r, p.failure("%v", err)
		}
		if progress && r.startup == 0 {
			r.startup = time.Since(start)
		}
		if done {
			r.wall = time.Since(start)
			break
		}
		if time.Now().After(deadline) {
			return r, p.failure("not done after %s (raise -timeout?)", b.timeout)
		}
	}
	// Read the counters before the process exits: /proc forgets it then.
	pid := p.cmd.Process.Pid
	if r.peakRSS, err = peakRSS(pid); err != nil {
		return r, p.failure("%v", err)
	}
	if r.cpu, err = cpuTime(pid); err != nil {
		return r, p.failure("%v", err)
	}
	r.kafkaCPU, r.clickhouseCPU = b.kafka.cpu()-kafkaCPU, b.clickhouse.cpu()-chCPU
	return r, nil
}
