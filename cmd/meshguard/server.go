package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"k8s.io/client-go/rest"

	"github.com/meshguard/meshguard/alert"
	"github.com/meshguard/meshguard/cmd/meshguard/api"
	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/detect"
	"github.com/meshguard/meshguard/ingest"
	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/report"
	"github.com/meshguard/meshguard/respond"
	"github.com/meshguard/meshguard/storage"
)

// newRegistry is the one registry every component registers its metrics
// in (never the global one), served at /metrics.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// registerConsumer exports the ingest counters; they are read from the
// consumer's Stats at scrape time, so ingest carries no metrics code.
func registerConsumer(reg *prometheus.Registry, c *ingest.Consumer) {
	counter := func(name, help string, f func(ingest.Stats) int64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(f(c.Stats())) }))
	}
	counter("meshguard_ingest_messages_total", "Kafka messages fetched.", func(s ingest.Stats) int64 { return s.Messages })
	counter("meshguard_ingest_flows_total", "Flows decoded and handed on (rate() gives flows/s).", func(s ingest.Stats) int64 { return s.Flows })
	counter("meshguard_ingest_batches_total", "Batches stored and committed.", func(s ingest.Stats) int64 { return s.Batches })
	counter("meshguard_ingest_dead_lettered_total", "Messages sent to the dead-letter topic.", func(s ingest.Stats) int64 { return s.DeadLettered })
	counter("meshguard_ingest_store_failures_total", "Failed attempts to store a batch (each retried).", func(s ingest.Stats) int64 { return s.StoreFailures })
	counter("meshguard_ingest_commit_errors_total", "Failed offset commits.", func(s ingest.Stats) int64 { return s.CommitErrors })
	counter("meshguard_ingest_redelivered_total", "Messages a new consumer-group generation fetched again after they were handed on (kafka-go restarts kept partitions from the committed offset); skipped, so the detector counts each once.", func(s ingest.Stats) int64 { return s.Redelivered })
	counter("meshguard_ingest_reader_failures_total", "Kafka readers that gave up (the group unreachable for a while), each replaced by a new one that rejoins.", func(s ingest.Stats) int64 { return s.ReaderFailures })
	counter("meshguard_ingest_connect_failures_total", "Failed attempts to reach Kafka.", func(s ingest.Stats) int64 { return s.ConnectFailures })
	counter("meshguard_ingest_dlq_failures_total", "Dead-letter writes refused for good (topic missing or denied, message too large even capped).", func(s ingest.Stats) int64 { return s.DLQFailures })
	counter("meshguard_ingest_dlq_skipped_total", "Undecodable messages committed without a DLQ copy (kafka.dlq_required: false).", func(s ingest.Stats) int64 { return s.DLQSkipped })
	counter("meshguard_ingest_dlq_capped_total", "Messages too large for the DLQ, written as a capped copy with their coordinates.", func(s ingest.Stats) int64 { return s.DLQCapped })
	counter("meshguard_ingest_future_records_total", "Records dated more than detect.max_future ahead of the wall clock, dead-lettered with the reason (the rest of their message is stored).",
		func(s ingest.Stats) int64 { return int64(s.Decoder.RejectedFuture) })

	counter("meshguard_ingest_after_store_waits_total", "Batches the store waited to hand to the detector (busy with the one before): detection holding ingest back.", func(s ingest.Stats) int64 { return s.AfterStoreWaits })
	counter("meshguard_ingest_after_store_errors_total", "Batches the detector failed after the store (logged, not retried).", func(s ingest.Stats) int64 { return s.AfterStoreErrors })
	counter("meshguard_ingest_free_batch_waits_total", "Times decoding waited for a free batch (all being stored or detected): backpressure reaching Kafka.", func(s ingest.Stats) int64 { return s.FreeBatchWaits })
	counter("meshguard_ingest_oversize_batches_total", "Reads of a record batch refused for decompressing past the cap (a compression bomb; its partition waits).", func(s ingest.Stats) int64 { return s.OversizeBatches })
	gauge := func(name, help string, f func(ingest.Stats) int64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
			func() float64 { return float64(f(c.Stats())) }))
	}
	gauge("meshguard_ingest_missing_topics", "Configured Kafka topics (DLQ included) that do not exist or are denied; see meshguard_ingest_topic_missing.",
		func(s ingest.Stats) int64 { return s.MissingTopics })
	gauge("meshguard_ingest_assigned_partitions", "Partitions the consumer group assigned this replica.",
		func(s ingest.Stats) int64 { return s.AssignedPartitions })
	gauge("meshguard_ingest_dlq_blocked", "1 while a partition waits on a DLQ that refuses its message for good (kafka.dlq_required: true).",
		func(s ingest.Stats) int64 { return s.DLQBlocked })
	reg.MustRegister(topicCollector{c})

	stamp := func(name, help string, f func(ingest.Stats) time.Time) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			if t := f(c.Stats()); !t.IsZero() {
				return float64(t.UnixNano()) / 1e9
			}
			return 0
		}))
	}
	stamp("meshguard_ingest_last_fetch_timestamp_seconds", "Unix time a message last arrived from Kafka (0 before the first).",
		func(s ingest.Stats) time.Time { return s.LastFetch })
	stamp("meshguard_ingest_last_commit_timestamp_seconds", "Unix time offsets were last committed (0 before the first).",
		func(s ingest.Stats) time.Time { return s.LastCommit })
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "meshguard_ingest_stalled",
		Help: "1 while the lag grows and no message was fetched for several kafka.session_timeout (/readyz says why)."},
		func() float64 {
			if c.Stalled() {
				return 1
			}
			return 0
		}))
	latency := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "meshguard_ingest_batch_latency_seconds",
		Help:    "From a batch's first fetched message to its commit (stored in ClickHouse and committed).",
		Buckets: prometheus.ExponentialBuckets(0.05, 2, 12)})
	reg.MustRegister(latency)
	c.OnBatch(func(d time.Duration) { latency.Observe(d.Seconds()) })
	reg.MustRegister(lagCollector{c})
}

// lagCollector exports the lag of each partition assigned to this replica
// (the group's committed offset behind the partition's end).
type lagCollector struct{ c *ingest.Consumer }

var lagDesc = prometheus.NewDesc("meshguard_ingest_lag",
	"Messages between the group's committed offset and the end of each partition assigned to this replica (sampled every few seconds).",
	[]string{"topic", "partition"}, nil)

func (l lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- lagDesc }

func (l lagCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range l.c.Lag() {
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(p.Lag), p.Topic, strconv.Itoa(p.Partition))
	}
}

// topicCollector exports one series per configured topic: 1 while it is
// missing or denied (ingest reads the others), 0 once usable.
type topicCollector struct{ c *ingest.Consumer }

var topicMissingDesc = prometheus.NewDesc("meshguard_ingest_topic_missing",
	"1 while a configured Kafka topic does not exist or is denied (ingest skips it and starts on it once usable), else 0.",
	[]string{"key", "topic"}, nil)

func (t topicCollector) Describe(ch chan<- *prometheus.Desc) { ch <- topicMissingDesc }

func (t topicCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range t.c.Topics() {
		v := 0.0
		if s.Missing() {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(topicMissingDesc, prometheus.GaugeValue, v, s.Key, s.Topic)
	}
}

func registerDetector(reg *prometheus.Registry, d *detect.Detector) {
	counter := func(name, help string, f func(detect.Stats) int64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(f(d.Stats())) }))
	}
	counter("meshguard_detect_flows_total", "Flows counted into windows.", func(s detect.Stats) int64 { return s.Flows })
	counter("meshguard_detect_late_flows_total", "Flows behind their partition's watermark, not counted.", func(s detect.Stats) int64 { return s.Late })
	counter("meshguard_detect_future_flows_total", "Flows dated more than detect.max_future ahead of the wall clock, not counted and never moving a watermark.", func(s detect.Stats) int64 { return s.Future })
	counter("meshguard_detect_windows_total", "Windows closed, summed over partitions.", func(s detect.Stats) int64 { return s.Windows })
	counter("meshguard_detect_sink_errors_total", "Detections a sink failed to take.", func(s detect.Stats) int64 { return s.SinkErrors })
	counter("meshguard_detect_early_total", "Raises (new or updates) from windows still open; their window's close confirms them without counting them again.", func(s detect.Stats) int64 { return s.Early })
	counter("meshguard_detect_early_unconfirmed_total", "Early raises their window's close did not raise again; they stand as raised early.", func(s detect.Stats) int64 { return s.EarlyUnconfirmed })
	counter("meshguard_detect_handoffs_total", "Partitions assigned on a rebalance that resumed from the state their previous owner released.", func(s detect.Stats) int64 { return s.HandedOver })
	counter("meshguard_detect_handoff_timeouts_total", "Partitions assigned whose previous owner released nothing within kafka.session_timeout: resumed from the newest periodic save, or relearning.", func(s detect.Stats) int64 { return s.HandoffTimeouts })
	counter("meshguard_detect_handoff_errors_total", "Partition states not released or not readable on a rebalance.", func(s detect.Stats) int64 { return s.HandoffErrors })
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "meshguard_detect_handoff_wait_seconds_total",
		Help: "Time assigned partitions waited for their previous owner's release (detection and ingest wait with them)."},
		func() float64 { return d.Stats().HandoffWaited.Seconds() }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "meshguard_detect_edges", Help: "Edges with a baseline."},
		func() float64 { return float64(d.Stats().Edges) }))
}

// countDetections counts new detections by kind and severity.
func countDetections(reg *prometheus.Registry) consumer.Detections {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshguard_detections_total",
		Help: "Detections raised (updates of an ongoing one not counted)."}, []string{"kind", "severity"})
	reg.MustRegister(c)
	return consumer.DetectionsFunc(func(_ context.Context, d models.Detection) error {
		if d.Updates == 1 {
			c.WithLabelValues(string(d.Kind), d.Severity.String()).Inc()
		}
		return nil
	})
}

// countActions counts the responder's decisions by state and action.
func countActions(reg *prometheus.Registry) consumer.Actions {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshguard_actions_total",
		Help: "Responder decisions by state (applied, skipped, promoted, expired, revoked, failed, ...)."}, []string{"state", "action"})
	reg.MustRegister(c)
	return consumer.ActionsFunc(func(_ context.Context, a models.Action, _ models.Detection) error {
		c.WithLabelValues(string(a.State), string(a.Kind)).Inc()
		return nil
	})
}

// readiness is /readyz: ClickHouse answers, the pipeline is built (schema
// migrated, baselines restored) and the consumer ingests (Kafka reached,
// partitions assigned, a fetch succeeded: Consumer.ReadyError).
type readiness struct {
	store    *storage.ClickHouse
	started  atomic.Bool
	consumer atomic.Pointer[ingest.Consumer]
}

func (r *readiness) setStarted()                    { r.started.Store(true) }
func (r *readiness) setConsumer(c *ingest.Consumer) { r.consumer.Store(c) }

func (r *readiness) check() error {
	if !r.started.Load() {
		return errors.New("starting: migrating the schema and loading baselines")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := r.store.Ping(ctx); err != nil {
		return fmt.Errorf("clickhouse: %w", err)
	}
	if c := r.consumer.Load(); c != nil {
		if err := c.ReadyError(); err != nil {
			return fmt.Errorf("kafka: %w", err)
		}
	}
	return nil
}

// serverWiring lets the HTTP server start before the responder and the
// alerter exist: operator endpoints and Slack clicks answer 503 until
// they do (or for good on replicas without those stages).
type serverWiring struct {
	mu      sync.RWMutex
	resp    *respond.Responder
	alerter *alert.Alerter
}

func (w *serverWiring) set(r *respond.Responder, a *alert.Alerter) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.resp, w.alerter = r, a
}

var errNoResponder = errors.New("the respond stage does not run on this replica")

func (w *serverWiring) responder() (*respond.Responder, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.resp == nil {
		return nil, errNoResponder
	}
	return w.resp, nil
}

func (w *serverWiring) Approve(ctx context.Context, id, actor string) (models.Action, error) {
	r, err := w.responder()
	if err != nil {
		return models.Action{}, err
	}
	return r.Approve(ctx, id, actor)
}

func (w *serverWiring) Revoke(ctx context.Context, id, actor string) (models.Action, error) {
	r, err := w.responder()
	if err != nil {
		return models.Action{}, err
	}
	return r.Revoke(ctx, id, actor)
}

func (w *serverWiring) Extend(ctx context.Context, id, actor string, by time.Duration) (models.Action, error) {
	r, err := w.responder()
	if err != nil {
		return models.Action{}, err
	}
	return r.Extend(ctx, id, actor, by)
}

func (w *serverWiring) List(ctx context.Context) ([]models.Action, error) {
	r, err := w.responder()
	if err != nil {
		return nil, err
	}
	return r.List(ctx)
}

func (w *serverWiring) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	w.mu.RLock()
	a := w.alerter
	w.mu.RUnlock()
	if a == nil {
		http.Error(rw, "the alert stage does not run on this replica", http.StatusServiceUnavailable)
		return
	}
	a.InteractionHandler().ServeHTTP(rw, req)
}

// startServer builds the HTTP server and runs it until ctx ends; its
// result goes to done.
func startServer(ctx context.Context, cfg Config, store *storage.ClickHouse, reg *prometheus.Registry, ready *readiness,
	wiring *serverWiring, log *slog.Logger, done chan<- error) error {
	var kube *rest.Config
	if cfg.Server.Auth.Mode == api.AuthKubernetes {
		var err error
		if kube, err = cfg.Kubernetes.RESTConfig(); err != nil {
			return fmt.Errorf("server.auth.mode kubernetes: %w", err)
		}
	}
	pr := servePosture(cfg, store, log)
	srv, err := api.New(cfg.Server, api.Deps{Store: store, Operator: wiring, Ready: ready.check, Registry: reg,
		Slack: wiring, ActionWriter: store, Log: log, Kube: kube, RespondMode: cfg.Respond.Mode,
		Posture: pr, Report: &report.Reader{Store: store, Posture: pr},
		Suggest: suggestFunc(cfg, store)})
	if err != nil {
		return err
	}
	go func() { done <- srv.Run(ctx) }()
	return nil
}
