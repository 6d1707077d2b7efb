package ingest

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/meshguard/meshguard/models"
)

// benchLogs builds one realistic message: recordsPerMessage access logs of
// a small mesh (both reporters, a few workloads, varied paths and ids), in
// attribute form or as text bodies.
const recordsPerMessage = 1000

func benchLogs(text bool) plog.Logs {
	rng := rand.New(rand.NewPCG(1, 2))
	services := []string{"productpage", "reviews", "ratings", "details", "cart", "payments", "shipping", "catalog"}
	paths := []string{"/api/v1/products/%d", "/reviews/%d", "/ratings/%d?v=2", "/details/%d", "/healthz", "/cart/%x", "/reviews.v1.ReviewService/GetReviews"}
	agents := []string{"curl/8.5.0", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36", "grpc-go/1.62.0", "Go-http-client/1.1"}
	start := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	lrs.EnsureCapacity(recordsPerMessage)
	for i := 0; i < recordsPerMessage; i++ {
		src, dst := services[rng.IntN(len(services))], services[rng.IntN(len(services))]
		path := paths[rng.IntN(len(paths))]
		if path[len(path)-1] != 's' && path != "/healthz" {
			path = fmt.Sprintf(path, rng.IntN(100000))
		}
		inbound := i%2 == 0
		cluster := "outbound|9080||" + dst + ".shop.svc.cluster.local"
		reporter := "source"
		if inbound {
			cluster, reporter = "inbound|9080||", "destination"
		}
		ts := start.Add(time.Duration(i) * time.Millisecond)
		fields := map[string]string{
			"start_time":                        ts.Format("2006-01-02T15:04:05.000Z"),
			"method":                            []string{"GET", "POST", "PUT"}[rng.IntN(3)],
			"path":                              path,
			"protocol":                          "HTTP/1.1",
			"response_code":                     []string{"200", "200", "200", "404", "503"}[rng.IntN(5)],
			"response_flags":                    "-",
			"response_code_details":             "via_upstream",
			"connection_termination_details":    "-",
			"upstream_transport_failure_reason": "-",
			"bytes_received":                    fmt.Sprint(rng.IntN(5000)),
			"bytes_sent":                        fmt.Sprint(rng.IntN(50000)),
			"duration":                          fmt.Sprint(rng.IntN(300)),
			"upstream_service_time":             fmt.Sprint(rng.IntN(300)),
			"x_forwarded_for":                   "-",
			"user_agent":                        agents[rng.IntN(len(agents))],
			"request_id":                        fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xffff, rng.Uint32()&0xffff, rng.Uint64()&0xffffffffffff),
			"authority":                         dst + ":9080",
			"upstream_host":                     fmt.Sprintf("10.44.%d.%d:9080", rng.IntN(4), rng.IntN(250)),
			"upstream_cluster":                  cluster,
			"upstream_local_address":            fmt.Sprintf("10.44.1.%d:%d", rng.IntN(250), 30000+rng.IntN(30000)),
			"downstream_local_address":          fmt.Sprintf("10.44.2.%d:9080", rng.IntN(250)),
			"downstream_remote_address":         fmt.Sprintf("10.44.3.%d:%d", rng.IntN(250), 30000+rng.IntN(30000)),
			"requested_server_name":             "outbound_.9080_._." + dst + ".shop.svc.cluster.local",
			"route_name":                        "default",
		}
		lr := lrs.AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(ts))
		lr.SetTraceID(pcommon.TraceID{byte(i), byte(i >> 8), 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
		a := lr.Attributes()
		if text {
			lr.Body().SetStr(formatAccessLog(fields))
		} else {
			for _, k := range textFieldKeys {
				a.PutStr(k, fields[k])
			}
		}
		a.PutStr("source_principal", "spiffe://cluster.local/ns/shop/sa/"+src)
		a.PutStr("destination_principal", "spiffe://cluster.local/ns/shop/sa/"+dst)
		a.PutStr("source_workload", src+"-v1")
		a.PutStr("source_namespace", "shop")
		a.PutStr("destination_workload", dst+"-v1")
		a.PutStr("destination_namespace", "shop")
		a.PutStr("tls_version", "TLSv1.3")
		a.PutStr("reporter", reporter)
	}
	return ld
}

// textFieldKeys are the attribute names of the 24 text fields, in format order.
var textFieldKeys = [numTextFields]string{
	"start_time", "method", "path", "protocol", "response_code", "response_flags",
	"response_code_details", "connection_termination_details", "upstream_transport_failure_reason",
	"bytes_received", "bytes_sent", "duration", "upstream_service_time", "x_forwarded_for",
	"user_agent", "request_id", "authority", "upstream_host", "upstream_cluster",
	"upstream_local_address", "downstream_local_address", "downstream_remote_address",
	"requested_server_name", "route_name",
}

// formatAccessLog prints fields in Istio's default text format.
func formatAccessLog(f map[string]string) string {
	return fmt.Sprintf(`[%s] "%s %s %s" %s %s %s %s "%s" %s %s %s %s "%s" "%s" "%s" "%s" "%s" %s %s %s %s %s %s`+"\n",
		f["start_time"], f["method"], f["path"], f["protocol"], f["response_code"], f["response_flags"],
		f["response_code_details"], f["connection_termination_details"], f["upstream_transport_failure_reason"],
		f["bytes_received"], f["bytes_sent"], f["duration"], f["upstream_service_time"], f["x_forwarded_for"],
		f["user_agent"], f["request_id"], f["authority"], f["upstream_host"], f["upstream_cluster"],
		f["upstream_local_address"], f["downstream_local_address"], f["downstream_remote_address"],
		f["requested_server_name"], f["route_name"])
}

func benchDecode(b *testing.B, enc Encoding, value []byte, pdataOnly bool) {
	d := NewDecoder(DecoderConfig{Encoding: enc})
	d.pdataOnly = pdataOnly
	var flows []models.Flow
	var err error
	flows, err = d.Decode(SignalLogs, value, testID, flows[:0])
	if err != nil || len(flows) != recordsPerMessage {
		b.Fatalf("%d flows, %v", len(flows), err)
	}
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		clear(flows)
		flows, _ = d.Decode(SignalLogs, value, testID, flows[:0])
		n += len(flows)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "flows/s")
}

// One op is one message of recordsPerMessage records; flows/s is the
// figure to read (one goroutine: run with -cpu 1 for per-core numbers).
func BenchmarkDecodeLogsAttributes(b *testing.B) {
	benchDecode(b, EncodingProto, encodings[0].logs(benchLogs(false)), false)
}

// BenchmarkDecodeLogsAttributesPdata is the same message through pdata,
// the reference the fast path is measured against.
func BenchmarkDecodeLogsAttributesPdata(b *testing.B) {
	benchDecode(b, EncodingProto, encodings[0].logs(benchLogs(false)), true)
}

func BenchmarkDecodeLogsText(b *testing.B) {
	benchDecode(b, EncodingProto, encodings[0].logs(benchLogs(true)), false)
}

func BenchmarkDecodeLogsJSON(b *testing.B) {
	benchDecode(b, EncodingJSON, encodings[1].logs(benchLogs(false)), false)
}

// BenchmarkDecodeLogsJSONPdata is BenchmarkDecodeLogsJSON through pdata,
// the reference the JSON fast path is measured against.
func BenchmarkDecodeLogsJSONPdata(b *testing.B) {
	benchDecode(b, EncodingJSON, encodings[1].logs(benchLogs(false)), true)
}

func BenchmarkDecodeLogsJSONText(b *testing.B) {
	benchDecode(b, EncodingJSON, encodings[1].logs(benchLogs(true)), false)
}
