package ingest_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/meshguard/meshguard/ingest"
	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/scenario"
	"github.com/meshguard/meshguard/test/testenv"
)

// futureMessage returns an access-log message of recent records whose
// first record is dated 2098, and how many records it holds.
func futureMessage(t *testing.T, seed uint64) ([]byte, int) {
	t.Helper()
	ld := scenario.New(scenario.DefaultMesh(), testenv.Recent(), seed).Next(time.Second)
	// One second at the mesh's busiest hour is more than Kafka's 1 MB a
	// message: keep the first 100 records, whatever the hour.
	ld = scenario.Split(ld, 100)[0]
	n := ld.LogRecordCount()
	if n < 2 {
		t.Fatalf("the scenario made %d records in a second; want several", n)
	}
	rec := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	rec.Attributes().PutStr("start_time", "2098-06-01T12:00:00.000Z")
	value, err := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	if err != nil {
		t.Fatal(err)
	}
	return value, n
}

// A record dated 2098 used to pass ingest, be stored, and reach detect,
// which only skipped it. Now ingest dead-letters its message with the
// reason (detect.max_future) and stores the message's other records.
func TestConsumerDeadLettersFutureRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: real Kafka not used")
	}
	brokers := testenv.Kafka(t)
	topic := testenv.NewTopic(t, brokers, 1)
	dlq := testenv.NewTopic(t, brokers, 1)
	value, n := futureMessage(t, 41)
	write(t, brokers, topic, 0, kafka.Message{Key: []byte("future"), Value: value})

	k, i := config(brokers, topic, topic+"-g")
	k.DLQTopic = dlq
	s := newSink()
	r := start(t, k, i, s)
	waitFor(t, "the message's recent records and one dead letter", time.Minute, func() bool {
		return s.distinct() >= n-1 && r.c.Stats().DeadLettered >= 1
	})
	r.stop(t)

	base := models.NewFlowIDBase(topic, 0, 0)
	s.mu.Lock()
	_, stored := s.seen[base.ID(0)]
	got := len(s.seen)
	s.mu.Unlock()
	if stored || got != n-1 {
		t.Fatalf("stored %d flows (the 2098 record among them: %v); want the %d recent ones only", got, stored, n-1)
	}
	if st := r.c.Stats(); st.Decoder.RejectedFuture != 1 || st.DeadLettered != 1 {
		t.Fatalf("stats: %d future records, %d dead letters; want 1 and 1", st.Decoder.RejectedFuture, st.DeadLettered)
	}
	m, h := readDLQ(t, brokers, dlq)
	if string(m.Key) != "future" || h[ingest.HeaderReason] != "bad_record" || h[ingest.HeaderOffset] != "0" ||
		!strings.Contains(h[ingest.HeaderDetail], "2098-06-01T12:00:00Z") || !strings.Contains(h[ingest.HeaderDetail], "detect.max_future") ||
		h[ingest.HeaderRejected] != "1/"+strconv.Itoa(n) {
		t.Fatalf("dead letter key %q headers %v; want the message with the 2098 record named and rejected 1/%d", m.Key, h, n)
	}
}

// The bound is the wall clock plus MaxFuture at decode time: a record a
// minute ahead (a proxy's clock slightly fast) is kept, three minutes
// ahead is rejected; without MaxFuture only the year 2100 bounds it.
func TestDecoderRejectsRecordsBeyondMaxFuture(t *testing.T) {
	ld := scenario.New(scenario.DefaultMesh(), testenv.Recent(), 44).Next(time.Second)
	recs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	if recs.Len() < 3 {
		t.Fatalf("%d records in the first scope; want 3", recs.Len())
	}
	now := time.Now().UTC()
	recs.At(0).Attributes().PutStr("start_time", now.Add(time.Minute).Format("2006-01-02T15:04:05.000Z"))
	recs.At(1).Attributes().PutStr("start_time", now.Add(3*time.Minute).Format("2006-01-02T15:04:05.000Z"))
	value, err := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	if err != nil {
		t.Fatal(err)
	}
	n := ld.LogRecordCount()
	base := models.NewFlowIDBase("t", 0, 0)

	dec := ingest.NewDecoder(ingest.DecoderConfig{MaxFuture: 2 * time.Minute})
	flows, err := dec.Decode(ingest.SignalLogs, value, base, nil)
	var de *ingest.DecodeError
	if !errors.As(err, &de) || de.Rejected != 1 || !strings.Contains(de.Detail, "record 1: ") || !strings.Contains(de.Detail, "detect.max_future") {
		t.Fatalf("err %v; want record 1 rejected for detect.max_future", err)
	}
	if len(flows) != n-1 || flows[0].ID != base.ID(0) || dec.Stats().RejectedFuture != 1 {
		t.Fatalf("%d flows (first %v), %d future; want %d with record 0 kept, 1 future", len(flows), flows[0].ID, dec.Stats().RejectedFuture, n-1)
	}

	unbounded := ingest.NewDecoder(ingest.DecoderConfig{})
	if flows, err := unbounded.Decode(ingest.SignalLogs, value, base, nil); err != nil || len(flows) != n {
		t.Fatalf("without MaxFuture: %d flows, %v; want all %d", len(flows), err, n)
	}
}
