package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/meshguard/meshguard/scenario"
	"github.com/meshguard/meshguard/test/testenv"
)

// Early firing through serve (issue 20): telemetry whose event time is
// the wall clock, as a live mesh sends it, a second at a time. A lateral
// movement is raised from its still-open window (the detector's early
// counter, and a detected_at before the window's end), handed straight to
// the responder, and blocked; the close then confirms it
// (meshguard_detect_early_unconfirmed_total stays 0) and nothing is lost
// on the way (meshguard_respond_handoff_dropped_total 0).
//
// Wall clock on purpose (test/README.md): early firing only acts on live
// windows, those whose end is within detect.window + allowed_lateness of
// now; history is closed as a replay.
func TestServeRaisesALiveAttackFromItsOpenWindow(t *testing.T) {
	brokers := testenv.Kafka(t)
	topic := testenv.NewTopic(t, brokers, 1)
	conn, db := testenv.ClickHouse(t)
	kube := testenv.KubeConfig(t)
	instance := "e2e-live-" + strings.ReplaceAll(db, "_", "-")
	prepareCluster(t, kube, instance, map[string]string{"billing": "payments-v1"})
	prepareSources(t, kube, "shop", map[string]string{"recommendations": "recommendations-v1"})
	addr := freeAddr(t)
	env := append(append(serveEnv(brokers, topic, fmt.Sprintf("clickhouse://%s/%s", testenv.ClickHouseAddr(t), db)), enforceEnv(t, instance)...),
		"MESHGUARD_DETECT_LEARNING_PERIOD=3m", "MESHGUARD_DETECT_HISTORY=0s",
		"MESHGUARD_RESPOND_BUDGET_PER_HOUR=20", "MESHGUARD_SERVER_LISTEN="+addr)
	srv := startMeshguard(t, env, "serve", "--stages", "ingest,detect,respond")
	waitReady(t, addr, srv)

	// Five minutes of the mesh before now, as fast as the broker takes
	// them (learning), then a second at a time once each is over, with
	// the lateral movement from a second into a window 20-30 s after the
	// replay, so that its first window holds 9 s of it. The test makes
	// the attack's calls itself, one a second and all answered: the
	// scenario's lateral movement draws a 403 for a fifth of its calls,
	// and a first-seen edge whose first calls failed is left to the close
	// (it may be a path scan starting), so whether its first window
	// could fire early would be up to the draw.
	now := time.Now().UTC().Truncate(time.Second)
	attackAt := now.Add(20 * time.Second).Truncate(10 * time.Second).Add(time.Second)
	attackEnd := attackAt.Add(30 * time.Second)
	gen, err := scenario.NewWith(scenario.RealisticMesh(), now.Add(-5*time.Minute), 11, scenario.Options{Scale: 0.25})
	if err != nil {
		t.Fatal(err)
	}
	from, okFrom := gen.Workload("shop/recommendations-v1")
	to, okTo := gen.Workload("billing/payments-v1")
	if !okFrom || !okTo {
		t.Fatal("the realistic mesh lacks shop/recommendations-v1 or billing/payments-v1")
	}
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	for gen.Now().Before(attackEnd) {
		if d := time.Until(gen.Now().Add(time.Second)); d > 0 {
			time.Sleep(d)
		}
		second := gen.Now()
		ld := gen.Next(time.Second)
		if !second.Before(attackAt) {
			gen.Emit(ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords(), scenario.Request{
				From: &from, To: &to, SrcIP: gen.IP(from.Name), DstIP: gen.IP(to.Name), At: second.Add(300 * time.Millisecond),
				Method: "GET", Path: "/v1/payments", Code: 200, Flags: "-", BytesSent: 512, DurationMs: 4, UserAgent: "Go-http-client/1.1",
			})
		}
		msgs, err := logMessages(ld)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteMessages(context.Background(), msgs...); err != nil {
			t.Fatal(err)
		}
		if !srv.alive() {
			t.Fatalf("meshguard exited while the mesh played:\n%s", srv.out)
		}
	}

	// The detection, as the closes left it: detected_at is kept from the
	// early raise, window_start is its first window's. The close of that
	// window comes at the earliest min_lateness (2 s) after its end; a
	// detected_at before then was raised from the open window.
	var detectedAt, windowStart time.Time
	var id string
	waitUntil(t, "the lateral movement stored", srv, func() bool {
		err := conn.QueryRow(context.Background(), "SELECT detection_id, detected_at, window_start FROM "+db+
			".detections FINAL WHERE kind = 'lateral_movement' AND source_workload = 'recommendations-v1' ORDER BY window_start LIMIT 1").
			Scan(&id, &detectedAt, &windowStart)
		return err == nil
	})
	if closeAt := windowStart.Add(12 * time.Second); !detectedAt.Before(closeAt) {
		t.Errorf("detection %s detected at %s, its first window starts %s: want it raised before that window's close (%s at the earliest)",
			id, detectedAt.Format(time.TimeOnly), windowStart.Format(time.TimeOnly), closeAt.Format(time.TimeOnly))
	}
	pol := waitPolicy(t, kube, "billing", instance, time.Minute)
	if got := pol.GetAnnotations()["meshguard.io/detection-id"]; got != id {
		t.Errorf("policy %s is for detection %q, want %s", pol.GetName(), got, id)
	}
	// The close confirms the early raise: wait until the last window's
	// close has had its turn: idle_after (5 s) of silence, then its end
	// plus allowed_lateness (20 s) by the wall clock, and a tick.
	time.Sleep(time.Until(attackEnd.Add(10*time.Second + 5*time.Second + 20*time.Second + 2*time.Second)))
	_, body := httpGet(addr, "/metrics")
	metric := func(name string) float64 {
		v, err := strconv.ParseFloat(metricValue(body, name), 64)
		if err != nil {
			t.Fatalf("%s not in /metrics (%v)", name, err)
		}
		return v
	}
	if n := metric("meshguard_detect_early_total"); n < 1 {
		t.Errorf("meshguard_detect_early_total %v: nothing was raised from an open window", n)
	}
	if n := metric("meshguard_detect_early_unconfirmed_total"); n != 0 {
		t.Errorf("meshguard_detect_early_unconfirmed_total %v: a close did not confirm an early raise", n)
	}
	if n := metric("meshguard_respond_handoff_dropped_total"); n != 0 {
		t.Errorf("meshguard_respond_handoff_dropped_total %v: detections dropped on their way to respond", n)
	}
	srv.terminate(t, 30*time.Second)
	t.Logf("attack from %s; detection %s raised at %s, first window from %s; policy %s/%s", attackAt.Format(time.TimeOnly), id,
		detectedAt.Format(time.TimeOnly), windowStart.Format(time.TimeOnly), pol.GetNamespace(), pol.GetName())
}
