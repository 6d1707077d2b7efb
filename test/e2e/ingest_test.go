package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"github.com/meshguard/meshguard/scenario"
	"github.com/meshguard/meshguard/test/testenv"
)

// producer writes generated access logs to a topic, paced so that the
// consumer is mid-stream when the test disrupts it.
type producer struct {
	records chan int // total once done
}

func produce(t *testing.T, brokers []string, topic string, messages int, pace time.Duration) *producer {
	t.Helper()
	p := &producer{records: make(chan int, 1)}
	gen := scenario.New(scenario.DefaultMesh(), testenv.Last(time.Wednesday, 14), 42)
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.RoundRobin{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	go func() {
		defer w.Close()
		total := 0
		for i := 0; i < messages; i++ {
			ld := gen.Next(time.Second)
			msgs, err := logMessages(ld)
			if err != nil {
				t.Errorf("marshal: %v", err)
				p.records <- -1
				return
			}
			if err := w.WriteMessages(context.Background(), msgs...); err != nil {
				t.Errorf("produce: %v", err)
				p.records <- -1
				return
			}
			total += ld.LogRecordCount()
			time.Sleep(pace)
		}
		p.records <- total
	}()
	return p
}

func (p *producer) wait(t *testing.T) int {
	t.Helper()
	select {
	case n := <-p.records:
		if n < 0 {
			t.FailNow()
		}
		return n
	case <-time.After(5 * time.Minute):
		t.Fatal("producer did not finish")
		return 0
	}
}

// flowCounts returns count() and uniqExact(flow_id) of db.flows; zeros
// while the table does not exist yet.
func flowCounts(conn driver.Conn, db string) (rows, distinct uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = conn.QueryRow(ctx, "SELECT count(), uniqExact(flow_id) FROM "+db+".flows").Scan(&rows, &distinct)
	return rows, distinct
}

// storedFlows returns count() of db.flows once the server answers, for
// a count taken while the server may be restarting.
func storedFlows(t *testing.T, conn driver.Conn, db string) uint64 {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var rows uint64
		err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".flows").Scan(&rows)
		cancel()
		if err == nil {
			return rows
		}
		if time.Now().After(deadline) {
			t.Fatalf("counting %s.flows: %v", db, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func waitFlows(t *testing.T, conn driver.Conn, db string, want uint64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		_, d := flowCounts(conn, db)
		if d >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %d distinct flows stored, want %d", timeout, d, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ownClickHouse starts a ClickHouse for the test alone and returns it
// with its native address and a connection (closed at the end).
func ownClickHouse(t *testing.T) (*testenv.OwnServer, string, driver.Conn) {
	t.Helper()
	ch := testenv.OwnClickHouse(t)
	addr := ch.Get("MESHGUARD_TEST_CLICKHOUSE_ADDR")
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return ch, addr, conn
}

func serveEnv(brokers []string, topic, dsn string) []string {
	return []string{
		"MESHGUARD_KAFKA_BROKERS=" + brokers[0],
		"MESHGUARD_KAFKA_GROUP_ID=" + topic + "-g",
		"MESHGUARD_KAFKA_TOPICS_LOGS=" + topic,
		"MESHGUARD_KAFKA_TOPICS_SPANS=",
		"MESHGUARD_KAFKA_TOPICS_METRICS=",
		"MESHGUARD_KAFKA_DLQ_TOPIC=" + topic + "-dlq",
		"MESHGUARD_KAFKA_SESSION_TIMEOUT=6s",
		"MESHGUARD_INGEST_BATCH_SIZE=5000",
		"MESHGUARD_INGEST_BATCH_TIMEOUT=200ms",
		"MESHGUARD_INGEST_RETRY_MAX=1s",
		"MESHGUARD_CLICKHOUSE_DSN=" + dsn,
		"MESHGUARD_SERVER_LISTEN=127.0.0.1:0",
		"MESHGUARD_SERVER_AUTH_MODE=none",
	}
}

// The kill resets meshguard's ClickHouse connections mid-query, which
// aborts the tests' ClickHouse engine (chDB's LocalServer; chserver.sh
// starts it again within seconds): a server of its own, so the abort
// cannot fail the tests of other packages on the shared one.
func TestIngestSurvivesSIGKILL(t *testing.T) {
	brokers := testenv.Kafka(t)
	topic := testenv.NewTopic(t, brokers, 3)
	_, addr, conn := ownClickHouse(t)
	const db = "meshguard"
	env := serveEnv(brokers, topic, "clickhouse://"+addr+"/"+db)

	prod := produce(t, brokers, topic, 40, 50*time.Millisecond)
	first := startMeshguard(t, env, "serve", "--stages", "ingest")
	waitFlows(t, conn, db, 1, 2*time.Minute)
	first.kill(t)
	killedAt := storedFlows(t, conn, db)

	second := startMeshguard(t, env, "serve", "--stages", "ingest")
	records := prod.wait(t)
	waitFlows(t, conn, db, uint64(records), 3*time.Minute)
	second.terminate(t, 30*time.Second)

	rows, distinct := flowCounts(conn, db)
	t.Logf("%d records produced; %d rows stored when killed; finally %d rows, %d distinct flow ids", records, killedAt, rows, distinct)
	if distinct != uint64(records) {
		t.Fatalf("distinct flow ids %d, records produced %d", distinct, records)
	}
	if killedAt == 0 || killedAt >= uint64(records) {
		t.Fatalf("the kill did not land mid-stream (%d of %d stored); the test proved nothing", killedAt, records)
	}
}

func TestIngestSurvivesClickHouseRestart(t *testing.T) {
	brokers := testenv.Kafka(t)
	topic := testenv.NewTopic(t, brokers, 2)
	ch, addr, conn := ownClickHouse(t)
	env := serveEnv(brokers, topic, "clickhouse://"+addr+"/meshguard")

	prod := produce(t, brokers, topic, 30, 100*time.Millisecond)
	mg := startMeshguard(t, env, "serve", "--stages", "ingest")
	waitFlows(t, conn, "meshguard", 1, 2*time.Minute)

	ch.Stop(t)
	time.Sleep(4 * time.Second) // the consumer meets the outage, backs off, keeps the backlog
	if !mg.alive() {
		t.Fatal("meshguard exited while ClickHouse was down; it must wait and retry")
	}
	ch.Start(t)

	records := prod.wait(t)
	waitFlows(t, conn, "meshguard", uint64(records), 3*time.Minute)
	mg.terminate(t, 30*time.Second)
	_, distinct := flowCounts(conn, "meshguard")
	if distinct != uint64(records) {
		t.Fatalf("distinct flow ids %d, records produced %d", distinct, records)
	}
}
