package alert

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	queueLen     prometheus.GaugeFunc
	queueCap     prometheus.Gauge
	sent         *prometheus.CounterVec
	dropped      prometheus.Counter
	errors       *prometheus.CounterVec
	rateLimited  prometheus.Counter
	invalid      prometheus.Counter
	interactions *prometheus.CounterVec
}

func newMetrics(queueLen func() float64, capacity int) *metrics {
	m := &metrics{
		queueLen: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "meshguard_alert_queue_length", Help: "Alert events waiting to be sent to Slack.",
		}, queueLen),
		queueCap: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "meshguard_alert_queue_capacity", Help: "Capacity of the Slack alert queue (alert.slack.queue_size).",
		}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshguard_alert_sent_total", Help: "Slack calls that succeeded, by kind (post, reply, update, respond).",
		}, []string{"op"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshguard_alert_dropped_total", Help: "Alert events dropped because the Slack queue was full (oldest first).",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshguard_alert_errors_total", Help: "Failed Slack calls (each attempt), by kind; drain counts messages left unsent at shutdown.",
		}, []string{"op"}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshguard_alert_rate_limited_total", Help: "Slack answers 429 Too Many Requests (each was waited out and retried).",
		}),
		invalid: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshguard_alert_invalid_total", Help: "Detections or actions refused for lack of an ID.",
		}),
		interactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshguard_alert_interactions_total", Help: "Slack interactivity requests by result (done, refused, failed, forged, stale, replayed, bad_request, ignored).",
		}, []string{"result"}),
	}
	m.queueCap.Set(float64(capacity))
	for _, op := range []string{"post", "reply", "update", "respond"} {
		m.sent.WithLabelValues(op)
		m.errors.WithLabelValues(op)
	}
	return m
}

func (m *metrics) register(r prometheus.Registerer) error {
	var errs []error
	for _, c := range []prometheus.Collector{m.queueLen, m.queueCap, m.sent, m.dropped, m.errors, m.rateLimited, m.invalid, m.interactions} {
		errs = append(errs, r.Register(c))
	}
	return errors.Join(errs...)
}
