package ingest

import (
	"math"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/meshguard/meshguard/models"
)

// rawSpan gathers the Envoy/Istio tags of one span (reference section 3).
type rawSpan struct {
	url, method, protocol, status, flags rawValue
	cluster, clusterName, peer           rawValue
	userAgent, requestID                 rawValue
	requestSize, responseSize            rawValue
	canonicalService, namespace          rawValue
	proxy                                bool
}

func (r *rawSpan) set(key string, v rawValue) {
	switch key {
	case "component":
		if v.kind == kindStr && v.s == "proxy" {
			r.proxy = true
		}
	case "http.url":
		r.url = v
	case "http.method":
		r.method = v
		r.proxy = true
	case "http.protocol":
		r.protocol = v
	case "http.status_code":
		r.status = v
	case "response_flags":
		r.flags = v
	case "upstream_cluster":
		r.cluster = v
		r.proxy = true
	case "upstream_cluster.name":
		r.clusterName = v
	case "peer.address":
		r.peer = v
	case "user_agent":
		r.userAgent = v
	case "guid:x-request-id":
		r.requestID = v
	case "request_size":
		r.requestSize = v
	case "response_size":
		r.responseSize = v
	case "istio.canonical_service":
		r.canonicalService = v
	case "istio.namespace":
		r.namespace = v
	}
}

// decodeSpans makes one flow per proxy span. Application spans on the same
// topic are skipped, not rejected.
func (d *Decoder) decodeSpans(td ptrace.Traces, id models.FlowIDBase, dst []models.Flow) ([]models.Flow, error) {
	var b tally
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		res := d.resource(rs.Resource().Attributes())
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				span := spans.At(k)
				idx := b.total
				b.total++
				d.stats.Spans++
				var r rawSpan
				span.Attributes().Range(func(k string, v pcommon.Value) bool {
					r.set(k, pvalue(v))
					return true
				})
				if !r.proxy {
					d.stats.Skipped++
					continue
				}
				dst = append(dst, models.Flow{})
				f := &dst[len(dst)-1]
				if detail := d.fillSpan(&r, span, &res, f); detail != "" {
					b.reject(idx, detail)
					dst = dst[:len(dst)-1]
					continue
				}
				f.ID = id.ID(idx)
			}
		}
	}
	return dst, b.err()
}

func (d *Decoder) fillSpan(r *rawSpan, span ptrace.Span, res *resourceInfo, f *models.Flow) string {
	code, ok := number(r.status, math.MaxUint16)
	if !ok {
		return d.badNumber("http.status_code", r.status)
	}
	reqSize, ok := number(r.requestSize, math.MaxUint64)
	if !ok {
		return d.badNumber("request_size", r.requestSize)
	}
	respSize, ok := number(r.responseSize, math.MaxUint64)
	if !ok {
		return d.badNumber("response_size", r.responseSize)
	}
	f.ResponseCode = uint16(code)
	f.BytesReceived = reqSize
	f.BytesSent = respSize

	start, end := uint64(span.StartTimestamp()), uint64(span.EndTimestamp())
	f.TimestampMs = int64(start / 1e6)
	if detail := d.checkTime(f.TimestampMs); detail != "" {
		return detail
	}
	if end > start {
		f.DurationMs = uint32(min((end-start)/1e6, math.MaxUint32))
	}
	f.TraceID = models.TraceID(span.TraceID())

	// http.url is "scheme://authority/path?query"; a bare path is accepted.
	var authority, path string
	if r.url.kind == kindStr {
		u := r.url.s
		if _, after, ok := strings.Cut(u, "://"); ok {
			authority, path = after, ""
			if i := strings.IndexAny(after, "/?#"); i >= 0 {
				authority, path = after[:i], after[i:]
			}
		} else {
			path = u
		}
	}
	d.fillRequest(f, r.method, strValue(path), r.protocol, r.userAgent, r.requestID)
	f.ResponseFlags = d.internStr(d.text(r.flags, d.cfg.MaxFieldBytes))

	cluster := r.cluster
	if cluster.kind != kindStr || cluster.s == "" || cluster.s == "-" {
		cluster = r.clusterName
	}
	crep, cport, chost := clusterParts(cluster.s)
	switch span.Kind() {
	case ptrace.SpanKindClient:
		f.Reporter = models.ReporterSource
	case ptrace.SpanKindServer:
		f.Reporter = models.ReporterDestination
	default:
		f.Reporter = crep
	}
	authority = d.clean(authority, d.cfg.MaxFieldBytes)
	svc, aport := hostPort(authority)
	if crep == models.ReporterSource && chost != "" {
		svc = chost
	}
	f.Destination.Service = d.identityStr(svc, false)
	f.Destination.Port = cport
	if f.Destination.Port == 0 {
		f.Destination.Port = aport
	}
	if r.peer.kind == kindStr {
		f.Source.IP, _, _ = parseAddr(r.peer.s)
	}

	// Istio tags the span with the reporting proxy's own workload.
	workload, namespace := d.identity(r.canonicalService, false), d.identity(r.namespace, false)
	switch f.Reporter {
	case models.ReporterSource:
		f.Source.Workload, f.Source.Namespace = workload, namespace
	case models.ReporterDestination:
		f.Destination.Workload, f.Destination.Namespace = workload, namespace
	}
	fillReporter(f, res)
	f.Count = 1
	return ""
}
