package ingest

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// KafkaConfig is the `kafka:` section of meshguard's config.
type KafkaConfig struct {
	// Brokers are the bootstrap brokers, host:port.
	Brokers []string `yaml:"brokers"`
	// GroupID is the consumer group; replicas with the same id split the
	// partitions between them.
	GroupID string `yaml:"group_id"`
	Topics  Topics `yaml:"topics"`
	// DLQTopic receives messages that cannot be decoded, with the reason.
	DLQTopic string `yaml:"dlq_topic"`
	// DLQRequired: when the DLQ refuses a message for good (topic
	// missing, write denied), true (the default) holds its partition until
	// that is fixed, losing nothing; false commits the message without a
	// copy, logged with its coordinates, and ingest goes on.
	DLQRequired bool `yaml:"dlq_required"`
	// Encoding of the telemetry: auto (per message), otlp_proto, otlp_json.
	Encoding string `yaml:"encoding"`
	// SessionTimeout is how long the group waits for a silent member
	// before handing its partitions to another: the recovery time after a
	// crash.
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// TLS and SASL to the brokers, for the consumer, the dead-letter
	// producer and `meshguard simulate` alike (see auth.go).
	TLS  KafkaTLS  `yaml:"tls"`
	SASL KafkaSASL `yaml:"sasl"`
}

// Topics names the topic of each OTLP signal; an empty name disables it.
type Topics struct {
	Logs    string `yaml:"logs"`
	Spans   string `yaml:"spans"`
	Metrics string `yaml:"metrics"`
}

// IngestConfig is the `ingest:` section: how flows are batched.
type IngestConfig struct {
	// BatchSize closes a batch at this many flows.
	BatchSize int `yaml:"batch_size"`
	// BatchTimeout closes a batch this long after its first message, so a
	// quiet mesh is still stored (and committed) promptly.
	BatchTimeout time.Duration `yaml:"batch_timeout"`
	// RetryMax caps the backoff between attempts to store a batch while
	// the store is down.
	RetryMax time.Duration `yaml:"retry_max"`
	// ShutdownTimeout bounds the final flush on shutdown; what is not
	// stored by then is not committed and is read again after restart.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// MaxFuture is detect.max_future, not a key of its own: records dated
	// further ahead of the wall clock are dead-lettered with the reason
	// (the rest of their message is stored), so they never reach a
	// store or a watermark. 0 turns the check off.
	MaxFuture time.Duration `yaml:"-"`

	// MemoryLimitMiB is serve's soft memory limit (the Go runtime's
	// GOMEMLIMIT): the heap is collected harder as it nears it, instead
	// of growing to twice what is live. 0: 90% of the container's memory
	// limit (the cgroup's), none outside a container. A GOMEMLIMIT in the
	// environment wins.
	MemoryLimitMiB int `yaml:"memory_limit_mib"`
}

// DefaultKafkaConfig returns the defaults: the collector's kafkaexporter
// topic names, group "meshguard".
func DefaultKafkaConfig() KafkaConfig {
	return KafkaConfig{
		Brokers:        []string{"127.0.0.1:9092"},
		GroupID:        "meshguard",
		Topics:         Topics{Logs: "otlp_logs", Spans: "otlp_spans", Metrics: "otlp_metrics"},
		DLQTopic:       "meshguard.dlq",
		DLQRequired:    true,
		Encoding:       "auto",
		SessionTimeout: 30 * time.Second,
	}
}

// DefaultIngestConfig returns batching defaults sized for ClickHouse: big
// batches (it prefers few large inserts) closed at least once a second.
func DefaultIngestConfig() IngestConfig {
	return IngestConfig{
		BatchSize:       100_000,
		BatchTimeout:    time.Second,
		RetryMax:        10 * time.Second,
		ShutdownTimeout: 20 * time.Second,
		MaxFuture:       2 * time.Minute,
	}
}

// Validate reports every problem at once, each with its key and the fix.
func (c *KafkaConfig) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("kafka.brokers: empty; set at least one host:port (env MESHGUARD_KAFKA_BROKERS, comma-separated)"))
	}
	for _, b := range c.Brokers {
		if i := strings.LastIndexByte(b, ':'); i <= 0 || i == len(b)-1 {
			errs = append(errs, fmt.Errorf("kafka.brokers: %q is not host:port", b))
		}
	}
	if c.GroupID == "" {
		errs = append(errs, errors.New("kafka.group_id: empty; set a consumer group id, e.g. meshguard"))
	}
	if c.Topics.Logs == "" && c.Topics.Spans == "" && c.Topics.Metrics == "" {
		errs = append(errs, errors.New("kafka.topics: no topic to read; set at least one of logs, spans, metrics"))
	}
	seen := map[string]string{}
	for _, t := range []struct{ key, name string }{{"logs", c.Topics.Logs}, {"spans", c.Topics.Spans}, {"metrics", c.Topics.Metrics}} {
		if t.name == "" {
			continue
		}
		if prev, dup := seen[t.name]; dup {
			errs = append(errs, fmt.Errorf("kafka.topics.%s: %q is also kafka.topics.%s; each signal needs its own topic", t.key, t.name, prev))
		}
		seen[t.name] = t.key
	}
	if c.DLQTopic == "" {
		errs = append(errs, errors.New("kafka.dlq_topic: empty; undecodable messages need a dead-letter topic, e.g. meshguard.dlq"))
	} else if _, clash := seen[c.DLQTopic]; clash {
		errs = append(errs, fmt.Errorf("kafka.dlq_topic: %q is also a telemetry topic; use a topic of its own", c.DLQTopic))
	}
	if _, err := ParseEncoding(c.Encoding); err != nil {
		errs = append(errs, fmt.Errorf("kafka.encoding: %w", err))
	}
	if c.SessionTimeout < 6*time.Second || c.SessionTimeout > 5*time.Minute {
		errs = append(errs, fmt.Errorf("kafka.session_timeout: %s is outside what brokers accept by default; use 6s to 5m", c.SessionTimeout))
	}
	errs = append(errs, c.validateSecurity()...)
	return errors.Join(errs...)
}

// Validate reports every problem at once, each with its key and the fix.
func (c *IngestConfig) Validate() error {
	var errs []error
	if c.BatchSize < 1 || c.BatchSize > 10_000_000 {
		errs = append(errs, fmt.Errorf("ingest.batch_size: %d; use 1 to 10000000 (default 100000)", c.BatchSize))
	}
	if c.BatchTimeout < time.Millisecond {
		errs = append(errs, fmt.Errorf("ingest.batch_timeout: %s; use at least 1ms (default 1s)", c.BatchTimeout))
	}
	if c.RetryMax < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("ingest.retry_max: %s; use at least 10ms (default 10s)", c.RetryMax))
	}
	if c.MemoryLimitMiB < 0 || (c.MemoryLimitMiB > 0 && c.MemoryLimitMiB < 64) {
		errs = append(errs, fmt.Errorf("ingest.memory_limit_mib: %d; use 0 (from the container's limit) or at least 64", c.MemoryLimitMiB))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("ingest.shutdown_timeout: %s; use a positive duration (default 20s)", c.ShutdownTimeout))
	}
	return errors.Join(errs...)
}

// signals maps each configured topic to its signal.
func (c *KafkaConfig) signals() map[string]Signal {
	m := map[string]Signal{}
	if c.Topics.Logs != "" {
		m[c.Topics.Logs] = SignalLogs
	}
	if c.Topics.Spans != "" {
		m[c.Topics.Spans] = SignalSpans
	}
	if c.Topics.Metrics != "" {
		m[c.Topics.Metrics] = SignalMetrics
	}
	return m
}
