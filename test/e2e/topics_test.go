package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/meshguard/meshguard/test/testenv"
)

// httpGet returns the status and body of http://addr/path, 0 while the
// server does not answer.
func httpGet(addr, path string) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metricValue returns the value of the series matching pattern in a
// /metrics body ("" when absent).
func metricValue(body, pattern string) string {
	m := regexp.MustCompile(`(?m)^` + pattern + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

func waitCond(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// The case through `meshguard serve` on Apache Kafka with topic
// auto-creation off: the metrics topic is configured but does not exist.
// Every record of the logs topic is stored, /readyz is ready, the
// missing topic is named in one error and in a metric, and creating it
// makes serve subscribe to it without a restart.
func TestServeIngestsWhileAConfiguredTopicIsMissing(t *testing.T) {
	brokers := testenv.Kafka(t)
	topic := testenv.NewTopic(t, brokers, 2)
	dlq := testenv.NewTopic(t, brokers, 1)
	metrics := topic + "-metrics-later"
	conn, db := testenv.ClickHouse(t)
	addr := freeAddr(t)
	env := append(serveEnv(brokers, topic, fmt.Sprintf("clickhouse://%s/%s", testenv.ClickHouseAddr(t), db)),
		"MESHGUARD_KAFKA_TOPICS_METRICS="+metrics,
		"MESHGUARD_KAFKA_DLQ_TOPIC="+dlq,
		"MESHGUARD_SERVER_LISTEN="+addr)

	records := produce(t, brokers, topic, 10, 0).wait(t)
	mg := startMeshguard(t, env, "serve", "--stages", "ingest")
	waitFlows(t, conn, db, uint64(records), 2*time.Minute)
	waitCond(t, "/readyz 200", time.Minute, func() bool { code, _ := httpGet(addr, "/readyz"); return code == http.StatusOK })

	_, body := httpGet(addr, "/metrics")
	missing := fmt.Sprintf(`meshguard_ingest_topic_missing\{key="kafka.topics.metrics",topic="%s"\}`, metrics)
	if v := metricValue(body, missing); v != "1" {
		t.Fatalf("%s = %q, want 1:\n%s", missing, v, body)
	}
	if v := metricValue(body, "meshguard_ingest_missing_topics"); v != "1" {
		t.Fatalf("meshguard_ingest_missing_topics = %q, want 1", v)
	}
	if v := metricValue(body, "meshguard_ingest_assigned_partitions"); v != "2" {
		t.Fatalf("meshguard_ingest_assigned_partitions = %q, want 2 (the logs topic's)", v)
	}
	out := mg.out.String()
	if n := strings.Count(out, "kafka topics unusable"); n != 1 ||
		!strings.Contains(out, `kafka.topics.metrics \"`+metrics+`\": does not exist; create it, or remove it from kafka.topics`) {
		t.Fatalf("want one error naming %s with the fix; output:\n%s", metrics, out)
	}

	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 30 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: metrics, NumPartitions: 3, ReplicationFactor: 1}}})
	if err == nil {
		err = resp.Errors[metrics]
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = client.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: []string{metrics}})
	})

	waitCond(t, "the created topic's partitions assigned", 2*time.Minute, func() bool {
		_, body := httpGet(addr, "/metrics")
		return metricValue(body, "meshguard_ingest_assigned_partitions") == "5" && metricValue(body, missing) == "0"
	})
	more := produce(t, brokers, topic, 3, 0).wait(t)
	waitFlows(t, conn, db, uint64(records+more), 2*time.Minute)
	waitCond(t, "/readyz 200 after the rejoin", time.Minute, func() bool { code, _ := httpGet(addr, "/readyz"); return code == http.StatusOK })
	mg.terminate(t, 30*time.Second)
	if _, distinct := flowCounts(conn, db); distinct != uint64(records+more) {
		t.Fatalf("distinct flow ids %d, records produced %d", distinct, records+more)
	}
}
