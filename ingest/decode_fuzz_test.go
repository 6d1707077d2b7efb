package ingest

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/meshguard/meshguard/models"
)

// seedLogs are the messages the log fuzzers start from: every form and
// the hostile shapes the table tests use, in both encodings.
func seedLogs() [][]byte {
	var msgs []plog.Logs
	msgs = append(msgs, oneLog(map[string]string{"k8s.deployment.name": "httpbin", "k8s.namespace.name": "foo"}, func(lr plog.LogRecord) {
		istioAttrs(lr.Attributes())
		lr.SetTraceID(traceID)
	}))
	msgs = append(msgs, oneLog(nil, func(lr plog.LogRecord) { lr.Body().SetStr(exampleLine + "\n") }))
	msgs = append(msgs, oneLog(nil, func(lr plog.LogRecord) {
		lr.Body().SetStr(exampleLine)
		lr.Attributes().PutStr("source_principal", "spiffe://cluster.local/ns/bar/sa/sleep")
		lr.Attributes().PutInt("response_code", 503)
		lr.Attributes().PutDouble("duration", 12)
		lr.Attributes().PutBool("bytes_sent", true)
	}))
	msgs = append(msgs, oneLog(nil, func(lr plog.LogRecord) {
		istioAttrs(lr.Attributes())
		lr.Attributes().PutStr("path", "/x\xff\xfe/"+strings.Repeat("a", 3000))
		lr.Attributes().PutStr("user_agent", "\xc3")
		lr.Attributes().PutStr("response_code", "abc")
	}))
	msgs = append(msgs, oneLog(nil, func(lr plog.LogRecord) {
		istioAttrs(lr.Body().SetEmptyMap())
		lr.Attributes().PutEmptySlice("path").AppendEmpty().SetStr("/a")
	}))
	var out [][]byte
	for _, m := range msgs {
		for _, e := range encodings {
			out = append(out, e.logs(m))
		}
	}
	return out
}

func FuzzParseAccessLogText(f *testing.F) {
	f.Add(exampleLine)
	f.Add(exampleLine + "\n")
	f.Add(`[2024-03-01T10:00:00.000Z] "- - -" 0 - - - "-" 1024 2048 60000 - "-" "-" "-" "-" "10.44.2.9:5432" outbound|5432||pg.db.svc.cluster.local 10.44.1.5:40000 10.96.0.9:5432 10.44.1.5:39999 - -`)
	f.Add(strings.Replace(exampleLine, `"curl/7.73.0-DEV"`, `"a" "b\xff"`, 1))
	f.Fuzz(func(t *testing.T, line string) {
		var fl models.Flow
		err := ParseAccessLogText(line, &fl)
		if err != nil {
			if fl != (models.Flow{}) {
				t.Fatalf("error %v left a flow: %+v", err, fl)
			}
			return
		}
		checkFlowStrings(t, &fl)
		if fl.Count != 1 {
			t.Fatalf("Count = %d", fl.Count)
		}
	})
}

func FuzzDecodeLogs(f *testing.F) {
	for _, s := range seedLogs() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		d := NewDecoder(DecoderConfig{})
		prefix := []models.Flow{{Method: "prefix"}}
		flows, err := d.Decode(SignalLogs, value, testID, prefix)
		if len(flows) == 0 || flows[0].Method != "prefix" {
			t.Fatal("dst prefix lost")
		}
		if err != nil {
			de := asDecodeError(t, err)
			if de.Rejected == 0 && len(flows) != 1 {
				t.Fatalf("whole-message error %v but %d flows", de, len(flows)-1)
			}
			if de.Rejected > de.Total || de.Reason == "" || len(de.Detail) > maxDetail || !validUTF8(de.Detail) {
				t.Fatalf("bad DecodeError %+v", de)
			}
		}
		for i := range flows[1:] {
			checkFlowStrings(t, &flows[1+i])
		}
	})
}

func validUTF8(s string) bool { return strings.ToValidUTF8(s, "") == s }

// decodeBoth decodes value through the fast path (when it takes it) and
// through pdata alone.
func decodeBoth(t testing.TB, enc Encoding, value []byte) (fast, ref []models.Flow, fastErr, refErr error, fastStats, refStats DecoderStats) {
	df := NewDecoder(DecoderConfig{Encoding: enc})
	dr := NewDecoder(DecoderConfig{Encoding: enc})
	dr.pdataOnly = true
	fast, fastErr = df.Decode(SignalLogs, value, testID, nil)
	ref, refErr = dr.Decode(SignalLogs, value, testID, nil)
	return fast, ref, fastErr, refErr, df.Stats(), dr.Stats()
}

func compareBoth(t testing.TB, value []byte) (tookFast bool) {
	return compareBothAs(t, EncodingProto, value)
}

// compareBothAs checks that the fast path for enc, when it takes value,
// gives what pdata gives: flows, errors and counters.
func compareBothAs(t testing.TB, enc Encoding, value []byte) (tookFast bool) {
	fast, ref, fastErr, refErr, fs, rs := decodeBoth(t, enc, value)
	if !reflect.DeepEqual(fastErr, refErr) {
		t.Fatalf("errors differ:\nfast  %v\npdata %v", fastErr, refErr)
	}
	if len(fast) != len(ref) {
		t.Fatalf("fast path %d flows, pdata %d", len(fast), len(ref))
	}
	for i := range fast {
		if !reflect.DeepEqual(fast[i], ref[i]) {
			t.Fatalf("flow %d differs:\nfast  %+v\npdata %+v", i, fast[i], ref[i])
		}
	}
	tookFast = fs.FastPath == 1
	fs.FastPath = 0
	if fs != rs {
		t.Fatalf("stats differ:\nfast  %+v\npdata %+v", fs, rs)
	}
	return tookFast
}

// TestFastPathMatchesPdata runs every log message of the table tests
// through both paths.
func TestFastPathMatchesPdata(t *testing.T) {
	var values [][]byte
	for _, s := range seedLogs() {
		if s[0] != '{' {
			values = append(values, s)
		}
	}
	values = append(values, encodings[0].logs(benchLogs(false)), encodings[0].logs(benchLogs(true)))
	fastCount := 0
	for i, v := range values {
		if compareBoth(t, v) {
			fastCount++
		}
		// Every prefix of a short message: truncations of all kinds.
		if len(v) < 2000 {
			for n := 0; n < len(v); n++ {
				compareBoth(t, v[:n])
			}
		}
		_ = i
	}
	if fastCount < len(values)-1 { // the message with an array value needs pdata
		t.Errorf("fast path taken for %d of %d messages", fastCount, len(values))
	}
}

// Found by FuzzFastPathMatchesPdata: the fast path's key cache once took
// an empty key for start_time.
func TestFastPathEmptyKeys(t *testing.T) {
	ld := oneLog(nil, func(lr plog.LogRecord) {
		lr.Attributes().PutStr("", "x")
		lr.Attributes().PutEmpty("")
	})
	v := encodings[0].logs(ld)
	if !compareBoth(t, v) {
		t.Error("fast path not taken")
	}
	_, err, _ := decodeAll(t, SignalLogs, EncodingProto, v)
	if de := asDecodeError(t, err); de.Rejected != 1 {
		t.Errorf("record with empty keys only: %v, want rejected", err)
	}
}

// TestFastPathFallsBack checks the shapes the fast path hands to pdata.
func TestFastPathFallsBack(t *testing.T) {
	base := oneLog(nil, func(lr plog.LogRecord) { istioAttrs(lr.Attributes()) })
	kv := func(mutate func(a pcommon.Map)) []byte {
		ld := plog.NewLogs()
		base.CopyTo(ld)
		mutate(ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes())
		return encodings[0].logs(ld)
	}
	plain := encodings[0].logs(base)
	tests := []struct {
		name string
		v    []byte
	}{
		{"array value", kv(func(a pcommon.Map) { a.PutEmptySlice("x").AppendEmpty().SetInt(1) })},
		{"map value", kv(func(a pcommon.Map) { a.PutEmptyMap("x").PutStr("a", "b") })},
		{"bytes value", kv(func(a pcommon.Map) { a.PutEmptyBytes("x").Append(1, 2) })},
		{"group field", append(append([]byte{}, plain...), 0x0b, 0x0c)},                         // field 1 start group, end group
		{"second resource field", append([]byte{0x0a, 0x04, 0x0a, 0x00, 0x0a, 0x00}, plain...)}, // {1: {1: {}, 1: {}}}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecoder(DecoderConfig{})
			if _, _, ok := d.decodeLogsFast(tt.v, testID, nil); ok {
				t.Error("fast path took a message it should leave to pdata")
			}
			compareBoth(t, tt.v)
		})
	}
}

func FuzzFastPathMatchesPdata(f *testing.F) {
	for _, s := range seedLogs() {
		if s[0] != '{' {
			f.Add(s)
		}
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		compareBoth(t, value)
	})
}

// TestWriteFuzzSeeds regenerates testdata/fuzz/* from seedLogs when
// MESHGUARD_WRITE_FUZZ_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("MESHGUARD_WRITE_FUZZ_SEEDS") != "1" {
		t.Skip("set MESHGUARD_WRITE_FUZZ_SEEDS=1 to regenerate the seed corpus")
	}
	write := func(fuzzer string, i int, arg string) {
		dir := filepath.Join("testdata", "fuzz", fuzzer)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		body := "go test fuzz v1\n" + arg + "\n"
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range seedLogs() {
		write("FuzzDecodeLogs", i, "[]byte("+strconv.Quote(string(s))+")")
		if s[0] != '{' {
			write("FuzzFastPathMatchesPdata", i, "[]byte("+strconv.Quote(string(s))+")")
		}
	}
	td := ptrace.NewTraces()
	proxySpan(td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty(), ptrace.SpanKindServer, t0)
	md := istioMetrics(point{"istio_requests_total", "a", procBoot, t0, 100}, point{"istio_tcp_sent_bytes_total", "b", t0.Add(-time.Second), t0, 10})
	for i, e := range encodings {
		write("FuzzDecodeSpansMetrics", 2*i, "[]byte("+strconv.Quote(string(e.tr(td)))+")")
		write("FuzzDecodeSpansMetrics", 2*i+1, "[]byte("+strconv.Quote(string(e.met(md)))+")")
	}
	for i, line := range []string{
		exampleLine,
		strings.Replace(exampleLine, `"curl/7.73.0-DEV"`, `"x" "y" "z"`, 1),
		strings.Replace(exampleLine, "/status/418", `/a"b/\xff`, 1),
		`[2024-03-01T10:00:00.000Z] "- - -" 0 - - - "-" 1024 2048 60000 - "-" "-" "-" "-" "10.44.2.9:5432" outbound|5432||pg.db.svc.cluster.local 10.44.1.5:40000 10.96.0.9:5432 10.44.1.5:39999 - -`,
		`[2024-03-01T10:00:00.000Z] "POST /api/v1/orders HTTP/2" 503 UF,URX upstream_reset_before_response_started{connection_failure} - "delayed connect error: 111" 512 91 12 - "203.0.113.9, 10.0.0.1" "Mozilla/5.0 (X11; Linux x86_64)" "r-1" "orders:8080" "10.44.2.7:8080" outbound|8080|v2|orders.shop.svc.cluster.local 10.44.1.5:50122 10.96.0.42:8080 10.44.1.5:41000 - -`,
	} {
		write("FuzzParseAccessLogText", i, "string("+strconv.Quote(line)+")")
	}
}

// FuzzDecodeSpansMetrics: spans and metrics go through pdata alone. The
// same bytes are tried as both, metrics twice so the delta state is used.
func FuzzDecodeSpansMetrics(f *testing.F) {
	td := ptrace.NewTraces()
	proxySpan(td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty(), ptrace.SpanKindClient, t0)
	md := istioMetrics(point{"istio_requests_total", "a", procBoot, t0, 100}, point{"istio_tcp_sent_bytes_total", "b", t0.Add(-time.Second), t0, 10})
	for _, e := range encodings {
		f.Add(e.tr(td))
		f.Add(e.met(md))
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		d := NewDecoder(DecoderConfig{MaxSeries: 4})
		for _, sig := range []Signal{SignalSpans, SignalMetrics, SignalMetrics} {
			flows, err := d.Decode(sig, value, testID, nil)
			if err != nil {
				if de := asDecodeError(t, err); de.Rejected == 0 && len(flows) != 0 {
					t.Fatalf("whole-message error with %d flows", len(flows))
				}
			}
			for i := range flows {
				checkFlowStrings(t, &flows[i])
			}
		}
	})
}
