package ingest_test

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/meshguard/meshguard/ingest"
	"github.com/meshguard/meshguard/test/testenv"
)

// readDLQ returns the first message of the one-partition topic dlq with
// its headers.
func readDLQ(t *testing.T, brokers []string, dlq string) (kafka.Message, map[string]string) {
	t.Helper()
	rd := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: dlq, Partition: 0, MaxWait: 500 * time.Millisecond, MaxBytes: 4 << 20})
	defer rd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := rd.ReadMessage(ctx)
	if err != nil {
		t.Fatalf("reading %s: %v", dlq, err)
	}
	h := map[string]string{}
	for _, x := range m.Headers {
		h[x.Key] = string(x.Value)
	}
	return m, h
}

// An undecodable message larger than the DLQ accepts (the reader takes
// 16 MiB, the broker's default max.message.bytes is 1 MiB) used to be
// retried forever, stalling its partition. Now a capped copy with the
// original coordinates and size goes to the DLQ, and the partition goes on.
func TestConsumerCapsAMessageTooLargeForTheDLQ(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: real Kafka not used")
	}
	brokers := testenv.Kafka(t)
	topic := testenv.NewTopic(t, brokers, 1) + "-big"
	createTopicWith(t, brokers, topic, 1, "max.message.bytes", strconv.Itoa(8<<20))
	dlq := testenv.NewTopic(t, brokers, 1) // the broker's default limit

	huge := bytes.Repeat([]byte{0xff}, 3<<20)
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll, BatchBytes: 8 << 20, BatchTimeout: time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("big"), Value: huge}); err != nil {
		t.Fatalf("produce the large message: %v", err)
	}
	w.Close()
	good := produceScenario(t, brokers, topic, 2, 21)

	k, i := config(brokers, topic, topic+"-g")
	k.DLQTopic = dlq
	s := newSink()
	r := start(t, k, i, s)
	waitFor(t, "the records after the large message", time.Minute, func() bool { return s.distinct() >= good })
	r.stop(t)
	if st := r.c.Stats(); st.DeadLettered != 1 || st.DLQCapped != 1 || st.DLQFailures != 0 {
		t.Fatalf("stats %+v: want one capped dead letter, no permanent failure", st)
	}
	m, h := readDLQ(t, brokers, dlq)
	if h[ingest.HeaderTruncated] != strconv.Itoa(len(huge)) || h[ingest.HeaderTopic] != topic || h[ingest.HeaderOffset] != "0" ||
		h[ingest.HeaderPartition] != "0" || h[ingest.HeaderReason] == "" || len(m.Value) >= len(huge) || !bytes.HasPrefix(huge, m.Value) {
		t.Fatalf("dead letter: %d bytes, headers %v; want a capped prefix of the %d bytes with the origin %s/0/0 and the reason",
			len(m.Value), h, len(huge), topic)
	}
}

// createTopicWith creates topic with one config entry.
func createTopicWith(t *testing.T, brokers []string, topic string, partitions int, key, value string) {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 30 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: topic,
		NumPartitions: partitions, ReplicationFactor: 1, ConfigEntries: []kafka.ConfigEntry{{ConfigName: key, ConfigValue: value}}}}})
	if err == nil {
		err = resp.Errors[topic]
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	t.Cleanup(func() {
		_, _ = client.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: []string{topic}})
	})
	waitFor(t, "topic "+topic, 30*time.Second, func() bool {
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		return err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil && len(md.Topics[0].Partitions) == partitions &&
			md.Topics[0].Partitions[0].Leader.ID >= 0
	})
}

// With the DLQ topic missing (auto-creation off), an undecodable message
// is reported with the topic and the fix, counted, and holds its
// partition (kafka.dlq_required, the default) until the topic is created;
// then it and everything after it arrive. With dlq_required false it is
// skipped and the rest is stored.
func TestConsumerReportsAMissingDLQ(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: real Kafka not used")
	}
	brokers := testenv.Kafka(t)
	for _, required := range []bool{true, false} {
		t.Run("required="+strconv.FormatBool(required), func(t *testing.T) {
			topic := testenv.NewTopic(t, brokers, 1)
			dlq := topic + "-dlq-missing"
			before := produceScenario(t, brokers, topic, 1, 31)
			write(t, brokers, topic, 0, kafka.Message{Key: []byte("bad"), Value: []byte(`{"resourceLogs": [`)})
			after := produceScenario(t, brokers, topic, 1, 32)

			k, i := config(brokers, topic, topic+"-g")
			k.DLQTopic = dlq
			k.DLQRequired = required
			s := newSink()
			r, log := startLogged(t, k, i, s)
			if !required {
				waitFor(t, "every good record", time.Minute, func() bool { return s.distinct() >= before+after })
				r.stop(t)
				if st := r.c.Stats(); st.DLQSkipped != 1 || st.DLQFailures == 0 || st.DeadLettered != 0 || s.distinct() != before+after {
					t.Fatalf("stats %+v, %d flows: want the bad message skipped and %d flows", st, s.distinct(), before+after)
				}
				if !strings.Contains(log.String(), "kafka.dlq_required is false") {
					t.Fatalf("the skip is not logged:\n%s", log.String())
				}
				return
			}
			waitFor(t, "the DLQ failure reported", time.Minute, func() bool { return r.c.Stats().DLQBlocked == 1 })
			text := log.String()
			if !strings.Contains(text, `kafka.dlq_topic \"`+dlq+`\": the topic does not exist; create it`) {
				t.Fatalf("the failure does not name %s with the fix:\n%s", dlq, text)
			}
			if got := s.distinct(); got > before {
				t.Fatalf("%d flows stored while the DLQ is missing; want at most the %d before the bad message", got, before)
			}
			if err := r.c.ReadyError(); err == nil || !strings.Contains(err.Error(), dlq) {
				t.Fatalf("ReadyError while the DLQ blocks = %v; want it named", err)
			}
			createTopic(t, brokers, dlq, 1)
			waitFor(t, "the records after the bad message", 2*time.Minute, func() bool { return s.distinct() >= before+after })
			r.stop(t)
			if st := r.c.Stats(); st.DeadLettered != 1 || st.DLQFailures == 0 || st.DLQBlocked != 0 || st.DLQSkipped != 0 {
				t.Fatalf("stats %+v: want the bad message dead-lettered after the failures, none skipped", st)
			}
			if _, h := readDLQ(t, brokers, dlq); h[ingest.HeaderOffset] != "1" {
				t.Fatalf("dead letter headers %v, want the bad message (offset 1)", h)
			}
		})
	}
}
