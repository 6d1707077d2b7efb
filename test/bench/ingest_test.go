package bench_test

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"

	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/ingest"
	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/storage"
	"github.com/meshguard/meshguard/test/bench"
	"github.com/meshguard/meshguard/test/testenv"
)

// benchMessages is the topic each BenchmarkIngest op consumes whole:
// about 200k records, enough for steady state, small enough for `make
// bench` to produce it every time; zstd as deploy/collector writes it.
var benchMessages = bench.Messages{Count: 400, PerMessage: 500, Body: true, Compression: compress.Zstd}

// BenchmarkIngest runs meshguard's ingest pipeline in this process, as
// `meshguard serve` wires it (ingest.Consumer with the default config),
// over a topic of 4 partitions on the real Kafka, so that it can be
// profiled (-cpuprofile) where the serve subprocess cannot. One op is a
// fresh consumer group reading the whole topic, timed from NewConsumer
// until the last flow was acknowledged:
//
//   - clickhouse: into storage.ClickHouse on a fresh, migrated database
//     (migration not timed), as serve does;
//   - discard: into a store that drops every batch, the ceiling that
//     fetching and decoding alone allow.
func BenchmarkIngest(b *testing.B) {
	brokers := testenv.Kafka(b)
	admin, _ := testenv.ClickHouse(b)
	addr := testenv.ClickHouseAddr(b)
	topic := testenv.NewTopic(b, brokers, 4)
	ctx := context.Background()
	records, _, err := bench.Produce(ctx, brokers, topic, benchMessages)
	if err != nil {
		b.Fatal(err)
	}

	b.Run("clickhouse", func(b *testing.B) {
		benchIngest(b, brokers, topic, records, func(b *testing.B, op int) consumer.Flows {
			return migratedStore(b, admin, addr, fmt.Sprintf("%s_%d", sanitize(topic), op))
		})
	})
	b.Run("discard", func(b *testing.B) {
		benchIngest(b, brokers, topic, records, func(*testing.B, int) consumer.Flows {
			return consumer.FlowsFunc(func(context.Context, []models.Flow) error { return nil })
		})
	})
}

// ops counts groups across the sub-benchmarks' repeated calls: each op
// needs a group (and database) nobody used.
var ops atomic.Int64

func benchIngest(b *testing.B, brokers []string, topic string, records int, newStore func(*testing.B, int) consumer.Flows) {
	var flows, busy, cpu, firsts float64
	for b.Loop() {
		b.StopTimer()
		op := int(ops.Add(1))
		store := newStore(b, op)
		var stored atomic.Int64
		all := make(chan struct{})
		var allOnce sync.Once
		counting := consumer.FlowsFunc(func(ctx context.Context, fs []models.Flow) error {
			err := store.ConsumeFlows(ctx, fs)
			if err == nil && stored.Add(int64(len(fs))) >= int64(records) {
				allOnce.Do(func() { close(all) })
			}
			return err
		})
		kcfg := ingest.DefaultKafkaConfig()
		kcfg.Brokers = brokers
		kcfg.GroupID = fmt.Sprintf("%s-g%d", topic, op)
		kcfg.Topics = ingest.Topics{Logs: topic}
		kcfg.DLQTopic = topic + "-dlq"
		ctx, cancel := context.WithCancel(context.Background())
		b.StartTimer()

		start, cpu0 := time.Now(), cpuTime(b)
		// The label marks every goroutine the consumer starts (kafka-go's
		// included), so that a profile can tell its samples from the
		// producer's: go tool pprof -tagfocus op=ingest.
		var c *ingest.Consumer
		done := make(chan error, 1)
		pprof.Do(ctx, pprof.Labels("op", "ingest"), func(ctx context.Context) {
			var err error
			c, err = ingest.NewConsumer(kcfg, ingest.DefaultIngestConfig(), counting, slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			go func() { done <- c.Run(ctx) }()
		})
		// Poll for the first message only: a ticker for the whole op would
		// wake the machine a thousand times a second.
		var first time.Duration
		poll := time.NewTicker(time.Millisecond)
		for waiting := true; waiting; {
			select {
			case <-all:
				waiting = false
			case err := <-done:
				b.Fatalf("consumer stopped after %d of %d flows: %v", stored.Load(), records, err)
			case <-poll.C:
				if c.Stats().Messages > 0 {
					first = time.Since(start)
					poll.Stop()
				}
			}
		}
		busy += time.Since(start).Seconds()
		cpu += (cpuTime(b) - cpu0).Seconds()
		firsts += first.Seconds()
		flows += float64(records)

		b.StopTimer()
		cancel() // leaving the group is not part of the op
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		deleteGroup(b, brokers, kcfg.GroupID)
		b.StartTimer()
	}
	b.ReportMetric(flows/busy, "flows/s")
	b.ReportMetric(flows/cpu, "flows/cpu-s")
	b.ReportMetric(firsts/float64(b.N)*1e3, "first-msg-ms")
}

func migratedStore(b *testing.B, admin driver.Conn, addr, db string) *storage.ClickHouse {
	ctx := context.Background()
	if err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) })
	cfg := storage.DefaultClickHouseConfig()
	cfg.DSN = "clickhouse://" + addr + "/" + db
	store, err := storage.NewClickHouse(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	if err := store.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	return store
}

func deleteGroup(b *testing.B, brokers []string, group string) {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = client.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: []string{group}})
}

// cpuTime is the CPU time (user and system) this process used so far: on
// a shared machine, what an op costs says more than how long it took.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sanitize turns a topic name into a database name.
func sanitize(topic string) string {
	out := []byte(topic)
	for i, c := range out {
		if c == '-' {
			out[i] = '_'
		}
	}
	return string(out)
}
