package ingest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/meshguard/meshguard/models"
)

var (
	t0       = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	procBoot = t0.Add(-24 * time.Hour)
)

// point is one data point of a cumulative Istio counter.
type point struct {
	metric string
	series string // destination_workload, to tell series apart
	start  time.Time
	ts     time.Time
	value  float64
}

func istioMetrics(points ...point) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "kubernetes-pods")
	rm.Resource().Attributes().PutStr("service.instance.id", "10.44.1.27:15020")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	for _, p := range points {
		m := ms.AppendEmpty()
		m.SetName(p.metric)
		sum := m.SetEmptySum()
		sum.SetIsMonotonic(true)
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dp := sum.DataPoints().AppendEmpty()
		if !p.start.IsZero() {
			dp.SetStartTimestamp(pcommon.NewTimestampFromTime(p.start))
		}
		dp.SetTimestamp(pcommon.NewTimestampFromTime(p.ts))
		if p.value == float64(int64(p.value)) && p.metric != "istio_tcp_sent_bytes_total" {
			dp.SetIntValue(int64(p.value))
		} else {
			dp.SetDoubleValue(p.value)
		}
		a := dp.Attributes()
		a.PutStr("reporter", "destination")
		a.PutStr("source_workload", "sleep")
		a.PutStr("source_workload_namespace", "bar")
		a.PutStr("source_principal", "spiffe://cluster.local/ns/bar/sa/sleep")
		a.PutStr("source_app", "sleep")
		a.PutStr("destination_workload", p.series)
		a.PutStr("destination_workload_namespace", "foo")
		a.PutStr("destination_principal", "unknown")
		a.PutStr("destination_service", "httpbin.foo.svc.cluster.local")
		a.PutStr("destination_service_name", "httpbin")
		a.PutStr("connection_security_policy", "mutual_tls")
		if strings.HasPrefix(p.metric, "istio_requests") {
			a.PutStr("request_protocol", "http")
			a.PutStr("response_code", "200")
			a.PutStr("response_flags", "-")
			a.PutStr("grpc_response_status", "")
		} else {
			a.PutStr("request_protocol", "tcp")
		}
	}
	return md
}

func metricFlow(id int, ts time.Time, series string) models.Flow {
	return models.Flow{
		ID:          testID.ID(id),
		TimestampMs: ts.UnixMilli(),
		Reporter:    models.ReporterDestination,
		Source:      models.Source{Principal: "cluster.local/ns/bar/sa/sleep", Workload: "sleep", Namespace: "bar"},
		Destination: models.Destination{Workload: series, Namespace: "foo", Service: "httpbin.foo.svc.cluster.local"},
		TLS:         models.TLSMutual,
	}
}

func req(id int, ts time.Time, series string, count uint32) models.Flow {
	f := metricFlow(id, ts, series)
	f.Protocol, f.ResponseCode, f.Count = "HTTP", 200, count
	return f
}

func tcp(id int, ts time.Time, series string, count uint32, sent, received uint64) models.Flow {
	f := metricFlow(id, ts, series)
	f.Protocol, f.Count, f.BytesSent, f.BytesReceived = "TCP", count, sent, received
	return f
}

func TestDecodeMetricsDeltas(t *testing.T) {
	const rq = "istio_requests_total"
	t1, t2, t3, t4, t5 := t0.Add(15*time.Second), t0.Add(30*time.Second), t0.Add(45*time.Second), t0.Add(60*time.Second), t0.Add(75*time.Second)
	steps := []struct {
		name   string
		points []point
		want   []models.Flow
		check  func(t *testing.T, s DecoderStats)
	}{
		{"first points: old counter is a baseline, a counter born in this interval counts whole",
			[]point{
				{rq, "a", procBoot, t0, 100},
				{rq, "b", t0.Add(-10 * time.Second), t0, 7},
				{rq, "c", t0, t0, 5}, // start == timestamp: the receiver's first sighting, no delta
			},
			[]models.Flow{req(1, t0, "b", 7)},
			func(t *testing.T, s DecoderStats) {
				if s.FirstPointsSkipped != 2 || s.SeriesTracked != 3 {
					t.Errorf("stats = %+v", s)
				}
			}},
		{"growth becomes deltas; an unchanged counter makes no flow",
			[]point{{rq, "a", procBoot, t1, 130}, {rq, "b", t0.Add(-10 * time.Second), t1, 7}, {rq, "c", t0, t1, 6}},
			[]models.Flow{req(0, t1, "a", 30), req(2, t1, "c", 1)}, nil},
		{"redelivery of the same points counts nothing",
			[]point{{rq, "a", procBoot, t1, 130}, {rq, "b", t0.Add(-10 * time.Second), t1, 7}, {rq, "c", t0, t1, 6}},
			nil,
			func(t *testing.T, s DecoderStats) {
				if s.StalePoints != 3 {
					t.Errorf("StalePoints = %d", s.StalePoints)
				}
			}},
		{"an older point is skipped too", []point{{rq, "a", procBoot, t0, 100}}, nil, nil},
		{"counter reset: value dropped", []point{{rq, "a", procBoot, t2, 4}}, []models.Flow{req(0, t2, "a", 4)},
			func(t *testing.T, s DecoderStats) {
				if s.CounterResets != 1 {
					t.Errorf("CounterResets = %d", s.CounterResets)
				}
			}},
		{"counter reset: start time changed", []point{{rq, "a", t2.Add(time.Second), t3, 9}}, []models.Flow{req(0, t3, "a", 9)}, nil},
		{"tcp counters: connections count, bytes ride with Count 0",
			[]point{
				{"istio_tcp_connections_opened_total", "db", procBoot, t3, 10},
				{"istio_tcp_sent_bytes_total", "db", procBoot, t3, 1000},
				{"istio_tcp_received_bytes_total", "db", procBoot, t3, 500},
			}, nil, nil},
		{"tcp deltas",
			[]point{
				{"istio_tcp_connections_opened_total", "db", procBoot, t4, 12},
				{"istio_tcp_sent_bytes_total", "db", procBoot, t4, 1500.4},
				{"istio_tcp_received_bytes_total", "db", procBoot, t4, 800},
				{"istio_tcp_connections_closed_total", "db", procBoot, t4, 11}, // skipped: would count twice
				{"istio_request_duration_milliseconds_sum", "db", procBoot, t4, 11},
			},
			[]models.Flow{tcp(0, t4, "db", 2, 0, 0), tcp(1, t4, "db", 0, 500, 0), tcp(2, t4, "db", 0, 0, 300)},
			func(t *testing.T, s DecoderStats) {
				if s.Skipped != 2 {
					t.Errorf("Skipped = %d", s.Skipped)
				}
			}},
		{"the name without _total is a series of its own, born 44s ago: counted whole",
			[]point{{"istio_requests", "a", t2.Add(time.Second), t5, 12}}, []models.Flow{req(0, t5, "a", 12)}, nil},
	}
	for _, e := range encodings {
		t.Run(e.name, func(t *testing.T) {
			d := NewDecoder(DecoderConfig{})
			for _, st := range steps {
				got, err := d.Decode(SignalMetrics, e.met(istioMetrics(st.points...)), testID, nil)
				if err != nil {
					t.Fatalf("%s: %v", st.name, err)
				}
				t.Run(st.name, func(t *testing.T) {
					diffFlows(t, got, st.want)
					if st.check != nil {
						st.check(t, d.Stats())
					}
				})
			}
		})
	}
}

func TestDecodeMetricsBadPoints(t *testing.T) {
	md := istioMetrics(point{"istio_requests_total", "a", t0.Add(-time.Second), t0, 3}, point{"istio_requests_total", "b", t0.Add(-time.Second), t0, 4})
	dps := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	dps.At(0).Sum().DataPoints().At(0).Attributes().PutStr("response_code", "2xx")
	hist := dps.AppendEmpty()
	hist.SetName("istio_request_duration_milliseconds")
	hist.SetEmptyHistogram().DataPoints().AppendEmpty()
	neg := dps.AppendEmpty()
	neg.SetName("istio_requests_total")
	neg.SetEmptySum().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	neg.Sum().DataPoints().AppendEmpty().SetDoubleValue(-1)
	stale := dps.AppendEmpty()
	stale.SetName("istio_requests_total")
	stale.SetEmptySum().DataPoints().AppendEmpty().SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))

	got, err, d := decodeAll(t, SignalMetrics, EncodingProto, encodings[0].met(md))
	de := asDecodeError(t, err)
	if de.Reason != "bad_record" || de.Rejected != 2 || de.Total != 5 || de.Detail != `record 0: response_code "2xx" is not a number in range` {
		t.Errorf("error = %+v", de)
	}
	want := req(1, t0, "b", 4)
	want.ResponseCode = 200
	diffFlows(t, got, []models.Flow{want})
	if s := d.Stats(); s.DataPoints != 5 || s.Skipped != 2 || s.RejectedBadNumber != 2 {
		t.Errorf("stats = %+v", s)
	}
}

func TestDecodeMetricsEviction(t *testing.T) {
	d := NewDecoder(DecoderConfig{MaxSeries: 10})
	var points []point
	for i := 0; i < 25; i++ {
		points = append(points, point{"istio_requests_total", fmt.Sprint("w", i), procBoot, t0, 1})
	}
	if _, err := d.Decode(SignalMetrics, encodings[0].met(istioMetrics(points...)), testID, nil); err != nil {
		t.Fatal(err)
	}
	s := d.Stats()
	if s.SeriesTracked > 10 || s.SeriesEvicted != 15 || s.SeriesTracked+s.SeriesEvicted != 25 {
		t.Errorf("tracked %d evicted %d", s.SeriesTracked, s.SeriesEvicted)
	}
	// The most recent series survive: w24 has a baseline, w0 does not.
	points = []point{{"istio_requests_total", "w24", procBoot, t0.Add(time.Minute), 5}, {"istio_requests_total", "w0", procBoot, t0.Add(time.Minute), 5}}
	got, _ := d.Decode(SignalMetrics, encodings[0].met(istioMetrics(points...)), testID, nil)
	if len(got) != 1 || got[0].Destination.Workload != "w24" || got[0].Count != 4 {
		t.Errorf("after eviction: %+v", got)
	}
}

// Series are told apart by every attribute, resource ones included, and
// not by their order.
func TestDecodeMetricsSeriesKey(t *testing.T) {
	mk := func(order []string, instance string) pmetric.Metrics {
		md := pmetric.NewMetrics()
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.instance.id", instance)
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("istio_requests_total")
		dp := m.SetEmptySum().DataPoints().AppendEmpty()
		dp.SetStartTimestamp(pcommon.NewTimestampFromTime(procBoot))
		dp.SetTimestamp(pcommon.NewTimestampFromTime(t0))
		dp.SetIntValue(10)
		for _, k := range order {
			dp.Attributes().PutStr(k, k+"-v")
		}
		return md
	}
	d := NewDecoder(DecoderConfig{})
	_, _ = d.Decode(SignalMetrics, encodings[0].met(mk([]string{"reporter", "source_workload"}, "a")), testID, nil)
	_, _ = d.Decode(SignalMetrics, encodings[0].met(mk([]string{"source_workload", "reporter"}, "a")), testID, nil)
	_, _ = d.Decode(SignalMetrics, encodings[0].met(mk([]string{"reporter", "source_workload"}, "b")), testID, nil)
	if s := d.Stats(); s.SeriesTracked != 2 || s.StalePoints != 1 {
		t.Errorf("tracked %d stale %d, want 2 series (order ignored, resource counted) and 1 stale", s.SeriesTracked, s.StalePoints)
	}
}

// connection_security_policy is the metrics' only TLS evidence: none is
// plaintext, Istio's "unknown" (or no label) stays unknown.
func TestDecodeMetricsTLSStates(t *testing.T) {
	for _, tt := range []struct {
		policy string
		want   models.TLS
	}{{"mutual_tls", models.TLSMutual}, {"none", models.TLSPlaintext}, {"unknown", models.TLSUnknown}, {"", models.TLSUnknown}} {
		md := istioMetrics(point{"istio_requests_total", "a", t0.Add(-10 * time.Second), t0, 3})
		a := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0).Attributes()
		if tt.policy == "" {
			a.Remove("connection_security_policy")
		} else {
			a.PutStr("connection_security_policy", tt.policy)
		}
		got, err := NewDecoder(DecoderConfig{}).Decode(SignalMetrics, encodings[0].met(md), testID, nil)
		if err != nil || len(got) != 1 {
			t.Fatalf("%q: %d flows, %v", tt.policy, len(got), err)
		}
		if got[0].TLS != tt.want {
			t.Errorf("connection_security_policy %q: TLS %v, want %v", tt.policy, got[0].TLS, tt.want)
		}
	}
}
