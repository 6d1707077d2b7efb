package ingest

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/meshguard/meshguard/models"
)

// The reference's example line (reference.md section 2).
const exampleLine = `[2020-11-25T21:26:18.409Z] "GET /status/418 HTTP/1.1" 418 - via_upstream - "-" 0 135 3 1 "-" "curl/7.73.0-DEV" "84961386-6d84-929d-98bd-c5aee93b5c88" "httpbin:8000" "127.0.0.1:80" inbound|8000|| 127.0.0.1:41854 10.44.1.27:80 10.44.1.23:37652 outbound_.8000_._.httpbin.foo.svc.cluster.local default`

var (
	exampleStart = time.Date(2020, 11, 25, 21, 26, 18, 409e6, time.UTC)
	testID       = models.NewFlowIDBase("otlp_logs", 2, 1234)
)

// encodings marshals with both of the collector's encodings.
var encodings = []struct {
	name string
	enc  Encoding
	logs func(plog.Logs) []byte
	tr   func(ptrace.Traces) []byte
	met  func(pmetric.Metrics) []byte
}{
	{"otlp_proto", EncodingProto,
		func(l plog.Logs) []byte { b, _ := (&plog.ProtoMarshaler{}).MarshalLogs(l); return b },
		func(t ptrace.Traces) []byte { b, _ := (&ptrace.ProtoMarshaler{}).MarshalTraces(t); return b },
		func(m pmetric.Metrics) []byte { b, _ := (&pmetric.ProtoMarshaler{}).MarshalMetrics(m); return b }},
	{"otlp_json", EncodingJSON,
		func(l plog.Logs) []byte { b, _ := (&plog.JSONMarshaler{}).MarshalLogs(l); return b },
		func(t ptrace.Traces) []byte { b, _ := (&ptrace.JSONMarshaler{}).MarshalTraces(t); return b },
		func(m pmetric.Metrics) []byte { b, _ := (&pmetric.JSONMarshaler{}).MarshalMetrics(m); return b }},
}

// istioAttrs is a full attribute-form record: Istio's JSON keys plus the
// identity labels, for a server-side (inbound) log.
func istioAttrs(m pcommon.Map) {
	for _, kv := range [][2]string{
		{"start_time", "2020-11-25T21:26:18.409Z"},
		{"method", "GET"},
		{"path", "/status/418?x=1"},
		{"protocol", "HTTP/1.1"},
		{"response_code", "418"},
		{"response_flags", "-"},
		{"response_code_details", "via_upstream"},
		{"connection_termination_details", "-"},
		{"upstream_transport_failure_reason", "-"},
		{"bytes_received", "0"},
		{"bytes_sent", "135"},
		{"duration", "3"},
		{"upstream_service_time", "1"},
		{"x_forwarded_for", "-"},
		{"user_agent", "curl/7.73.0-DEV"},
		{"request_id", "84961386-6d84-929d-98bd-c5aee93b5c88"},
		{"authority", "httpbin:8000"},
		{"upstream_host", "127.0.0.1:80"},
		{"upstream_cluster", "inbound|8000||"},
		{"upstream_local_address", "127.0.0.1:41854"},
		{"downstream_local_address", "10.44.1.27:80"},
		{"downstream_remote_address", "10.44.1.23:37652"},
		{"requested_server_name", "outbound_.8000_._.httpbin.foo.svc.cluster.local"},
		{"route_name", "default"},
		{"source_principal", "spiffe://cluster.local/ns/bar/sa/sleep"},
		{"destination_principal", "spiffe://cluster.local/ns/foo/sa/httpbin"},
		{"source_workload", "sleep"},
		{"source_namespace", "bar"},
		{"destination_workload", "httpbin"},
		{"destination_namespace", "foo"},
		{"tls_version", "TLSv1.3"},
		{"reporter", "destination"},
	} {
		m.PutStr(kv[0], kv[1])
	}
}

// exampleFlow is what istioAttrs decodes to.
func exampleFlow() models.Flow {
	return models.Flow{
		TimestampMs: exampleStart.UnixMilli(),
		Reporter:    models.ReporterDestination,
		Source: models.Source{
			Principal: "cluster.local/ns/bar/sa/sleep",
			Workload:  "sleep",
			Namespace: "bar",
			IP:        netip.MustParseAddr("10.44.1.23"),
		},
		Destination: models.Destination{
			Principal: "cluster.local/ns/foo/sa/httpbin",
			Workload:  "httpbin",
			Namespace: "foo",
			Service:   "httpbin.foo.svc.cluster.local",
			Port:      8000,
		},
		Protocol:     "HTTP/1.1",
		Method:       "GET",
		Path:         "/status/418?x=1",
		PathTemplate: "/status/{id}",
		ResponseCode: 418,
		BytesSent:    135,
		DurationMs:   3,
		TLS:          models.TLSMutual,
		TLSVersion:   "TLSv1.3",
		UserAgent:    "curl/7.73.0-DEV",
		RequestID:    "84961386-6d84-929d-98bd-c5aee93b5c88",
		Count:        1,
	}
}

// decodeAll decodes value with a fresh decoder and the given encoding.
func decodeAll(t testing.TB, sig Signal, enc Encoding, value []byte) ([]models.Flow, error, *Decoder) {
	t.Helper()
	d := NewDecoder(DecoderConfig{Encoding: enc})
	flows, err := d.Decode(sig, value, testID, nil)
	return flows, err, d
}

func asDecodeError(t testing.TB, err error) *DecodeError {
	t.Helper()
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a *DecodeError", err, err)
	}
	return de
}

func diffFlows(t testing.TB, got, want []models.Flow) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d flows, want %d:\n got %+v\nwant %+v", len(got), len(want), got, want)
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("flow %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

// checkFlowStrings asserts the invariant every flow must keep, whatever
// the input: valid UTF-8 and within the default caps.
func checkFlowStrings(t testing.TB, f *models.Flow) {
	t.Helper()
	for _, s := range []struct {
		name string
		v    string
		max  int
	}{
		{"Path", f.Path, DefaultMaxPathBytes},
		{"PathTemplate", f.PathTemplate, DefaultMaxPathBytes},
		{"UserAgent", f.UserAgent, DefaultMaxUserAgentBytes},
		{"Method", f.Method, DefaultMaxFieldBytes},
		{"Protocol", f.Protocol, DefaultMaxFieldBytes},
		{"ResponseFlags", f.ResponseFlags, DefaultMaxFieldBytes},
		{"TLSVersion", f.TLSVersion, DefaultMaxFieldBytes},
		{"RequestID", f.RequestID, DefaultMaxFieldBytes},
		{"Source.Principal", f.Source.Principal, DefaultMaxFieldBytes},
		{"Source.Workload", f.Source.Workload, DefaultMaxFieldBytes},
		{"Source.Namespace", f.Source.Namespace, DefaultMaxFieldBytes},
		{"Destination.Principal", f.Destination.Principal, DefaultMaxFieldBytes},
		{"Destination.Workload", f.Destination.Workload, DefaultMaxFieldBytes},
		{"Destination.Namespace", f.Destination.Namespace, DefaultMaxFieldBytes},
		{"Destination.Service", f.Destination.Service, DefaultMaxFieldBytes},
	} {
		if !utf8.ValidString(s.v) {
			t.Fatalf("%s is not valid UTF-8: %q", s.name, s.v)
		}
		if len(s.v) > s.max {
			t.Fatalf("%s is %d bytes, cap %d", s.name, len(s.v), s.max)
		}
	}
	if f.Source.Principal != "" && models.NormalizePrincipal(f.Source.Principal) != f.Source.Principal {
		t.Fatalf("source principal %q not in Istio form", f.Source.Principal)
	}
	if f.Destination.Principal != "" && models.NormalizePrincipal(f.Destination.Principal) != f.Destination.Principal {
		t.Fatalf("destination principal %q not in Istio form", f.Destination.Principal)
	}
}
