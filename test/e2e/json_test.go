package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/meshguard/meshguard/ingest"
	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/scenario"
	"github.com/meshguard/meshguard/test/testenv"
)

// A topic mixing otlp_proto and otlp_json messages, as collectors of both
// kinds write to one topic, is stored through serve exactly as if every
// message had been protobuf: each JSON message goes through the JSON fast
// path (ingest/decode_fastjson.go), and what it stores is compared field
// by field with the protobuf decoding of the same records.
func TestServeStoresOtlpJSONAsItsProtobufTwin(t *testing.T) {
	brokers := testenv.Kafka(t)
	topic := testenv.NewTopic(t, brokers, 2)
	conn, db := testenv.ClickHouse(t)

	start := testenv.Last(time.Tuesday, 14)
	gen, err := scenario.NewWith(scenario.RealisticMesh(), start, 3, scenario.Options{Scale: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	values, err := scenario.Marshal(gen.Next(time.Minute), 40)
	if err != nil {
		t.Fatal(err)
	}
	// Every other message as the collector's otlp_json; the expected rows
	// come from the protobuf twin of each message.
	dec := ingest.NewDecoder(ingest.DecoderConfig{Encoding: ingest.EncodingProto})
	var want []string
	msgs := make([]kafka.Message, len(values))
	jsonMessages := 0
	for i, v := range values {
		flows, err := dec.Decode(ingest.SignalLogs, v, models.FlowIDBase{}, nil)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		for j := range flows {
			want = append(want, storedFields(&flows[j]))
		}
		msgs[i].Value = v
		if i%2 == 1 {
			ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(v)
			if err != nil {
				t.Fatal(err)
			}
			if msgs[i].Value, err = (&plog.JSONMarshaler{}).MarshalLogs(ld); err != nil {
				t.Fatal(err)
			}
			jsonMessages++
		}
	}
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.RoundRobin{}, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()

	p := startMeshguard(t, append(serveEnv(brokers, topic, fmt.Sprintf("clickhouse://%s/%s", testenv.ClickHouseAddr(t), db)),
		"MESHGUARD_IDENTITY_ENABLED=false"), "serve", "--stages", "ingest")
	waitFlows(t, conn, db, uint64(len(want)), 2*time.Minute)
	p.terminate(t, 30*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := conn.Query(ctx, "SELECT reporter, source_principal, source_workload, source_namespace, source_ip, "+
		"destination_principal, destination_workload, destination_namespace, destination_service, destination_port, "+
		"protocol, method, path, path_template, response_code, response_flags, bytes_sent, bytes_received, duration_ms, "+
		"mtls, tls_version, user_agent, request_id, trace_id, ts_ms, count FROM "+db+".flows")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var r storedFlow
		if err := rows.Scan(&r.Reporter, &r.SrcPrincipal, &r.SrcWorkload, &r.SrcNamespace, &r.SrcIP,
			&r.DstPrincipal, &r.DstWorkload, &r.DstNamespace, &r.DstService, &r.DstPort,
			&r.Protocol, &r.Method, &r.Path, &r.PathTemplate, &r.ResponseCode, &r.ResponseFlags, &r.BytesSent, &r.BytesReceived, &r.DurationMs,
			&r.MTLS, &r.TLSVersion, &r.UserAgent, &r.RequestID, &r.TraceID, &r.TsMs, &r.Count); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%+v", r))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("%d rows stored from %d messages (%d otlp_json) differ from the protobuf decoding's %d\nonly stored: %v\nonly decoded: %v",
			len(got), len(msgs), jsonMessages, len(want), firstFew(missing(got, want)), firstFew(missing(want, got)))
	}
	t.Logf("%d messages (%d otlp_json), %d records stored as their protobuf twins", len(msgs), jsonMessages, len(want))
}

// storedFlow is a flows row with every column a flow fills but its id.
type storedFlow struct {
	Reporter, SrcPrincipal, SrcWorkload, SrcNamespace, SrcIP string
	DstPrincipal, DstWorkload, DstNamespace, DstService      string
	DstPort                                                  uint16
	Protocol, Method, Path, PathTemplate                     string
	ResponseCode                                             uint16
	ResponseFlags                                            string
	BytesSent, BytesReceived                                 uint64
	DurationMs                                               uint32
	MTLS                                                     uint8
	TLSVersion, UserAgent, RequestID, TraceID                string
	TsMs                                                     int64
	Count                                                    uint32
}

// storedFields prints f as its flows row would read back.
func storedFields(f *models.Flow) string {
	r := storedFlow{
		Reporter: f.Reporter.String(), SrcPrincipal: f.Source.Principal, SrcWorkload: f.Source.Workload, SrcNamespace: f.Source.Namespace,
		DstPrincipal: f.Destination.Principal, DstWorkload: f.Destination.Workload, DstNamespace: f.Destination.Namespace,
		DstService: f.Destination.Service, DstPort: f.Destination.Port,
		Protocol: f.Protocol, Method: f.Method, Path: f.Path, PathTemplate: f.PathTemplate,
		ResponseCode: f.ResponseCode, ResponseFlags: f.ResponseFlags, BytesSent: f.BytesSent, BytesReceived: f.BytesReceived,
		DurationMs: f.DurationMs, MTLS: uint8(f.TLS), TLSVersion: f.TLSVersion, UserAgent: f.UserAgent, RequestID: f.RequestID,
		TraceID: string(f.TraceID[:]), TsMs: f.TimestampMs, Count: f.Count,
	}
	if f.Source.IP.IsValid() {
		r.SrcIP = f.Source.IP.String()
	}
	return fmt.Sprintf("%+v", r)
}

func firstFew(s []string) []string {
	return s[:min(len(s), 3)]
}
