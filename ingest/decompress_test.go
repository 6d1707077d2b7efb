package ingest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/meshguard/meshguard/ingest"
	"github.com/meshguard/meshguard/scenario"
	"github.com/meshguard/meshguard/test/testenv"
)

// writeTo produces msgs to one partition of topic.
func writeTo(t *testing.T, brokers []string, topic string, partition int, codec compress.Compression, batchBytes int64, msgs ...kafka.Message) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll, Compression: codec,
		BatchBytes: batchBytes, BatchTimeout: time.Millisecond,
		Balancer: kafka.BalancerFunc(func(kafka.Message, ...int) int { return partition })}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce to %s/%d: %v", topic, partition, err)
	}
}

// A zstd bomb (a few KiB expanding to 96 MiB, past the 64 MiB cap) is
// refused instead of filling memory: it is counted, set aside in the DLQ
// with its coordinates and the reason, and every other record, on its
// partition too, is ingested.
func TestConsumerRefusesACompressionBomb(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: real Kafka not used")
	}
	brokers := testenv.Kafka(t)
	topic := testenv.NewTopic(t, brokers, 2)
	writeTo(t, brokers, topic, 0, compress.Zstd, 128<<20, kafka.Message{Key: []byte("bomb"), Value: make([]byte, 96<<20)})

	gen := scenario.New(scenario.DefaultMesh(), testenv.Recent(), 41)
	records := 0
	var msgs []kafka.Message
	for range 4 {
		ld := gen.Next(time.Second)
		records += ld.LogRecordCount()
		v, err := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, kafka.Message{Value: v})
	}
	writeTo(t, brokers, topic, 1, compress.Zstd, 16<<20, msgs[:2]...)
	writeTo(t, brokers, topic, 0, compress.Zstd, 16<<20, msgs[2:]...) // after the bomb

	k, i := config(brokers, topic, topic+"-g")
	dlq := testenv.NewTopic(t, brokers, 1)
	k.DLQTopic = dlq
	s := newSink()
	r, log := startLogged(t, k, i, s)
	waitFor(t, "the other partition's records and the bomb refused", 2*time.Minute, func() bool {
		return s.distinct() >= records && r.c.Stats().OversizeBatches > 0
	})
	r.stop(t)
	if got := s.distinct(); got != records {
		t.Fatalf("stored %d flows, want the %d of the other messages", got, records)
	}
	if st := r.c.Stats(); st.Messages != 4 || st.DeadLettered != 1 {
		t.Fatalf("stats %+v: want the 4 other messages fetched (the bomb never decompressed) and one dead letter", st)
	}
	if text := log.String(); !strings.Contains(text, "decompresses past the cap") {
		t.Fatalf("the refusal is not logged:\n%s", text)
	}
	m, h := readDLQ(t, brokers, dlq)
	if h[ingest.HeaderReason] != "decompressed_too_large" || h[ingest.HeaderTopic] != topic || h[ingest.HeaderPartition] != "0" ||
		h[ingest.HeaderOffset] != "0" || len(m.Value) != 0 {
		t.Fatalf("dead letter: %d bytes, headers %v; want the bomb's coordinates %s/0/0 and the reason, no value", len(m.Value), h, topic)
	}
}
