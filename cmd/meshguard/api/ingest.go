package api

import (
	"cmp"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// GET /api/v1/ingest: how far ingest is behind, read from the metrics
// the consumer exports (meshguard_ingest_*, cmd/meshguard's
// registerConsumer) so that the page and Prometheus say the same.

type partitionLagJSON struct {
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
	Lag       int64  `json:"lag"`
}

type ingestJSON struct {
	// Running: this replica runs ingest (its metrics are registered).
	Running            bool               `json:"running"`
	AssignedPartitions int64              `json:"assigned_partitions"`
	Stalled            bool               `json:"stalled"`
	LagTotal           int64              `json:"lag_total"`
	Partitions         []partitionLagJSON `json:"partitions"`
	LastFetch          *time.Time         `json:"last_fetch,omitempty"`
	LastCommit         *time.Time         `json:"last_commit,omitempty"`
	// Batches is how many batches were committed; BatchLatencyP99 the
	// upper bound of the histogram bucket holding the 99th percentile
	// (seconds), 0 before any.
	Batches         uint64  `json:"batches"`
	BatchLatencyP99 float64 `json:"batch_latency_p99_seconds"`
	BatchLatencyAvg float64 `json:"batch_latency_mean_seconds"`
}

func (s *Server) ingestLag(w http.ResponseWriter, _ *http.Request) {
	out := ingestJSON{Partitions: []partitionLagJSON{}}
	if s.deps.Registry == nil {
		writeJSON(w, http.StatusOK, out)
		return
	}
	families, err := s.deps.Registry.Gather()
	if err != nil {
		// Gather returns what it could; a failed collector is logged.
		s.log.Warn("api: gathering metrics for the ingest view", "err", err)
	}
	stamp := func(m *dto.Metric) *time.Time {
		v := m.GetGauge().GetValue()
		if v <= 0 {
			return nil
		}
		t := time.Unix(0, int64(v*1e9)).UTC()
		return &t
	}
	for _, f := range families {
		ms := f.GetMetric()
		if len(ms) == 0 {
			continue
		}
		switch f.GetName() {
		case "meshguard_ingest_assigned_partitions":
			out.Running = true
			out.AssignedPartitions = int64(ms[0].GetGauge().GetValue())
		case "meshguard_ingest_stalled":
			out.Stalled = ms[0].GetGauge().GetValue() == 1
		case "meshguard_ingest_last_fetch_timestamp_seconds":
			out.LastFetch = stamp(ms[0])
		case "meshguard_ingest_last_commit_timestamp_seconds":
			out.LastCommit = stamp(ms[0])
		case "meshguard_ingest_lag":
			for _, m := range ms {
				p := partitionLagJSON{Lag: int64(m.GetGauge().GetValue())}
				for _, l := range m.GetLabel() {
					switch l.GetName() {
					case "topic":
						p.Topic = l.GetValue()
					case "partition":
						p.Partition, _ = strconv.Atoi(l.GetValue())
					}
				}
				out.LagTotal += p.Lag
				out.Partitions = append(out.Partitions, p)
			}
		case "meshguard_ingest_batch_latency_seconds":
			h := ms[0].GetHistogram()
			out.Batches = h.GetSampleCount()
			if out.Batches > 0 {
				out.BatchLatencyAvg = h.GetSampleSum() / float64(out.Batches)
				out.BatchLatencyP99 = bucketQuantile(h, 0.99)
			}
		}
	}
	slices.SortFunc(out.Partitions, func(a, b partitionLagJSON) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	writeJSON(w, http.StatusOK, out)
}

// bucketQuantile is the upper bound of the cumulative bucket holding
// quantile q; +Inf comes out as the largest finite bound.
func bucketQuantile(h *dto.Histogram, q float64) float64 {
	want := q * float64(h.GetSampleCount())
	last := 0.0
	for _, b := range h.GetBucket() {
		if !math.IsInf(b.GetUpperBound(), 1) {
			last = b.GetUpperBound()
		}
		if float64(b.GetCumulativeCount()) >= want {
			return last
		}
	}
	return last
}
