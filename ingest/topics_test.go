package ingest_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/meshguard/meshguard/ingest"
	"github.com/meshguard/meshguard/test/testenv"
)

// startLogged is start with the consumer's log kept for assertions.
func startLogged(t *testing.T, k ingest.KafkaConfig, i ingest.IngestConfig, next *sink) (*running, *testenv.SyncBuffer) {
	t.Helper()
	buf := &testenv.SyncBuffer{}
	var w io.Writer = buf
	if testing.Verbose() {
		w = io.MultiWriter(buf, testWriter{t})
	}
	c, err := ingest.NewConsumer(k, i, next, slog.New(slog.NewTextHandler(w, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{c: c, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r, buf
}

// createTopic creates the named topic (deleted when the test ends) and
// waits until its partitions have leaders.
func createTopic(t *testing.T, brokers []string, topic string, partitions int) {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 30 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}}})
	if err == nil {
		err = resp.Errors[topic]
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}})
	})
	waitFor(t, "leaders of "+topic, 30*time.Second, func() bool {
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err != nil || len(md.Topics) != 1 || md.Topics[0].Error != nil || len(md.Topics[0].Partitions) != partitions {
			return false
		}
		for _, p := range md.Topics[0].Partitions {
			if p.Leader.ID < 0 || p.Error != nil {
				return false
			}
		}
		return true
	})
}

// produceSpans writes n messages of one server-side proxy span each to
// topic and returns how many flows they hold (one per span).
func produceSpans(t *testing.T, brokers []string, topic string, n int) int {
	t.Helper()
	start := testenv.Recent()
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		td := ptrace.NewTraces()
		s := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		s.SetKind(ptrace.SpanKindServer)
		s.SetTraceID(pcommon.TraceID{1, byte(i), byte(i >> 8)})
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(i) * time.Millisecond)))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(i)*time.Millisecond + 42*time.Millisecond)))
		a := s.Attributes()
		for _, kv := range [][2]string{
			{"component", "proxy"}, {"node_id", "sidecar~10.44.1.27~httpbin-5d8f-abcde.foo~foo.svc.cluster.local"},
			{"http.url", "http://httpbin.foo:8000/status/418"}, {"http.method", "GET"}, {"http.protocol", "HTTP/1.1"},
			{"http.status_code", "418"}, {"response_flags", "-"}, {"peer.address", "10.44.1.23"},
			{"istio.mesh_id", "cluster.local"}, {"upstream_cluster", "inbound|8000||"},
			{"istio.canonical_service", "httpbin"}, {"istio.namespace", "foo"},
		} {
			a.PutStr(kv[0], kv[1])
		}
		v, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = kafka.Message{Value: v}
	}
	write(t, brokers, topic, 0, msgs...)
	return n
}

func topicStatus(c *ingest.Consumer, topic string) (ingest.TopicStatus, bool) {
	for _, s := range c.Topics() {
		if s.Topic == topic {
			return s, true
		}
	}
	return ingest.TopicStatus{}, false
}

// A topic named in the config but absent from a broker with auto-creation
// off (the metrics topic) used to stop kafka-go's group leader
// from assigning any partition: nothing was ingested. Now the topics
// that exist are consumed, the missing one is named with the fix, and it
// is consumed as soon as it is created, without a restart.
func TestConsumerReadsExistingTopicsAndLaterCreatedOnes(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: real Kafka not used")
	}
	brokers := testenv.Kafka(t)
	logs := testenv.NewTopic(t, brokers, 2)
	spans := logs + "-spans-created-later"
	records := produceScenario(t, brokers, logs, 8, 11)

	k, i := config(brokers, logs, logs+"-g")
	k.Topics.Spans = spans
	k.DLQTopic = testenv.NewTopic(t, brokers, 1)
	s := newSink()
	r, log := startLogged(t, k, i, s)

	waitFor(t, "every record of the existing topic", time.Minute, func() bool { return s.distinct() >= records })
	st, ok := topicStatus(r.c, spans)
	if !ok || !errors.Is(st.Err, kafka.UnknownTopicOrPartition) || st.Key != "kafka.topics.spans" {
		t.Fatalf("status of the missing topic: %+v (found %v); want kafka.topics.spans unknown", st, ok)
	}
	if got := r.c.Stats().MissingTopics; got != 1 {
		t.Fatalf("MissingTopics = %d, want 1 (the spans topic; the logs and DLQ topics exist)", got)
	}
	if got := r.c.Stats().AssignedPartitions; got != 2 {
		t.Fatalf("AssignedPartitions = %d, want the 2 partitions of the logs topic", got)
	}
	text := log.String()
	if n := strings.Count(text, "kafka topics unusable"); n != 1 {
		t.Fatalf("the missing topic was reported %d times, want once:\n%s", n, text)
	}
	if !strings.Contains(text, spans) || !strings.Contains(text, "create it, or remove it from kafka.topics") {
		t.Fatalf("the error does not name %s with the fix:\n%s", spans, text)
	}

	createTopic(t, brokers, spans, 2)
	flows := produceSpans(t, brokers, spans, 20)
	more := produceScenario(t, brokers, logs, 2, 12)
	want := records + flows + more
	waitFor(t, "the records of the topic created later", 2*time.Minute, func() bool { return s.distinct() >= want })
	r.stop(t)
	if got := s.distinct(); got != want {
		t.Fatalf("stored %d distinct flows, produced %d", got, want)
	}
	if st, _ := topicStatus(r.c, spans); st.Missing() {
		t.Fatalf("the created topic is still reported missing: %+v", st)
	}
	if got := r.c.Stats().MissingTopics; got != 0 {
		t.Fatalf("MissingTopics = %d after the topic was created, want 0", got)
	}
	if !strings.Contains(log.String(), "kafka topic now usable") {
		t.Fatalf("the topic's arrival was not logged:\n%s", log.String())
	}
}

// Readiness follows what the consumer achieved: not ready while no
// configured topic exists (the error names it), ready once the group
// assigned the created topic's partitions and a fetch from them returned,
// though the topic holds no message.
func TestConsumerReadinessFollowsAssignmentAndFetch(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: real Kafka not used")
	}
	brokers := testenv.Kafka(t)
	dlq := testenv.NewTopic(t, brokers, 1)
	logs := dlq + "-logs-created-later"
	k, i := config(brokers, logs, logs+"-g")
	k.DLQTopic = dlq
	c, err := ingest.NewConsumer(k, i, newSink(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if c.ReadyError() == nil {
		t.Fatal("ready before Run")
	}
	r, _ := startLogged(t, k, i, newSink())
	waitFor(t, "the topics listed", time.Minute, func() bool { return r.c.Topics() != nil })
	err = r.c.ReadyError()
	if err == nil || !strings.Contains(err.Error(), "no configured kafka topic is usable") || !strings.Contains(err.Error(), logs) {
		t.Fatalf("ReadyError with the only topic missing = %v; want it named", err)
	}

	createTopic(t, brokers, logs, 3)
	waitFor(t, "ready", 2*time.Minute, func() bool { return r.c.ReadyError() == nil })
	if got := r.c.AssignedPartitions(); got != 3 {
		t.Fatalf("ready with %d partitions assigned, want 3", got)
	}
	if got := r.c.Stats().Messages; got != 0 {
		t.Fatalf("%d messages fetched from an empty topic", got)
	}
}

// Two replicas of one group each rejoin when the missing topic appears;
// between them every record of both topics is stored (duplicates from
// the rebalances absorbed by the flow ids).
func TestConsumerGroupOfTwoPicksUpACreatedTopic(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: real Kafka not used")
	}
	brokers := testenv.Kafka(t)
	logs := testenv.NewTopic(t, brokers, 4)
	spans := logs + "-spans-created-later"
	records := produceScenario(t, brokers, logs, 8, 13)
	k, i := config(brokers, logs, logs+"-g")
	k.Topics.Spans = spans
	k.DLQTopic = testenv.NewTopic(t, brokers, 1)
	s := newSink()
	a, _ := startLogged(t, k, i, s)
	b, _ := startLogged(t, k, i, s)
	waitFor(t, "both replicas assigned", 2*time.Minute, func() bool {
		return a.c.AssignedPartitions()+b.c.AssignedPartitions() == 4 && s.distinct() >= records
	})

	createTopic(t, brokers, spans, 2)
	flows := produceSpans(t, brokers, spans, 30)
	more := produceScenario(t, brokers, logs, 4, 14)
	want := records + flows + more
	waitFor(t, "every record of both topics", 2*time.Minute, func() bool {
		return s.distinct() >= want && a.c.AssignedPartitions()+b.c.AssignedPartitions() == 6
	})
	a.stop(t)
	b.stop(t)
	if got := s.distinct(); got != want {
		t.Fatalf("stored %d distinct flows, produced %d", got, want)
	}
}
