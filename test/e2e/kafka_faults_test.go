package e2e

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/meshguard/meshguard/test/testenv"
)

// The broker (a private Apache Kafka) stops for 10 s while serve consumes
// and comes back at the same address: serve stays up, resumes by itself,
// and ClickHouse ends with exactly one flow per produced record. The lag
// metrics report the partitions and drain to 0.
func TestIngestSurvivesABrokerRestart(t *testing.T) {
	kafka := testenv.OwnKafka(t)
	brokers := kafka.Brokers()
	topic := testenv.NewTopic(t, brokers, 3)
	dlq := testenv.NewTopic(t, brokers, 1)
	conn, db := testenv.ClickHouse(t)
	addr := freeAddr(t)
	env := append(serveEnv(brokers, topic, fmt.Sprintf("clickhouse://%s/%s", testenv.ClickHouseAddr(t), db)),
		"MESHGUARD_KAFKA_DLQ_TOPIC="+dlq, "MESHGUARD_SERVER_LISTEN="+addr)

	prod := produce(t, brokers, topic, 20, 50*time.Millisecond)
	mg := startMeshguard(t, env, "serve", "--stages", "ingest")
	waitFlows(t, conn, db, 1, 2*time.Minute)
	before := prod.wait(t)
	waitReady(t, addr, mg)

	kafka.Stop(t)
	stoppedAt, _ := flowCounts(conn, db)
	time.Sleep(10 * time.Second) // serve meets the outage: fetches and commits fail, it retries
	if !mg.alive() {
		t.Fatalf("meshguard exited while Kafka was down; it must wait and retry:\n%s", mg.out)
	}
	kafka.Start(t)

	after := produce(t, brokers, topic, 20, 20*time.Millisecond).wait(t)
	records := before + after
	waitFlows(t, conn, db, uint64(records), 3*time.Minute)
	waitReady(t, addr, mg)
	waitCond(t, "the lag of the 3 partitions drained to 0", 2*time.Minute, func() bool {
		_, body := httpGet(addr, "/metrics")
		for p := range 3 {
			if metricValue(body, fmt.Sprintf(`meshguard_ingest_lag\{partition="%d",topic="%s"\}`, p, topic)) != "0" {
				return false
			}
		}
		return true
	})
	_, body := httpGet(addr, "/metrics")
	if n, _ := strconv.Atoi(metricValue(body, "meshguard_ingest_batch_latency_seconds_count")); n == 0 {
		t.Fatalf("no batch latency observed:\n%s", body)
	}
	if v := metricValue(body, "meshguard_ingest_last_commit_timestamp_seconds"); v == "" || v == "0" {
		t.Fatalf("meshguard_ingest_last_commit_timestamp_seconds = %q after commits", v)
	}
	mg.terminate(t, 30*time.Second)

	rows, distinct := flowCounts(conn, db)
	t.Logf("%d records produced (%d before the stop); %d distinct stored when it stopped; finally %d rows, %d distinct flow ids",
		records, before, stoppedAt, rows, distinct)
	if distinct != uint64(records) {
		t.Fatalf("distinct flow ids %d, records produced %d", distinct, records)
	}
}

// A second replica joins the group under load and then leaves (SIGTERM):
// two rebalances while records stream in. Between them the replicas store
// every record exactly once by flow id, duplicates of the handovers
// absorbed.
func TestIngestSurvivesAReplicaJoiningAndLeaving(t *testing.T) {
	brokers := testenv.Kafka(t)
	topic := testenv.NewTopic(t, brokers, 4)
	conn, db := testenv.ClickHouse(t)
	dsn := fmt.Sprintf("clickhouse://%s/%s", testenv.ClickHouseAddr(t), db)
	addrA, addrB := freeAddr(t), freeAddr(t)
	envA := append(serveEnv(brokers, topic, dsn), "MESHGUARD_SERVER_LISTEN="+addrA)
	envB := append(serveEnv(brokers, topic, dsn), "MESHGUARD_SERVER_LISTEN="+addrB)
	assigned := func(addr string) string {
		_, body := httpGet(addr, "/metrics")
		return metricValue(body, "meshguard_ingest_assigned_partitions")
	}

	prod := produce(t, brokers, topic, 120, 100*time.Millisecond)
	a := startMeshguard(t, envA, "serve", "--stages", "ingest")
	waitFlows(t, conn, db, 1, 2*time.Minute)
	waitUntil(t, "replica A holding all 4 partitions", a, func() bool { return assigned(addrA) == "4" })

	b := startMeshguard(t, envB, "serve", "--stages", "ingest")
	waitUntil(t, "the group split between A and B", b, func() bool {
		return assigned(addrA) == "2" && assigned(addrB) == "2"
	})
	joinedAt, _ := flowCounts(conn, db)
	time.Sleep(3 * time.Second) // both replicas ingest under load
	b.terminate(t, 30*time.Second)
	leftAt, _ := flowCounts(conn, db)
	waitUntil(t, "A holding all 4 partitions again", a, func() bool { return assigned(addrA) == "4" })

	records := prod.wait(t)
	waitFlows(t, conn, db, uint64(records), 3*time.Minute)
	code, body := httpGet(addrA, "/readyz")
	if code != http.StatusOK {
		t.Fatalf("/readyz of the remaining replica = %d %s", code, body)
	}
	a.terminate(t, 30*time.Second)
	rows, distinct := flowCounts(conn, db)
	t.Logf("%d records produced; %d stored when B joined, %d when it left; finally %d rows, %d distinct flow ids",
		records, joinedAt, leftAt, rows, distinct)
	if distinct != uint64(records) {
		t.Fatalf("distinct flow ids %d, records produced %d", distinct, records)
	}
	if leftAt >= uint64(records) {
		t.Fatalf("B left after everything was stored (%d of %d): the rebalances were not under load", leftAt, records)
	}
}

// ClickHouse (a private one) stops while a second replica joins the group
// under load and comes back: the rebalance completes with the store down,
// neither replica exits, and the stored flows end equal to the records.
func TestIngestSurvivesAClickHouseRestartDuringARebalance(t *testing.T) {
	brokers := testenv.Kafka(t)
	topic := testenv.NewTopic(t, brokers, 4)
	ch, chAddr, conn := ownClickHouse(t)
	dsn := "clickhouse://" + chAddr + "/meshguard"
	addrA, addrB := freeAddr(t), freeAddr(t)
	envA := append(serveEnv(brokers, topic, dsn), "MESHGUARD_SERVER_LISTEN="+addrA)
	envB := append(serveEnv(brokers, topic, dsn), "MESHGUARD_SERVER_LISTEN="+addrB)
	assigned := func(addr string) string {
		_, body := httpGet(addr, "/metrics")
		return metricValue(body, "meshguard_ingest_assigned_partitions")
	}

	prod := produce(t, brokers, topic, 80, 100*time.Millisecond)
	a := startMeshguard(t, envA, "serve", "--stages", "ingest")
	waitFlows(t, conn, "meshguard", 1, 2*time.Minute)
	waitUntil(t, "replica A holding all 4 partitions", a, func() bool { return assigned(addrA) == "4" })

	// The store goes down as B's consumer starts to join (its pipeline
	// built: the schema is there already), so the rebalance runs with it
	// down.
	b := startMeshguard(t, envB, "serve", "--stages", "ingest")
	waitUntil(t, "B's consumer started", b, func() bool { return assigned(addrB) != "" })
	ch.Stop(t)
	waitUntil(t, "the group split between A and B with ClickHouse down", b, func() bool {
		return assigned(addrA) == "2" && assigned(addrB) == "2"
	})
	time.Sleep(3 * time.Second) // both replicas hold batches they cannot store
	if !a.alive() || !b.alive() {
		t.Fatal("a replica exited while ClickHouse was down; it must wait and retry")
	}
	ch.Start(t)

	records := prod.wait(t)
	waitFlows(t, conn, "meshguard", uint64(records), 3*time.Minute)
	b.terminate(t, 30*time.Second)
	a.terminate(t, 30*time.Second)
	rows, distinct := flowCounts(conn, "meshguard")
	t.Logf("%d records produced; finally %d rows, %d distinct flow ids", records, rows, distinct)
	if distinct != uint64(records) {
		t.Fatalf("distinct flow ids %d, records produced %d", distinct, records)
	}
}
