package main

import (
	"strings"
	"testing"
	"time"
)

func TestLoadGoodConfigWithEnvOverrides(t *testing.T) {
	cfg, err := LoadConfig("testdata/good.yml", []string{
		"MESHGUARD_KAFKA_BROKERS=b1:9092, b2:9092",
		"MESHGUARD_INGEST_BATCH_TIMEOUT=250ms",
		"MESHGUARD_TEST_CLICKHOUSE_ADDR=ignored:1", // harness variables are not config
		"PATH=/usr/bin",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Kafka.Brokers, ","); got != "b1:9092,b2:9092" {
		t.Errorf("brokers = %s, want the environment's", got)
	}
	if cfg.Ingest.BatchTimeout != 250*time.Millisecond || cfg.Ingest.BatchSize != 50000 {
		t.Errorf("ingest = %+v", cfg.Ingest)
	}
	if cfg.Kafka.Topics.Logs != "istio_access_logs" || cfg.Kafka.Topics.Spans != "" || cfg.Kafka.GroupID != "meshguard-prod" {
		t.Errorf("kafka = %+v", cfg.Kafka)
	}
	if cfg.Kafka.DLQTopic != "meshguard.dlq" {
		t.Errorf("unset keys keep their defaults; dlq_topic = %q", cfg.Kafka.DLQTopic)
	}
	if cfg.Log.Format != "json" {
		t.Errorf("log = %+v", cfg.Log)
	}
}

func TestEmptyConfigIsTheDefaults(t *testing.T) {
	// serve's API requires a tokens file by default: an empty config says
	// so to serve, and to nothing else.
	if _, err := LoadServeConfig("", nil); err == nil || !strings.Contains(err.Error(), "server.auth.tokens_file") {
		t.Fatalf("serve with an empty config, no API tokens: %v", err)
	}
	cfg, err := LoadConfig("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Kafka.GroupID != "meshguard" || cfg.Kafka.Topics.Logs != "otlp_logs" || cfg.Kafka.Topics.Metrics != "otlp_metrics" {
		t.Errorf("defaults = %+v", cfg.Kafka)
	}
}

func TestBadConfigsNameTheKeyAndTheFix(t *testing.T) {
	tests := []struct {
		file string
		env  []string
		want []string // every fragment must appear in the error
	}{
		{"testdata/unknown_key.bad.yml", nil, []string{"group_idd", "not found"}},
		{"testdata/empty_kafka.bad.yml", nil, []string{"kafka.brokers: empty", "MESHGUARD_KAFKA_BROKERS", "kafka.group_id"}},
		{"testdata/topic_clash.bad.yml", nil, []string{"kafka.topics.spans", "kafka.dlq_topic"}},
		{"testdata/batch.bad.yml", nil, []string{"ingest.batch_size: 0", "ingest.batch_timeout"}},
		{"testdata/duration.bad.yml", nil, []string{"soon"}},
		{"testdata/int_duration.bad.yml", nil, []string{"line 2", "time.Duration"}},
		{"testdata/log.bad.yml", nil, []string{"log.level", "loud"}},
		{"", []string{"MESHGUARD_KAFKA_BROKRS=x:1"}, []string{"MESHGUARD_KAFKA_BROKRS", "no such config key"}},
		{"", []string{"MESHGUARD_INGEST_BATCH_SIZE=lots"}, []string{"MESHGUARD_INGEST_BATCH_SIZE", "ingest.batch_size", "lots"}},
		{"", []string{"MESHGUARD_KAFKA_SESSION_TIMEOUT=1s"}, []string{"kafka.session_timeout"}},
		{"testdata/missing.yml", nil, []string{"missing.yml", "no such file"}},
	}
	for _, tt := range tests {
		_, err := LoadConfig(tt.file, tt.env)
		if err == nil {
			t.Errorf("%s %v: no error", tt.file, tt.env)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s %v: error %q does not mention %q", tt.file, tt.env, err, w)
			}
		}
	}
}

func TestConfigKeysListsEveryKey(t *testing.T) {
	keys := strings.Join(configKeys(), "\n")
	for _, k := range []string{"kafka.brokers", "MESHGUARD_KAFKA_BROKERS", "kafka.topics.logs", "kafka.dlq_topic", "clickhouse.dsn", "MESHGUARD_CLICKHOUSE_DSN", "clickhouse.retention_days", "ingest.batch_size"} {
		if !strings.Contains(keys, k) {
			t.Errorf("config keys lack %s", k)
		}
	}
}

// Kubernetes' service-link variables for a Service named meshguard are not
// config keys, and must not stop a pod.
func TestServiceLinkVariablesIgnored(t *testing.T) {
	_, err := LoadConfig("", []string{"MESHGUARD_SERVICE_HOST=10.0.0.1", "MESHGUARD_SERVICE_PORT=8080",
		"MESHGUARD_PORT=tcp://10.0.0.1:8080", "MESHGUARD_PORT_8080_TCP_ADDR=10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig("", []string{"MESHGUARD_DETECT_WINDOWW=1s"}); err == nil {
		t.Fatal("a misspelt key passed")
	}
}
