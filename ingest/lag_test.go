package ingest_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshguard/meshguard/ingest"
	"github.com/meshguard/meshguard/test/testenv"
)

func totalLag(lag []ingest.PartitionLag) int64 {
	var n int64
	for _, p := range lag {
		n += p.Lag
	}
	return n
}

// With the store down the consumer fetches what fills its two batches and
// then waits; the lag per partition counts everything uncommitted, and as
// it grows with nothing fetched for several session timeouts /readyz
// reports a stall. Once the store is back the stall ends, the lag drains
// to 0 and the batches' latency and commit time are reported.
func TestConsumerReportsLagAndAStall(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: real Kafka not used")
	}
	brokers := testenv.Kafka(t)
	topic := testenv.NewTopic(t, brokers, 2)
	records := produceScenario(t, brokers, topic, 6, 21)
	k, i := config(brokers, topic, topic+"-g")
	s := newSink()
	s.failures, s.failWith = -1, errors.New("clickhouse: connection refused")
	c, err := ingest.NewConsumer(k, i, s, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var batches atomic.Int64
	c.OnBatch(func(d time.Duration) {
		if d > 0 {
			batches.Add(1)
		}
	})
	r := run(t, c)

	waitFor(t, "the lag of both partitions", time.Minute, func() bool {
		lag := r.c.Lag()
		return len(lag) == 2 && totalLag(lag) == 6
	})
	for n, p := range r.c.Lag() {
		if p.Topic != topic || p.Partition != n {
			t.Fatalf("lag %+v: want %s partitions 0 and 1", r.c.Lag(), topic)
		}
	}
	if err := r.c.ReadyError(); err != nil {
		t.Fatalf("not ready before any stall: %v", err)
	}

	// Keep producing while the store is down: the fetch loop waits behind
	// the two busy batches and the lag grows.
	produced, seed, last := records, uint64(100), time.Time{}
	waitFor(t, "a stall", 2*time.Minute, func() bool {
		if time.Since(last) > 500*time.Millisecond {
			produced += produceScenario(t, brokers, topic, 1, seed)
			seed, last = seed+1, time.Now()
		}
		return r.c.Stalled()
	})
	err = r.c.ReadyError()
	if err == nil || !strings.Contains(err.Error(), "ingest stalled") || !strings.Contains(err.Error(), "store_failures") {
		t.Fatalf("ReadyError while stalled = %v; want the stall and where to look", err)
	}
	if !r.c.Stats().LastCommit.IsZero() {
		t.Fatal("a commit reported while the store refused everything")
	}

	s.mu.Lock()
	s.failures = 0
	s.mu.Unlock()
	want := produced
	waitFor(t, "every record stored, the lag drained and the stall over", 2*time.Minute, func() bool {
		return s.distinct() >= want && totalLag(r.c.Lag()) == 0 && r.c.ReadyError() == nil
	})
	r.stop(t)
	if got := s.distinct(); got != want {
		t.Fatalf("stored %d distinct flows, produced %d", got, want)
	}
	st := r.c.Stats()
	if st.LastCommit.IsZero() || st.LastFetch.IsZero() || st.LastCommit.Before(st.LastFetch.Add(-time.Minute)) {
		t.Fatalf("last fetch %v, last commit %v: want both set", st.LastFetch, st.LastCommit)
	}
	if got := batches.Load(); got == 0 || got != st.Batches {
		t.Fatalf("OnBatch saw %d batches, %d committed", got, st.Batches)
	}
}

// run starts c in the background, stopped when the test ends.
func run(t *testing.T, c *ingest.Consumer) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{c: c, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}
