package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/test/scenario"
	"github.com/meshguard/meshguard/test/testenv"
)

// serve with the detect stage fills the detections table from live Kafka
// telemetry, and saves its baselines when it stops.
func TestServeDetectsAttacksFromKafka(t *testing.T) {
	brokers := testenv.Kafka(t)
	topic := testenv.NewTopic(t, brokers, 2)
	conn, db := testenv.ClickHouse(t)
	env := append(serveEnv(brokers, topic, fmt.Sprintf("clickhouse://%s/%s", testenv.ClickHouseAddr(t), db)),
		"MESHGUARD_DETECT_LEARNING_PERIOD=10m", "MESHGUARD_DETECT_HISTORY=0s")

	start := time.Date(2026, 11, 16, 9, 0, 0, 0, time.UTC)
	kinds := []models.DetectionKind{models.LateralMovement, models.CredentialStuffing}
	attacks, err := scenario.Schedule(kinds, start.Add(15*time.Minute), 5*time.Minute, 2*time.Minute, 1)
	if err != nil {
		t.Fatal(err)
	}
	gen, err := scenario.NewWith(scenario.RealisticMesh(), start, 7, scenario.Options{Scale: 0.25, Attacks: attacks})
	if err != nil {
		t.Fatal(err)
	}
	srv := startMeshguard(t, env, "serve", "--stages", "ingest,detect")

	// One message per 10 s of event time: a partition's watermark moves
	// with what it receives, so both partitions get the whole timeline.
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.RoundRobin{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	for gen.Now().Before(start.Add(30 * time.Minute)) {
		values, err := scenario.Marshal(gen.Next(10*time.Second), 500)
		if err != nil {
			t.Fatal(err)
		}
		msgs := make([]kafka.Message, len(values))
		for i, v := range values {
			msgs[i].Value = v
		}
		if err := w.WriteMessages(context.Background(), msgs...); err != nil {
			t.Fatal(err)
		}
	}

	deadline := time.Now().Add(3 * time.Minute)
	found := map[string]uint64{}
	for {
		rows, err := conn.Query(context.Background(), "SELECT kind, count() FROM "+db+".detections FINAL GROUP BY kind")
		if err == nil {
			for rows.Next() {
				var k string
				var n uint64
				if rows.Scan(&k, &n) == nil {
					found[k] = n
				}
			}
			rows.Close()
		}
		if found[string(models.LateralMovement)] > 0 && found[string(models.CredentialStuffing)] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("detections by kind after 3 minutes: %v; want lateral_movement and credential_stuffing\n%s", found, srv.out.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
	srv.terminate(t, 30*time.Second)
	var snaps uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".baselines FINAL").Scan(&snaps); err != nil || snaps == 0 {
		t.Fatalf("no baselines saved at shutdown (%d, %v)", snaps, err)
	}
	t.Logf("detections by kind: %v; %d partition snapshots saved", found, snaps)
}
