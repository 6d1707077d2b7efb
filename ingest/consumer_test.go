package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/ingest"
	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/scenario"
	"github.com/meshguard/meshguard/test/testenv"
)

// brokerKinds runs a consumer test against the in-process kfake broker
// and against the real Apache Kafka from test/infra.
func brokerKinds(t *testing.T, run func(t *testing.T, brokers []string)) {
	t.Run("kfake", func(t *testing.T) { run(t, testenv.Kfake(t)) })
	t.Run("kafka", func(t *testing.T) {
		if testing.Short() {
			t.Skip("-short: real Kafka not used")
		}
		run(t, testenv.Kafka(t))
	})
}

// sink records what the consumer stored: how often each flow id arrived.
type sink struct {
	mu       sync.Mutex
	seen     map[models.FlowID]int
	calls    int
	failures int // fail this many calls first
	failWith error
}

func newSink() *sink { return &sink{seen: map[models.FlowID]int{}} }

func (s *sink) ConsumeFlows(_ context.Context, flows []models.Flow) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.failures != 0 {
		if s.failures > 0 {
			s.failures--
		}
		return s.failWith
	}
	for i := range flows {
		s.seen[flows[i].ID]++
	}
	return nil
}

func (s *sink) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

// produceScenario writes n messages of generated access logs to topic,
// alternating otlp_proto and otlp_json and every compression codec, and
// returns how many log records they hold.
func produceScenario(t *testing.T, brokers []string, topic string, n int, seed uint64) int {
	t.Helper()
	gen := scenario.New(scenario.DefaultMesh(), time.Date(2026, 11, 18, 3, 0, 0, 0, time.UTC), seed)
	codecs := []compress.Compression{0, compress.Gzip, compress.Snappy, compress.Lz4, compress.Zstd}
	records := 0
	for i := 0; i < n; i++ {
		ld := gen.Next(time.Second)
		records += ld.LogRecordCount()
		var value []byte
		var err error
		if i%2 == 0 {
			value, err = (&plog.ProtoMarshaler{}).MarshalLogs(ld)
		} else {
			value, err = (&plog.JSONMarshaler{}).MarshalLogs(ld)
		}
		if err != nil {
			t.Fatal(err)
		}
		write(t, brokers, topic, codecs[i%len(codecs)], kafka.Message{Value: value})
	}
	return records
}

func write(t *testing.T, brokers []string, topic string, codec compress.Compression, msgs ...kafka.Message) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.RoundRobin{},
		RequiredAcks: kafka.RequireAll, Compression: codec, BatchTimeout: time.Millisecond}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

func config(brokers []string, topic, group string) (ingest.KafkaConfig, ingest.IngestConfig) {
	k := ingest.DefaultKafkaConfig()
	k.Brokers = brokers
	k.GroupID = group
	k.Topics = ingest.Topics{Logs: topic}
	k.DLQTopic = topic + "-dlq"
	k.SessionTimeout = 6 * time.Second
	i := ingest.DefaultIngestConfig()
	i.BatchSize = 5000
	i.BatchTimeout = 200 * time.Millisecond
	i.RetryMax = 200 * time.Millisecond
	i.ShutdownTimeout = 2 * time.Second
	return k, i
}

// running is a consumer started in the background.
type running struct {
	c      *ingest.Consumer
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, k ingest.KafkaConfig, i ingest.IngestConfig, next consumer.Flows, opts ...ingest.Option) *running {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	}
	c, err := ingest.NewConsumer(k, i, next, log, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{c: c, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the consumer and waits for its orderly shutdown.
func (r *running) stop(t *testing.T) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("consumer returned %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("consumer did not shut down within 60s")
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func TestConsumerStoresEveryRecordAndCommits(t *testing.T) {
	brokerKinds(t, func(t *testing.T, brokers []string) {
		topic := testenv.NewTopic(t, brokers, 3)
		records := produceScenario(t, brokers, topic, 12, 1)
		k, i := config(brokers, topic, topic+"-g")
		s := newSink()
		r := start(t, k, i, s)
		waitFor(t, fmt.Sprintf("%d flows", records), time.Minute, func() bool { return s.distinct() >= records })
		r.stop(t)
		if got := s.distinct(); got != records {
			t.Fatalf("stored %d distinct flows, produced %d records", got, records)
		}
		st := r.c.Stats()
		if st.Messages != 12 || st.DeadLettered != 0 || st.Batches == 0 {
			t.Fatalf("stats %+v: want 12 messages, none dead-lettered, some batches", st)
		}

		// Everything was committed: a new member of the group gets only
		// what is produced now.
		more := produceScenario(t, brokers, topic, 2, 2)
		s2 := newSink()
		r2 := start(t, k, i, s2)
		waitFor(t, "the new records", time.Minute, func() bool { return s2.distinct() >= more })
		time.Sleep(time.Second)
		r2.stop(t)
		if got := s2.distinct(); got != more {
			t.Fatalf("after restart the group re-read %d flows; only the %d new ones were uncommitted", got, more)
		}
	})
}

func TestConsumerWaitsOutAStoreOutage(t *testing.T) {
	brokerKinds(t, func(t *testing.T, brokers []string) {
		topic := testenv.NewTopic(t, brokers, 2)
		records := produceScenario(t, brokers, topic, 6, 3)
		k, i := config(brokers, topic, topic+"-g")
		s := newSink()
		s.failures, s.failWith = 8, errors.New("dial tcp 127.0.0.1:9000: connection refused")
		r := start(t, k, i, s)
		waitFor(t, "all flows after the outage", time.Minute, func() bool { return s.distinct() >= records })
		r.stop(t)
		if got := r.c.Stats().StoreFailures; got < 8 {
			t.Fatalf("StoreFailures = %d, want the 8 failed attempts counted", got)
		}
		if got := s.distinct(); got != records {
			t.Fatalf("stored %d distinct flows, produced %d", got, records)
		}
	})
}

func TestConsumerCommitsNothingItCouldNotStore(t *testing.T) {
	brokerKinds(t, func(t *testing.T, brokers []string) {
		topic := testenv.NewTopic(t, brokers, 2)
		records := produceScenario(t, brokers, topic, 4, 4)
		k, i := config(brokers, topic, topic+"-g")

		down := newSink()
		down.failures, down.failWith = -1, errors.New("clickhouse: connection reset")
		r := start(t, k, i, down)
		waitFor(t, "failed store attempts", time.Minute, func() bool { return r.c.Stats().StoreFailures >= 3 })
		began := time.Now()
		r.stop(t)
		if took := time.Since(began); took > 30*time.Second {
			t.Fatalf("shutdown with the store down took %s; ShutdownTimeout bounds it", took)
		}

		up := newSink()
		r2 := start(t, k, i, up)
		waitFor(t, "every record after restart", time.Minute, func() bool { return up.distinct() >= records })
		r2.stop(t)
		if got := up.distinct(); got != records {
			t.Fatalf("after restart %d distinct flows, produced %d", got, records)
		}
	})
}

func TestConsumerDeadLettersUndecodableMessages(t *testing.T) {
	brokerKinds(t, func(t *testing.T, brokers []string) {
		topic := testenv.NewTopic(t, brokers, 1)
		dlq := testenv.NewTopic(t, brokers, 1)
		good := produceScenario(t, brokers, topic, 1, 5)
		write(t, brokers, topic, 0,
			kafka.Message{Key: []byte("k1"), Value: []byte("\x0a\xff\xff\xff\xff\x0f garbage")},
			kafka.Message{Key: []byte("k2"), Value: []byte(`{"resourceLogs": [`)})
		good += produceScenario(t, brokers, topic, 1, 6)

		k, i := config(brokers, topic, topic+"-g")
		k.DLQTopic = dlq
		s := newSink()
		r := start(t, k, i, s)
		waitFor(t, "good flows and two dead letters", time.Minute, func() bool {
			return s.distinct() >= good && r.c.Stats().DeadLettered >= 2
		})
		r.stop(t)
		if got := s.distinct(); got != good {
			t.Fatalf("stored %d flows, want the %d of the good messages", got, good)
		}

		rd := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: dlq, Partition: 0, MaxWait: 500 * time.Millisecond})
		defer rd.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for n, want := range []struct{ key, reason string }{{"k1", "unmarshal_proto"}, {"k2", "unmarshal_json"}} {
			m, err := rd.ReadMessage(ctx)
			if err != nil {
				t.Fatalf("dead letter %d: %v", n, err)
			}
			h := map[string]string{}
			for _, x := range m.Headers {
				h[x.Key] = string(x.Value)
			}
			if string(m.Key) != want.key || h[ingest.HeaderReason] != want.reason || h[ingest.HeaderTopic] != topic ||
				h[ingest.HeaderPartition] != "0" || h[ingest.HeaderOffset] != strconv.Itoa(n+1) || h[ingest.HeaderDetail] == "" {
				t.Fatalf("dead letter %d: key %q headers %v; want key %s, reason %s, origin %s/0/%d", n, m.Key, h, want.key, want.reason, topic, n+1)
			}
		}
	})
}
