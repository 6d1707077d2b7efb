package ingest_test

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/meshguard/meshguard/ingest"
	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/scenario"
)

// BenchmarkDecodeLogsLabelsAndBody decodes what the proxies configured by
// deploy/istio send: every label AND Istio's default text line as the
// body, 500 records a message as deploy/collector batches them.
func BenchmarkDecodeLogsLabelsAndBody(b *testing.B) {
	gen := scenario.New(scenario.DefaultMesh(), time.Date(2026, 11, 18, 14, 0, 0, 0, time.UTC), 1)
	gen.Body = true
	ld := scenario.Split(gen.Next(time.Second), 500)[0]
	value, err := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	if err != nil {
		b.Fatal(err)
	}
	d := ingest.NewDecoder(ingest.DecoderConfig{})
	id := models.NewFlowIDBase("otlp_logs", 0, 0)
	flows, err := d.Decode(ingest.SignalLogs, value, id, nil)
	if err != nil || len(flows) != 500 {
		b.Fatalf("%d flows, %v", len(flows), err)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		clear(flows)
		flows, _ = d.Decode(ingest.SignalLogs, value, id, flows[:0])
		n += len(flows)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "flows/s")
}
