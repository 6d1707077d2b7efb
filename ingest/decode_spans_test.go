package ingest

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/meshguard/meshguard/models"
)

func proxySpan(s ptrace.Span, kind ptrace.SpanKind, start time.Time) {
	s.SetKind(kind)
	s.SetTraceID(traceID)
	s.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	s.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(42 * time.Millisecond)))
	a := s.Attributes()
	a.PutStr("component", "proxy")
	a.PutStr("node_id", "sidecar~10.44.1.23~sleep-5d8f-abcde.bar~bar.svc.cluster.local")
	a.PutStr("guid:x-request-id", "84961386-6d84-929d-98bd-c5aee93b5c88")
	a.PutStr("http.url", "http://httpbin.foo:8000/status/418?x=1")
	a.PutStr("http.method", "GET")
	a.PutStr("http.protocol", "HTTP/1.1")
	a.PutStr("http.status_code", "418")
	a.PutStr("response_flags", "-")
	a.PutStr("user_agent", "curl/7.73.0-DEV")
	a.PutStr("request_size", "0")
	a.PutStr("response_size", "135")
	a.PutStr("peer.address", "10.44.1.23")
	a.PutStr("istio.mesh_id", "cluster.local")
	if kind == ptrace.SpanKindClient {
		a.PutStr("upstream_cluster", "outbound|8000||httpbin.foo.svc.cluster.local")
		a.PutStr("upstream_cluster.name", "outbound|8000||httpbin.foo.svc.cluster.local")
		a.PutStr("istio.canonical_service", "sleep")
		a.PutStr("istio.namespace", "bar")
	} else {
		a.PutStr("upstream_cluster", "inbound|8000||")
		a.PutStr("istio.canonical_service", "httpbin")
		a.PutStr("istio.namespace", "foo")
	}
}

func TestDecodeSpans(t *testing.T) {
	start := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("k8s.pod.ip", "10.44.9.9") // peer.address wins
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	proxySpan(spans.AppendEmpty(), ptrace.SpanKindClient, start)
	app := spans.AppendEmpty() // an application span: skipped
	app.SetName("db.query")
	app.Attributes().PutStr("db.system", "postgresql")
	proxySpan(spans.AppendEmpty(), ptrace.SpanKindServer, start)
	bad := spans.AppendEmpty()
	proxySpan(bad, ptrace.SpanKindServer, start)
	bad.Attributes().PutStr("http.status_code", "OK")
	intCode := spans.AppendEmpty()
	proxySpan(intCode, ptrace.SpanKindServer, start)
	intCode.Attributes().PutInt("http.status_code", 200)
	intCode.Attributes().PutStr("http.url", "/bare/path")

	common := models.Flow{
		TimestampMs: start.UnixMilli(),
		Source:      models.Source{IP: netip.MustParseAddr("10.44.1.23")},
		Destination: models.Destination{Service: "httpbin.foo.svc.cluster.local", Port: 8000},
		Protocol:    "HTTP/1.1", Method: "GET", Path: "/status/418?x=1", PathTemplate: "/status/{id}",
		ResponseCode: 418, BytesSent: 135, DurationMs: 42,
		UserAgent: "curl/7.73.0-DEV", RequestID: "84961386-6d84-929d-98bd-c5aee93b5c88",
		TraceID: models.TraceID(traceID), Count: 1,
	}
	client := common
	client.ID = testID.ID(0)
	client.Reporter = models.ReporterSource
	client.Source.Workload, client.Source.Namespace = "sleep", "bar"
	server := common
	server.ID = testID.ID(2)
	server.Reporter = models.ReporterDestination
	server.Destination.Workload, server.Destination.Namespace = "httpbin", "foo"
	server.Destination.Service = "httpbin.foo" // inbound: only the URL's authority names it
	bare := server
	bare.ID = testID.ID(4)
	bare.ResponseCode, bare.Path, bare.PathTemplate = 200, "/bare/path", "/bare/path"
	bare.Destination.Service = ""

	for _, e := range encodings {
		t.Run(e.name, func(t *testing.T) {
			got, err, d := decodeAll(t, SignalSpans, EncodingAuto, e.tr(td))
			de := asDecodeError(t, err)
			if de.Reason != "bad_record" || de.Rejected != 1 || de.Total != 5 || !strings.Contains(de.Detail, `record 3: http.status_code "OK"`) {
				t.Errorf("error = %+v", de)
			}
			diffFlows(t, got, []models.Flow{client, server, bare})
			if s := d.Stats(); s.Spans != 5 || s.Skipped != 1 || s.RejectedBadNumber != 1 || s.Flows != 3 {
				t.Errorf("stats = %+v", s)
			}
		})
	}
}

func TestDecodeSpansWholeFailure(t *testing.T) {
	for _, v := range [][]byte{{0x0a, 0xff}, []byte(`{"resourceSpans":`)} {
		got, err, _ := decodeAll(t, SignalSpans, EncodingAuto, v)
		if de := asDecodeError(t, err); de.Rejected != 0 || len(got) != 0 {
			t.Errorf("%q: %+v, %d flows", v, de, len(got))
		}
	}
}

func TestDecodeSpansRejectsAMissingStartTime(t *testing.T) {
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	proxySpan(spans.AppendEmpty(), ptrace.SpanKindClient, time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
	zero := spans.AppendEmpty()
	proxySpan(zero, ptrace.SpanKindClient, time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
	zero.SetStartTimestamp(0)
	got, err, d := decodeAll(t, SignalSpans, EncodingProto, encodings[0].tr(td))
	de := asDecodeError(t, err)
	if len(got) != 1 || de.Rejected != 1 || !strings.Contains(de.Detail, "record 1: the record has no event time") {
		t.Fatalf("%d flows, error %+v; want the zero-time span rejected", len(got), de)
	}
	if d.Stats().RejectedBadTime != 1 {
		t.Errorf("RejectedBadTime = %d", d.Stats().RejectedBadTime)
	}
}
