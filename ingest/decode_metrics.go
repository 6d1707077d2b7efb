package ingest

import (
	"math"
	"slices"

	"github.com/cespare/xxhash/v2"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/meshguard/meshguard/models"
)

// Istio's counters arrive cumulative (a Prometheus receiver scraping the
// proxies). Each becomes per-interval deltas per series, stored as
// aggregate flows:
//   - istio_requests_total, istio_tcp_connections_opened_total: Count = delta.
//   - istio_tcp_sent_bytes_total: BytesSent = delta; istio_tcp_received_bytes_total:
//     BytesReceived = delta. These flows have Count 0: they add bytes to an
//     edge without adding requests, so sum(Count) still counts requests and
//     connections once.
//
// Other metrics (histograms, istio_tcp_connections_closed_total, which
// would count connections twice) are skipped. A zero delta makes no flow.

type metricKind uint8

const (
	metricOther metricKind = iota
	metricRequests
	metricConnections
	metricSentBytes
	metricReceivedBytes
)

// kindOfMetric accepts the Prometheus names with and without "_total"
// (the collector's name normalisation drops it).
func kindOfMetric(name string) metricKind {
	switch name {
	case "istio_requests_total", "istio_requests":
		return metricRequests
	case "istio_tcp_connections_opened_total", "istio_tcp_connections_opened":
		return metricConnections
	case "istio_tcp_sent_bytes_total", "istio_tcp_sent_bytes":
		return metricSentBytes
	case "istio_tcp_received_bytes_total", "istio_tcp_received_bytes":
		return metricReceivedBytes
	}
	return metricOther
}

// rawLabels gathers an Istio metric's labels (reference section 3).
type rawLabels struct {
	reporter, protocol, code, flags, security           rawValue
	srcWorkload, srcNamespace, srcPrincipal             rawValue
	dstWorkload, dstNamespace, dstPrincipal, dstService rawValue
}

func (r *rawLabels) set(key string, v rawValue) {
	if v.kind == kindStr && v.s == "unknown" { // Istio's word for unset
		v = rawValue{}
	}
	switch key {
	case "reporter":
		r.reporter = v
	case "request_protocol":
		r.protocol = v
	case "response_code":
		r.code = v
	case "response_flags":
		r.flags = v
	case "connection_security_policy":
		r.security = v
	case "source_workload":
		r.srcWorkload = v
	case "source_workload_namespace":
		r.srcNamespace = v
	case "source_principal":
		r.srcPrincipal = v
	case "destination_workload":
		r.dstWorkload = v
	case "destination_workload_namespace":
		r.dstNamespace = v
	case "destination_principal":
		r.dstPrincipal = v
	case "destination_service":
		r.dstService = v
	}
}

type seriesKey uint64

// seriesState is the last point seen of a cumulative series.
type seriesState struct {
	start, ts uint64 // Unix ns
	value     float64
	seq       uint64 // when it was last updated, for eviction
}

func (d *Decoder) decodeMetrics(md pmetric.Metrics, id models.FlowIDBase, dst []models.Flow) ([]models.Flow, error) {
	var b tally
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		resHash := attrsHash(rm.Resource().Attributes())
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				kind := kindOfMetric(m.Name())
				var dps pmetric.NumberDataPointSlice
				cumulative := true
				switch m.Type() {
				case pmetric.MetricTypeSum:
					dps = m.Sum().DataPoints()
					cumulative = m.Sum().AggregationTemporality() != pmetric.AggregationTemporalityDelta
				case pmetric.MetricTypeGauge: // untyped Prometheus metrics
					dps = m.Gauge().DataPoints()
				default:
					kind = metricOther
				}
				if kind == metricOther {
					n := dataPoints(m)
					b.total += n
					d.stats.DataPoints += uint64(n)
					d.stats.Skipped += uint64(n)
					continue
				}
				nameHash := xxhash.Sum64String(m.Name()) ^ mix(resHash+0x9e3779b97f4a7c15)
				for p := 0; p < dps.Len(); p++ {
					idx := b.total
					b.total++
					d.stats.DataPoints++
					dst = d.appendPoint(dst, &b, id, idx, kind, cumulative, nameHash, dps.At(p))
				}
			}
		}
	}
	return dst, b.err()
}

func (d *Decoder) appendPoint(dst []models.Flow, b *tally, id models.FlowIDBase, idx int, kind metricKind, cumulative bool, nameHash uint64, dp pmetric.NumberDataPoint) []models.Flow {
	if dp.Flags().NoRecordedValue() { // a Prometheus staleness marker
		d.stats.Skipped++
		return dst
	}
	var value float64
	switch dp.ValueType() {
	case pmetric.NumberDataPointValueTypeInt:
		value = float64(dp.IntValue())
	case pmetric.NumberDataPointValueTypeDouble:
		value = dp.DoubleValue()
	}
	if !(value >= 0 && value <= math.MaxFloat64) {
		d.stats.RejectedBadNumber++
		b.reject(idx, "counter value is negative or not finite")
		return dst
	}
	var r rawLabels
	dp.Attributes().Range(func(k string, v pcommon.Value) bool {
		r.set(k, pvalue(v))
		return true
	})
	code, ok := number(r.code, math.MaxUint16)
	if !ok {
		b.reject(idx, d.badNumber("response_code", r.code))
		return dst
	}

	if detail := d.checkTime(int64(uint64(dp.Timestamp()) / 1e6)); detail != "" {
		b.reject(idx, detail)
		return dst
	}
	delta, ok := d.delta(seriesKey(mix(nameHash)+mix(attrsHash(dp.Attributes())^0x5851f42d4c957f2d)), cumulative, uint64(dp.StartTimestamp()), uint64(dp.Timestamp()), value)
	delta = math.Round(delta)
	if !ok || delta < 1 {
		return dst
	}

	dst = append(dst, models.Flow{ID: id.ID(idx), TimestampMs: int64(uint64(dp.Timestamp()) / 1e6)})
	f := &dst[len(dst)-1]
	switch kind {
	case metricRequests, metricConnections:
		f.Count = uint32(min(delta, math.MaxUint32))
	case metricSentBytes:
		f.BytesSent = uint64(min(delta, math.MaxUint64))
	case metricReceivedBytes:
		f.BytesReceived = uint64(min(delta, math.MaxUint64))
	}
	f.Reporter = models.ParseReporter(r.reporter.s)
	f.Protocol = d.internStr(protocolName(d.text(r.protocol, d.cfg.MaxFieldBytes)))
	f.ResponseCode = uint16(code)
	f.ResponseFlags = d.internStr(d.text(r.flags, d.cfg.MaxFieldBytes))
	// connection_security_policy: "mutual_tls", "none", or "unknown"
	// (unset, read as absent) when the reporter cannot tell.
	if r.security.kind == kindStr {
		switch r.security.s {
		case "mutual_tls":
			f.TLS = models.TLSMutual
		case "none":
			f.TLS = models.TLSPlaintext
		}
	}
	f.Source.Workload = d.identity(r.srcWorkload, true)
	f.Source.Namespace = d.identity(r.srcNamespace, true)
	f.Source.Principal = d.principal(r.srcPrincipal, true)
	f.Destination.Workload = d.identity(r.dstWorkload, true)
	f.Destination.Namespace = d.identity(r.dstNamespace, true)
	f.Destination.Principal = d.principal(r.dstPrincipal, true)
	f.Destination.Service = d.identity(r.dstService, true)
	return dst
}

// protocolName maps request_protocol ("http", "grpc", "tcp") to the
// spelling flows from logs use.
func protocolName(p string) string {
	switch p {
	case "http":
		return "HTTP"
	case "grpc":
		return "gRPC"
	case "tcp":
		return "TCP"
	}
	return p
}

// delta returns how much a counter grew since the last point of its
// series, and false when the point yields no delta: the first point of a
// series that started before this interval, or a point not newer than the
// last one (a redelivery must not count twice).
func (d *Decoder) delta(key seriesKey, cumulative bool, start, ts uint64, value float64) (float64, bool) {
	if !cumulative {
		return value, true
	}
	d.seriesSq++
	st, seen := d.series[key]
	if !seen {
		d.makeRoom()
		d.series[key] = seriesState{start: start, ts: ts, value: value, seq: d.seriesSq}
		if start != 0 && start < ts && ts-start <= uint64(d.cfg.CounterStartGrace) {
			return value, true // born within the interval: all of it is new
		}
		d.stats.FirstPointsSkipped++
		return 0, false
	}
	if ts <= st.ts {
		d.stats.StalePoints++
		return 0, false
	}
	delta := value - st.value
	if value < st.value || start != st.start {
		d.stats.CounterResets++
		delta = value
	}
	d.series[key] = seriesState{start: start, ts: ts, value: value, seq: d.seriesSq}
	return delta, true
}

// makeRoom evicts the least recently updated tenth of the series when the
// table is full: one sort every MaxSeries/10 new series.
func (d *Decoder) makeRoom() {
	if len(d.series) < d.cfg.MaxSeries {
		return
	}
	d.seqBuf = d.seqBuf[:0]
	for _, st := range d.series {
		d.seqBuf = append(d.seqBuf, st.seq)
	}
	slices.Sort(d.seqBuf)
	cut := d.seqBuf[max(len(d.seqBuf)/10, 1)-1]
	for k, st := range d.series {
		if st.seq <= cut {
			delete(d.series, k)
			d.stats.SeriesEvicted++
		}
	}
}

// attrsHash hashes a set of attributes independently of their order.
func attrsHash(m pcommon.Map) uint64 {
	var h uint64
	var dg xxhash.Digest
	m.Range(func(k string, v pcommon.Value) bool {
		dg.Reset()
		_, _ = dg.WriteString(k)
		_, _ = dg.Write([]byte{0, byte(v.Type())})
		_, _ = dg.WriteString(v.AsString())
		h += mix(dg.Sum64())
		return true
	})
	return h
}

func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func dataPoints(m pmetric.Metric) int {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return m.Gauge().DataPoints().Len()
	case pmetric.MetricTypeSum:
		return m.Sum().DataPoints().Len()
	case pmetric.MetricTypeHistogram:
		return m.Histogram().DataPoints().Len()
	case pmetric.MetricTypeExponentialHistogram:
		return m.ExponentialHistogram().DataPoints().Len()
	case pmetric.MetricTypeSummary:
		return m.Summary().DataPoints().Len()
	}
	return 0
}
