package scenario

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
)

func TestGeneratorIsDeterministicAndRealistic(t *testing.T) {
	start := time.Date(2026, 11, 18, 15, 0, 0, 0, time.UTC) // a Wednesday afternoon
	a := New(DefaultMesh(), start, 7).Next(10 * time.Second)
	b := New(DefaultMesh(), start, 7).Next(10 * time.Second)
	ma, _ := (&plog.ProtoMarshaler{}).MarshalLogs(a)
	mb, _ := (&plog.ProtoMarshaler{}).MarshalLogs(b)
	if string(ma) != string(mb) {
		t.Fatal("same seed and start must give the same telemetry")
	}
	n := a.LogRecordCount()
	// Peak-hour rate of the default mesh: ~1200 requests/s of which both
	// sides are logged.
	if n < 10*2*500 || n > 10*2*2500 {
		t.Fatalf("10s at the afternoon peak gave %d records, want ~24000", n)
	}
	if n%2 != 0 {
		t.Fatalf("every request is logged by both proxies; got an odd %d records", n)
	}
	night := New(DefaultMesh(), start.Add(-12*time.Hour), 7).Next(10 * time.Second).LogRecordCount()
	if night*2 > n {
		t.Fatalf("night load %d not well below the afternoon's %d", night, n)
	}
	rec := a.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(1)
	for _, k := range []string{"reporter", "source_principal", "destination_workload", "requested_server_name", "response_code", "bytes_sent"} {
		if _, ok := rec.Attributes().Get(k); !ok {
			t.Errorf("label %s missing", k)
		}
	}
	if v, _ := rec.Attributes().Get("reporter"); v.Str() != "destination" {
		t.Errorf("second record reporter = %q, want destination", v.Str())
	}
}

func TestTextLineMatchesIstioDefaultFormat(t *testing.T) {
	g := New(DefaultMesh(), time.Date(2026, 11, 18, 15, 0, 0, 0, time.UTC), 1)
	g.Body = true
	ld := g.Next(time.Second)
	body := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(1).Body().Str()
	if body == "" || body[0] != '[' {
		t.Fatalf("body %q is not a default-format line", body)
	}
	// 24 operators: the quoted request line counts as one field.
	if got := len(splitFields(body)); got != 22 {
		t.Fatalf("body %q has %d fields, want 22", body, got)
	}
}

// splitFields splits on spaces outside double quotes and brackets.
func splitFields(s string) []string {
	var out []string
	inQ, inB, start := false, false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			inQ = !inQ
		case '[':
			inB = true
		case ']':
			inB = false
		case ' ':
			if !inQ && !inB {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func TestSplitKeepsEveryRecordInOrder(t *testing.T) {
	ld := New(DefaultMesh(), time.Date(2026, 11, 18, 15, 0, 0, 0, time.UTC), 3).Next(2 * time.Second)
	parts := Split(ld, 500)
	total := 0
	for i, p := range parts {
		n := p.LogRecordCount()
		if n > 500 || (n < 500 && i != len(parts)-1) {
			t.Fatalf("part %d has %d records", i, n)
		}
		total += n
	}
	if total != ld.LogRecordCount() {
		t.Fatalf("split kept %d of %d records", total, ld.LogRecordCount())
	}
	first := parts[1].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	orig := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(500)
	a, _ := first.Attributes().Get("request_id")
	b, _ := orig.Attributes().Get("request_id")
	if a.Str() != b.Str() {
		t.Fatal("records out of order after split")
	}
}
