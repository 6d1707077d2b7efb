package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/meshguard/meshguard/ingest"
	"github.com/meshguard/meshguard/scenario"
	"github.com/meshguard/meshguard/test/testenv"
)

// Through serve with its documented config (issue 13 item 1): a record
// dated 2098 is dead-lettered with the reason naming detect.max_future and
// never stored; the other records of its message are, and the metric
// counts it.
func TestServeDeadLettersAFutureRecord(t *testing.T) {
	brokers := testenv.Kafka(t)
	topic := testenv.NewTopic(t, brokers, 1)
	dlq := testenv.NewTopic(t, brokers, 1)
	conn, db := testenv.ClickHouse(t)
	addr := freeAddr(t)
	env := append(serveEnv(brokers, topic, fmt.Sprintf("clickhouse://%s/%s", testenv.ClickHouseAddr(t), db)),
		"MESHGUARD_KAFKA_DLQ_TOPIC="+dlq, "MESHGUARD_SERVER_LISTEN="+addr)

	ld := scenario.New(scenario.DefaultMesh(), testenv.Recent(), 43).Next(time.Second)
	// One second at the mesh's busiest hour is more than Kafka's 1 MB a
	// message: keep the first 100 records, whatever the hour.
	ld = scenario.Split(ld, 100)[0]
	n := ld.LogRecordCount()
	ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().PutStr("start_time", "2098-06-01T12:00:00.000Z")
	value, err := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	if err != nil {
		t.Fatal(err)
	}
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	if err := w.WriteMessages(context.Background(), kafka.Message{Key: []byte("future"), Value: value}); err != nil {
		t.Fatal(err)
	}
	w.Close()

	mg := startMeshguard(t, env, "serve", "--stages", "ingest")
	waitFlows(t, conn, db, uint64(n-1), 2*time.Minute)
	waitUntil(t, "the future record counted", mg, func() bool {
		_, body := httpGet(addr, "/metrics")
		return metricValue(body, "meshguard_ingest_future_records_total") == "1"
	})
	mg.terminate(t, 30*time.Second)

	var stored, future uint64
	if err := conn.QueryRow(context.Background(), "SELECT uniqExact(flow_id), countIf(ts >= toDateTime('2098-01-01 00:00:00')) FROM "+db+".flows").Scan(&stored, &future); err != nil {
		t.Fatal(err)
	}
	if stored != uint64(n-1) || future != 0 {
		t.Fatalf("stored %d flows, %d of them dated 2098; want the %d others only", stored, future, n-1)
	}
	rd := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: dlq, Partition: 0, MaxWait: 500 * time.Millisecond})
	defer rd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := rd.ReadMessage(ctx)
	if err != nil {
		t.Fatalf("reading the DLQ: %v", err)
	}
	h := map[string]string{}
	for _, x := range m.Headers {
		h[x.Key] = string(x.Value)
	}
	if string(m.Key) != "future" || h[ingest.HeaderReason] != "bad_record" || !strings.Contains(h[ingest.HeaderDetail], "detect.max_future") ||
		h[ingest.HeaderRejected] != fmt.Sprintf("1/%d", n) {
		t.Fatalf("dead letter key %q headers %v; want the message, reason bad_record naming detect.max_future, 1/%d rejected", m.Key, h, n)
	}
}
