package ingest

import (
	"bytes"
	"errors"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/meshguard/meshguard/models"
)

var traceID = pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}

// oneLog builds a message with one resource and one record.
func oneLog(resAttrs map[string]string, fill func(lr plog.LogRecord)) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	for k, v := range resAttrs {
		rl.Resource().Attributes().PutStr(k, v)
	}
	fill(rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty())
	return ld
}

func TestDecodeLogs(t *testing.T) {
	recordTime := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	k8s := map[string]string{
		"k8s.pod.name":        "httpbin-74fb669cc6-x2k9z",
		"k8s.namespace.name":  "foo",
		"k8s.deployment.name": "httpbin",
		"k8s.pod.ip":          "10.44.1.27",
	}
	tests := []struct {
		name string
		logs plog.Logs
		want func(f *models.Flow)
	}{
		{"attribute form, full label set", oneLog(nil, func(lr plog.LogRecord) {
			istioAttrs(lr.Attributes())
			lr.SetTraceID(traceID)
		}), func(f *models.Flow) { f.TraceID = models.TraceID(traceID) }},

		{"reporter derived from an outbound cluster; service from the cluster, resource fills the source",
			oneLog(map[string]string{"k8s.namespace.name": "bar", "service.name": "sleep", "k8s.pod.ip": "10.44.1.23"}, func(lr plog.LogRecord) {
				a := lr.Attributes()
				a.PutStr("start_time", "2020-11-25T21:26:18.409Z")
				a.PutStr("method", "GET")
				a.PutStr("path", "/status/418?x=1")
				a.PutStr("protocol", "HTTP/1.1")
				a.PutStr("response_code", "418")
				a.PutStr("authority", "httpbin:8000")
				a.PutStr("upstream_cluster", "outbound|8000||httpbin.foo.svc.cluster.local")
				a.PutStr("downstream_remote_address", "-")
				a.PutStr("requested_server_name", "-")
				a.PutStr("tls_version", "TLSv1.3")
				a.PutStr("destination_principal", "cluster.local/ns/foo/sa/httpbin")
			}),
			func(f *models.Flow) {
				*f = models.Flow{
					TimestampMs: exampleStart.UnixMilli(), Reporter: models.ReporterSource,
					Source:      models.Source{Workload: "sleep", Namespace: "bar", IP: netip.MustParseAddr("10.44.1.23")},
					Destination: models.Destination{Principal: "cluster.local/ns/foo/sa/httpbin", Service: "httpbin.foo.svc.cluster.local", Port: 8000},
					Protocol:    "HTTP/1.1", Method: "GET", Path: "/status/418?x=1", PathTemplate: "/status/{id}", ResponseCode: 418,
					TLS: models.TLSMutual, TLSVersion: "TLSv1.3", Count: 1,
				}
			}},

		{"text body only; resource fills the destination (inbound)", oneLog(k8s, func(lr plog.LogRecord) {
			lr.Body().SetStr(exampleLine + "\n")
		}), func(f *models.Flow) {
			*f = models.Flow{
				TimestampMs: exampleStart.UnixMilli(), Reporter: models.ReporterDestination,
				Source:      models.Source{IP: netip.MustParseAddr("10.44.1.23")},
				Destination: models.Destination{Workload: "httpbin", Namespace: "foo", Service: "httpbin.foo.svc.cluster.local", Port: 8000},
				Protocol:    "HTTP/1.1", Method: "GET", Path: "/status/418", PathTemplate: "/status/{id}", ResponseCode: 418,
				BytesSent: 135, DurationMs: 3, UserAgent: "curl/7.73.0-DEV", RequestID: "84961386-6d84-929d-98bd-c5aee93b5c88", Count: 1,
				TLS: models.TLSMutual, // Istio's inbound SNI
			}
		}},

		{"text body plus identity labels", oneLog(nil, func(lr plog.LogRecord) {
			lr.Body().SetStr(exampleLine)
			lr.Attributes().PutStr("source_principal", "spiffe://cluster.local/ns/bar/sa/sleep")
			lr.Attributes().PutStr("destination_workload", "httpbin")
		}), func(f *models.Flow) {
			*f = models.Flow{
				TimestampMs: exampleStart.UnixMilli(), Reporter: models.ReporterDestination,
				Source:      models.Source{Principal: "cluster.local/ns/bar/sa/sleep", IP: netip.MustParseAddr("10.44.1.23")},
				Destination: models.Destination{Workload: "httpbin", Service: "httpbin.foo.svc.cluster.local", Port: 8000},
				Protocol:    "HTTP/1.1", Method: "GET", Path: "/status/418", PathTemplate: "/status/{id}", ResponseCode: 418,
				BytesSent: 135, DurationMs: 3, UserAgent: "curl/7.73.0-DEV", RequestID: "84961386-6d84-929d-98bd-c5aee93b5c88",
				TLS: models.TLSMutual, Count: 1,
			}
		}},

		{"numbers as OTLP int and double", oneLog(nil, func(lr plog.LogRecord) {
			istioAttrs(lr.Attributes())
			lr.Attributes().PutInt("response_code", 418)
			lr.Attributes().PutDouble("bytes_sent", 135)
			lr.Attributes().PutInt("duration", 3)
		}), func(f *models.Flow) {}},

		{"resource does not override what the record said", oneLog(map[string]string{"k8s.deployment.name": "other", "k8s.namespace.name": "other"}, func(lr plog.LogRecord) {
			istioAttrs(lr.Attributes())
		}), func(f *models.Flow) {}},

		{"no start_time: record timestamp", oneLog(nil, func(lr plog.LogRecord) {
			istioAttrs(lr.Attributes())
			lr.Attributes().Remove("start_time")
			lr.SetTimestamp(pcommon.NewTimestampFromTime(recordTime))
			lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(recordTime.Add(time.Second)))
		}), func(f *models.Flow) { f.TimestampMs = recordTime.UnixMilli() }},

		{"no start_time, no timestamp: observed timestamp", oneLog(nil, func(lr plog.LogRecord) {
			istioAttrs(lr.Attributes())
			lr.Attributes().PutStr("start_time", "-")
			lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(recordTime))
		}), func(f *models.Flow) { f.TimestampMs = recordTime.UnixMilli() }},

		{"JSON body map (a collector parsed the line)", oneLog(nil, func(lr plog.LogRecord) {
			istioAttrs(lr.Body().SetEmptyMap())
			lr.Attributes().PutStr("method", "POST") // attributes win over the body
		}), func(f *models.Flow) { f.Method = "POST" }},

		{"invalid principals and unset values become empty", oneLog(nil, func(lr plog.LogRecord) {
			istioAttrs(lr.Attributes())
			lr.Attributes().PutStr("source_principal", "<!channel>")
			lr.Attributes().PutStr("destination_principal", "-")
			lr.Attributes().PutStr("tls_version", "-")
			lr.Attributes().PutStr("response_flags", "UAEX")
		}), func(f *models.Flow) {
			f.Source.Principal, f.Destination.Principal, f.TLSVersion, f.TLS, f.ResponseFlags = "", "", "", models.TLSPlaintext, "UAEX"
		}},

		{"destination side without the principal field: Istio's inbound SNI shows its client proxy's mTLS", oneLog(nil, func(lr plog.LogRecord) {
			istioAttrs(lr.Attributes())
			lr.Attributes().Remove("source_principal")
		}), func(f *models.Flow) { f.Source.Principal, f.TLS = "", models.TLSMutual }},

		{"destination side, no client certificate and no Istio SNI: plaintext", oneLog(nil, func(lr plog.LogRecord) {
			istioAttrs(lr.Attributes())
			lr.Attributes().Remove("source_principal")
			lr.Attributes().PutStr("requested_server_name", "-")
		}), func(f *models.Flow) {
			f.Source.Principal, f.Destination.Service, f.TLS = "", "httpbin", models.TLSPlaintext
		}},

		{"destination side with no TLS fields at all: unknown, not plaintext", oneLog(nil, func(lr plog.LogRecord) {
			istioAttrs(lr.Attributes())
			lr.Attributes().Remove("source_principal")
			lr.Attributes().Remove("requested_server_name")
		}), func(f *models.Flow) {
			f.Source.Principal, f.Destination.Service, f.TLS = "", "httpbin", models.TLSUnknown
		}},
	}
	for _, tt := range tests {
		for _, e := range encodings {
			t.Run(tt.name+"/"+e.name, func(t *testing.T) {
				want := exampleFlow()
				tt.want(&want)
				want.ID = testID.ID(0)
				for _, enc := range []Encoding{EncodingAuto, e.enc} {
					got, err, _ := decodeAll(t, SignalLogs, enc, e.logs(tt.logs))
					if err != nil {
						t.Fatal(err)
					}
					diffFlows(t, got, []models.Flow{want})
					checkFlowStrings(t, &got[0])
				}
			})
		}
	}
}

// TestDecodeLogsBatch checks ids across resources and scopes, and that the
// flows are appended to dst.
func TestDecodeLogsBatch(t *testing.T) {
	ld := plog.NewLogs()
	for r := 0; r < 3; r++ {
		rl := ld.ResourceLogs().AppendEmpty()
		for s := 0; s < 2; s++ {
			lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
			for i := 0; i < 5; i++ {
				istioAttrs(lrs.AppendEmpty().Attributes())
			}
		}
	}
	for _, e := range encodings {
		d := NewDecoder(DecoderConfig{})
		prefix := []models.Flow{{Method: "earlier"}}
		got, err := d.Decode(SignalLogs, e.logs(ld), testID, prefix)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 31 || got[0].Method != "earlier" {
			t.Fatalf("%s: got %d flows (first %q), want the prefix and 30", e.name, len(got), got[0].Method)
		}
		for i, f := range got[1:] {
			if f.ID != testID.ID(i) {
				t.Fatalf("%s: flow %d has id %v, want %v", e.name, i, f.ID, testID.ID(i))
			}
		}
		if s := d.Stats(); s.LogRecords != 30 || s.Flows != 30 || s.Messages != 1 {
			t.Errorf("%s: stats %+v", e.name, s)
		}
	}
}

func TestDecodeLogsRejectsBadRecords(t *testing.T) {
	type attr struct {
		key string
		v   any
	}
	tests := []struct {
		name    string
		set     []attr // on the middle record of three
		body    string
		noAttrs bool
		detail  string
		stat    func(s DecoderStats) uint64
	}{
		{"response_code not a number", []attr{{"response_code", "abc"}}, "", false, `record 1: response_code "abc" is not a number in range`,
			func(s DecoderStats) uint64 { return s.RejectedBadNumber }},
		{"response_code out of range", []attr{{"response_code", "70000"}}, "", false, "record 1: response_code \"70000\"",
			func(s DecoderStats) uint64 { return s.RejectedBadNumber }},
		{"bytes_sent negative int", []attr{{"bytes_sent", int64(-1)}}, "", false, "record 1: bytes_sent int -1",
			func(s DecoderStats) uint64 { return s.RejectedBadNumber }},
		{"duration fractional double", []attr{{"duration", 2.5}}, "", false, "record 1: duration double",
			func(s DecoderStats) uint64 { return s.RejectedBadNumber }},
		{"bytes_received bool", []attr{{"bytes_received", true}}, "", false, "record 1: bytes_received bool",
			func(s DecoderStats) uint64 { return s.RejectedBadNumber }},
		{"duration NaN", []attr{{"duration", math.NaN()}}, "", false, "record 1: duration double",
			func(s DecoderStats) uint64 { return s.RejectedBadNumber }},
		{"start_time garbage", []attr{{"start_time", "yesterday"}}, "", false, `record 1: start_time "yesterday"`,
			func(s DecoderStats) uint64 { return s.RejectedBadTime }},
		{"text that does not parse, no attributes", nil, "GET / 200", true, "record 1: text body is not an Istio access log",
			func(s DecoderStats) uint64 { return s.RejectedNoTelemetry }},
		{"nothing at all", nil, "", true, "record 1: no access-log attributes and no text body",
			func(s DecoderStats) uint64 { return s.RejectedNoTelemetry }},
		{"unrelated attributes only", []attr{{"level", "info"}}, "", true, "record 1: no access-log attributes",
			func(s DecoderStats) uint64 { return s.RejectedNoTelemetry }},
	}
	for _, tt := range tests {
		ld := plog.NewLogs()
		lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
		for i := 0; i < 3; i++ {
			lr := lrs.AppendEmpty()
			if i != 1 || !tt.noAttrs {
				istioAttrs(lr.Attributes())
			}
			if i != 1 {
				continue
			}
			if tt.body != "" {
				lr.Body().SetStr(tt.body)
			}
			for _, a := range tt.set {
				switch v := a.v.(type) {
				case string:
					lr.Attributes().PutStr(a.key, v)
				case int64:
					lr.Attributes().PutInt(a.key, v)
				case float64:
					lr.Attributes().PutDouble(a.key, v)
				case bool:
					lr.Attributes().PutBool(a.key, v)
				}
			}
		}
		for _, e := range encodings {
			if e.enc == EncodingJSON && tt.name == "duration NaN" {
				continue // JSON has no NaN
			}
			t.Run(tt.name+"/"+e.name, func(t *testing.T) {
				got, err, d := decodeAll(t, SignalLogs, EncodingAuto, e.logs(ld))
				de := asDecodeError(t, err)
				if de.Reason != "bad_record" || de.Rejected != 1 || de.Total != 3 || !de.Partial() {
					t.Fatalf("error = %+v", de)
				}
				if !strings.HasPrefix(de.Detail, tt.detail) {
					t.Errorf("detail = %q, want prefix %q", de.Detail, tt.detail)
				}
				if len(got) != 2 || got[0].ID != testID.ID(0) || got[1].ID != testID.ID(2) {
					t.Fatalf("good records not returned with their ids: %d flows", len(got))
				}
				if n := tt.stat(d.Stats()); n != 1 {
					t.Errorf("rejection counter = %d, want 1", n)
				}
			})
		}
	}
}

func TestDecodeLogsTextErrorWithAttributesIsKept(t *testing.T) {
	for _, tt := range []struct {
		name       string
		drop       string // an attribute to remove, so the body is needed
		wantErrors uint64
	}{
		{"complete attributes: the body is not read", "", 0},
		{"an attribute missing: the bad body is counted", "user_agent", 1},
	} {
		ld := oneLog(nil, func(lr plog.LogRecord) {
			istioAttrs(lr.Attributes())
			if tt.drop != "" {
				lr.Attributes().Remove(tt.drop)
			}
			lr.Body().SetStr("not the default format")
		})
		got, err, d := decodeAll(t, SignalLogs, EncodingProto, encodings[0].logs(ld))
		if err != nil || len(got) != 1 {
			t.Fatalf("%s: got %d flows, err %v", tt.name, len(got), err)
		}
		if n := d.Stats().TextParseErrors; uint64(n) != tt.wantErrors {
			t.Errorf("%s: TextParseErrors = %d, want %d", tt.name, n, tt.wantErrors)
		}
	}
}

func TestDecodeLogsWholeMessageFailures(t *testing.T) {
	valid := encodings[0].logs(oneLog(nil, func(lr plog.LogRecord) { istioAttrs(lr.Attributes()) }))
	tests := []struct {
		name   string
		enc    Encoding
		value  []byte
		reason string
	}{
		{"truncated proto", EncodingAuto, valid[:len(valid)/2], "unmarshal_proto"},
		{"truncated by one byte", EncodingProto, valid[:len(valid)-1], "unmarshal_proto"},
		{"garbage bytes", EncodingAuto, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, "unmarshal_proto"},
		{"wrong wire type", EncodingAuto, []byte{0x0d, 0, 0, 0, 0}, "unmarshal_proto"},
		{"json garbage", EncodingAuto, []byte(`{"resourceLogs": [`), "unmarshal_json"},
		{"json with leading spaces", EncodingAuto, []byte("  \t{nope"), "unmarshal_json"},
		{"json forced on proto", EncodingJSON, valid, "unmarshal_json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecoder(DecoderConfig{Encoding: tt.enc})
			prefix := []models.Flow{{Method: "kept"}}
			got, err := d.Decode(SignalLogs, tt.value, testID, prefix)
			de := asDecodeError(t, err)
			if de.Reason != tt.reason || de.Rejected != 0 || de.Partial() {
				t.Errorf("error = %+v, want reason %s, whole message", de, tt.reason)
			}
			if len(got) != 1 || got[0].Method != "kept" {
				t.Errorf("dst changed: %+v", got)
			}
			if d.Stats().MessagesFailed != 1 {
				t.Errorf("MessagesFailed = %d", d.Stats().MessagesFailed)
			}
		})
	}
	if _, err := NewDecoder(DecoderConfig{}).Decode(Signal(9), valid, testID, nil); asDecodeError(t, err).Reason != "unknown_signal" {
		t.Errorf("unknown signal: %v", err)
	}
}

// An empty message is valid: no records, no error.
func TestDecodeLogsEmpty(t *testing.T) {
	for _, v := range [][]byte{nil, {}, []byte(`{}`)} {
		got, err, _ := decodeAll(t, SignalLogs, EncodingAuto, v)
		if err != nil || len(got) != 0 {
			t.Errorf("Decode(%q) = %d flows, %v", v, len(got), err)
		}
	}
}

func TestDecodeLogsHostileStrings(t *testing.T) {
	hugePath := "/" + strings.Repeat("a", 1<<20)
	bad := "/x\xff\xfe/\xc3" // invalid bytes and a cut rune
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	add := func(k, v string) {
		lr := lrs.AppendEmpty()
		istioAttrs(lr.Attributes())
		lr.Attributes().PutStr(k, v)
	}
	add("path", hugePath)
	add("user_agent", strings.Repeat("é", 100_000)) // 2 bytes per rune: the cut must not split one
	add("path", bad)
	add("user_agent", "\xff"+strings.Repeat("\xfe", 2000)) // replacement grows the string
	add("source_workload", strings.Repeat("w", 600))       // too long for an identity: dropped
	add("destination_workload", "bad\xffname")             // not UTF-8: dropped
	add("request_id", strings.Repeat("r", 10_000))
	add("method", "GET\x00\xff")

	for _, e := range encodings {
		t.Run(e.name, func(t *testing.T) {
			got, err, d := decodeAll(t, SignalLogs, EncodingAuto, e.logs(ld))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 8 {
				t.Fatalf("got %d flows, want all 8 kept", len(got))
			}
			for i := range got {
				checkFlowStrings(t, &got[i])
			}
			if got[0].Path != hugePath[:DefaultMaxPathBytes] || got[0].PathTemplate != got[0].Path {
				t.Errorf("huge path not cut to %d bytes: %d", DefaultMaxPathBytes, len(got[0].Path))
			}
			if got[1].UserAgent != strings.Repeat("é", DefaultMaxUserAgentBytes/2) {
				t.Errorf("user agent cut badly: %d bytes", len(got[1].UserAgent))
			}
			if got[2].Path != "/x\uFFFD/\uFFFD" {
				t.Errorf("invalid UTF-8 path = %q", got[2].Path)
			}
			if len(got[3].UserAgent) > DefaultMaxUserAgentBytes || !strings.HasPrefix(got[3].UserAgent, "\uFFFD") {
				t.Errorf("replaced user agent = %q", got[3].UserAgent)
			}
			if got[4].Source.Workload != "" || got[5].Destination.Workload != "" {
				t.Errorf("bad identities kept: %q %q", got[4].Source.Workload, got[5].Destination.Workload)
			}
			if len(got[6].RequestID) != DefaultMaxFieldBytes {
				t.Errorf("request id %d bytes", len(got[6].RequestID))
			}
			if got[7].Method != "GET\x00\uFFFD" {
				t.Errorf("method = %q", got[7].Method)
			}
			s := d.Stats()
			if s.Truncated != 4 || s.InvalidUTF8 != 3 || s.DroppedIdentities != 2 {
				t.Errorf("truncated %d invalid %d dropped %d, want 4 3 2", s.Truncated, s.InvalidUTF8, s.DroppedIdentities)
			}
		})
	}
}

// The flows must not point into the Kafka buffer: the consumer reuses it.
func TestDecodeLogsDoesNotAliasInput(t *testing.T) {
	ld := oneLog(nil, func(lr plog.LogRecord) { istioAttrs(lr.Attributes()) })
	for _, e := range encodings {
		value := e.logs(ld)
		got, err, _ := decodeAll(t, SignalLogs, EncodingAuto, value)
		if err != nil {
			t.Fatal(err)
		}
		for i := range value {
			value[i] = 'X'
		}
		want := exampleFlow()
		want.ID = testID.ID(0)
		diffFlows(t, got, []models.Flow{want})
	}
}

func TestDetectEncoding(t *testing.T) {
	tests := []struct {
		in   []byte
		want Encoding
	}{
		{[]byte(`{"resourceLogs":[]}`), EncodingJSON},
		{[]byte(" \r\n\t{}"), EncodingJSON},
		{[]byte{0x0a, 0x7b}, EncodingJSON}, // ambiguous: Decode tries protobuf first
		{[]byte{0x0a, 0x05}, EncodingProto},
		{nil, EncodingProto},
		{[]byte("   "), EncodingProto},
	}
	for _, tt := range tests {
		if got := detectEncoding(tt.in); got != tt.want {
			t.Errorf("detectEncoding(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
	// A protobuf message whose first resource is 123 bytes long starts
	// with "\n{": it must still decode as protobuf.
	for n := 0; n < 400; n++ {
		ld := oneLog(map[string]string{"k": strings.Repeat("x", n)}, func(lr plog.LogRecord) {
			lr.Attributes().PutStr("reporter", "source")
			lr.Attributes().PutStr("start_time", "2024-05-01T12:00:00.000Z")
		})
		v := encodings[0].logs(ld)
		if !bytes.HasPrefix(v, []byte("\n{")) {
			continue
		}
		if got, err, _ := decodeAll(t, SignalLogs, EncodingAuto, v); err != nil || len(got) != 1 {
			t.Fatalf("proto message starting with \\n{: %d flows, %v", len(got), err)
		}
		return
	}
	t.Fatal("no message started with \\n{")
}

func TestParseEncoding(t *testing.T) {
	for in, want := range map[string]Encoding{"": EncodingAuto, "auto": EncodingAuto, "otlp_proto": EncodingProto, "otlp_json": EncodingJSON} {
		if got, err := ParseEncoding(in); err != nil || got != want {
			t.Errorf("ParseEncoding(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseEncoding("raw"); err == nil {
		t.Error("ParseEncoding(raw) accepted")
	}
	if SignalLogs.String() != "logs" || SignalSpans.String() != "spans" || SignalMetrics.String() != "metrics" {
		t.Error("Signal names")
	}
}

// Stats may be read by another goroutine (the consumer's metrics) while
// this one decodes; run with -race.
func TestStatsWhileDecoding(t *testing.T) {
	d := NewDecoder(DecoderConfig{})
	v := encodings[0].logs(oneLog(nil, func(lr plog.LogRecord) { istioAttrs(lr.Attributes()) }))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			_ = d.Stats()
		}
	}()
	var flows []models.Flow
	for i := 0; i < 200; i++ {
		flows, _ = d.Decode(SignalLogs, v, testID, flows[:0])
	}
	<-done
	if s := d.Stats(); s.Messages != 200 || s.Flows != 200 {
		t.Errorf("stats = %+v", s)
	}
}

// Times DateTime cannot hold would wrap into wrong partitions, and a
// far-future partition never expires: such records go to the DLQ.
func TestDecodeLogsRejectsEventTimesOutsideTheCentury(t *testing.T) {
	for _, tt := range []struct {
		name   string
		edit   func(lr plog.LogRecord)
		detail string
	}{
		{"before 1970", func(lr plog.LogRecord) { lr.Attributes().PutStr("start_time", "1969-12-31T23:59:59.000Z") }, "outside 2000..2100"},
		{"year 2150", func(lr plog.LogRecord) { lr.Attributes().PutStr("start_time", "2150-01-01T00:00:00.000Z") }, "outside 2000..2100"},
		{"no time at all", func(lr plog.LogRecord) {
			lr.Attributes().Remove("start_time")
			lr.SetTimestamp(0)
			lr.SetObservedTimestamp(0)
		}, "no event time"},
	} {
		ld := oneLog(nil, func(lr plog.LogRecord) {
			istioAttrs(lr.Attributes())
			tt.edit(lr)
		})
		got, err, d := decodeAll(t, SignalLogs, EncodingProto, encodings[0].logs(ld))
		var de *DecodeError
		if len(got) != 0 || !errors.As(err, &de) || de.Reason != "bad_record" || !strings.Contains(de.Detail, tt.detail) {
			t.Errorf("%s: %d flows, err %v; want the record rejected: %s", tt.name, len(got), err, tt.detail)
			continue
		}
		if d.Stats().RejectedBadTime != 1 {
			t.Errorf("%s: RejectedBadTime = %d", tt.name, d.Stats().RejectedBadTime)
		}
	}
}

// Issue 12's mixed-mesh evaluation: a client-side label-form record of a
// connection that failed (503 UF, a closed port, an open circuit breaker)
// logs %UPSTREAM_TLS_VERSION% empty because no TLS session existed; it was
// read as plaintext, evidence of a downgrade on an mTLS edge. It is
// unknown; an answered request without TLS stays plaintext.
func TestClientSideFailedConnectionIsNoPlaintextEvidence(t *testing.T) {
	for _, c := range []struct {
		flags string
		code  string
		want  models.TLS
	}{
		{"UF", "503", models.TLSUnknown},
		{"UF,URX", "503", models.TLSUnknown},
		{"UO", "503", models.TLSUnknown},
		{"UH", "503", models.TLSUnknown},
		{"-", "200", models.TLSPlaintext},
		{"URX", "503", models.TLSPlaintext},
		{"UC", "503", models.TLSPlaintext},
	} {
		logs := oneLog(nil, func(lr plog.LogRecord) {
			a := lr.Attributes()
			istioAttrs(a)
			a.PutStr("reporter", "source")
			a.Remove("source_principal")
			a.PutStr("upstream_cluster", "outbound|8000||httpbin.foo.svc.cluster.local")
			a.PutStr("destination_principal", "-")
			a.PutStr("tls_version", "-")
			a.PutStr("response_flags", c.flags)
			a.PutStr("response_code", c.code)
		})
		for _, e := range encodings {
			got, err, _ := decodeAll(t, SignalLogs, EncodingAuto, e.logs(logs))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].Reporter != models.ReporterSource || got[0].TLS != c.want {
				t.Errorf("%s %s %s: %+v, want TLS %v", e.name, c.code, c.flags, got, c.want)
			}
		}
	}
}
