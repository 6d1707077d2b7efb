package bench

import (
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/meshguard/meshguard/scenario"
)

// ByPod describes what ProduceByPod writes: the small-message shape of a
// collector that keys by pod (deploy/collector: k8sattributes, then the
// kafka exporter's partition_logs_by_resource_attributes), where one
// message holds one proxy's records of one batch, a handful each.
type ByPod struct {
	Records        int // exactly this many records in all
	MinPerMessage  int // records in a message, drawn uniformly from [Min, Max]
	MaxPerMessage  int // (the last message may hold fewer)
	PodsPerService int // replicas of every workload, each its own proxy
	// JSONShare of the messages is otlp_json (the rest otlp_proto), as a
	// collector whose kafka exporter sets encoding: otlp_json writes them.
	JSONShare   float64
	Body        bool // Istio's default text line as each record's body
	Compression compress.Compression
}

// ByPodTopics names where ProduceByPod writes every message: Mixed gets
// all of them (meshguard reads one topic and tells the encodings apart by
// their first byte); Proto and JSON get each message again under its own
// encoding, for consumers that take one encoding per topic (the
// collector's kafka receiver). Empty names are skipped.
type ByPodTopics struct {
	Mixed, Proto, JSON string
}

// Produced is what ProduceByPod wrote (to each topic it names).
type Produced struct {
	Records, Messages, JSONMessages int
	Pods                            int   // proxies that logged them
	Bytes                           int64 // uncompressed values
}

// ProduceByPod writes the scenario generator's mesh at its daily peak as
// messages of one pod each, keyed by a hash of the pod's resource
// attributes (as the collector's kafka exporter keys them), to the topics
// named. The same seed gives the same messages.
func ProduceByPod(ctx context.Context, brokers []string, topics ByPodTopics, m ByPod) (Produced, error) {
	if m.MinPerMessage < 1 || m.MaxPerMessage < m.MinPerMessage || m.Records < 1 {
		return Produced{}, fmt.Errorf("bench: by-pod messages of %d-%d records, %d in all: want 1 <= min <= max and records > 0",
			m.MinPerMessage, m.MaxPerMessage, m.Records)
	}
	w := &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		Compression:  m.Compression,
		BatchTimeout: time.Millisecond,
	}
	defer w.Close()

	msgs := make(chan []kafka.Message, 4)
	var out Produced
	genErr := make(chan error, 1)
	genCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		defer close(msgs)
		genErr <- cutByPod(genCtx, m, topics, &out, msgs)
	}()
	for batch := range msgs {
		if err := w.WriteMessages(ctx, batch...); err != nil {
			stop()
			for range msgs {
			}
			return out, fmt.Errorf("produce: %w", err)
		}
	}
	return out, <-genErr
}

// pod is one proxy's records not yet in a message.
type pod struct {
	name, namespace string
	key             []byte
	logs            plog.Logs
	records         plog.LogRecordSlice
	want            int // records of its next message
}

// cutByPod generates the mesh, groups its records by the proxy that
// logged them and sends them as messages on out, a chunk at a time.
func cutByPod(ctx context.Context, m ByPod, topics ByPodTopics, counts *Produced, out chan<- []kafka.Message) error {
	gen := scenario.New(scenario.DefaultMesh(), time.Date(2026, 11, 18, 14, 0, 0, 0, time.UTC), 42)
	gen.Body = m.Body
	rng := rand.New(rand.NewPCG(42, 15))
	replicas := max(m.PodsPerService, 1)
	pods := map[string]*pod{}
	proto, json := &plog.ProtoMarshaler{}, &plog.JSONMarshaler{}
	var chunk []kafka.Message

	emit := func(p *pod) error {
		var value []byte
		var err error
		enc := topics.Proto
		if rng.Float64() < m.JSONShare {
			value, err = json.MarshalLogs(p.logs)
			enc = topics.JSON
			counts.JSONMessages++
		} else {
			value, err = proto.MarshalLogs(p.logs)
		}
		if err != nil {
			return fmt.Errorf("marshal: %w", err)
		}
		for _, topic := range []string{topics.Mixed, enc} {
			if topic != "" {
				chunk = append(chunk, kafka.Message{Topic: topic, Key: p.key, Value: value})
			}
		}
		counts.Records += p.records.Len()
		counts.Messages++
		counts.Bytes += int64(len(value))
		p.reset(m, rng)
		return nil
	}

	send := func() error {
		if len(chunk) == 0 {
			return nil
		}
		select {
		case out <- chunk:
		case <-ctx.Done():
			return ctx.Err()
		}
		chunk = nil
		return nil
	}
	for taken := 0; taken < m.Records; {
		records := gen.Next(time.Second).ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
		for i := 0; i < records.Len() && taken < m.Records; i++ {
			lr := records.At(i)
			p := podOf(pods, lr, replicas, m, rng)
			lr.CopyTo(p.records.AppendEmpty())
			taken++
			if p.records.Len() >= p.want {
				if err := emit(p); err != nil {
					return err
				}
			}
		}
		if err := send(); err != nil {
			return err
		}
	}
	// The records still with their pods: one last, shorter message each.
	ids := slices.Sorted(maps.Keys(pods))
	for _, id := range ids {
		if p := pods[id]; p.records.Len() > 0 {
			if err := emit(p); err != nil {
				return err
			}
		}
	}
	counts.Pods = len(pods)
	return send()
}

// podOf is the proxy that logged lr: the caller's on a client-side
// record, the callee's on a server-side one; the replica is drawn from
// the trace id, so a request's records stay with one pod of each side.
func podOf(pods map[string]*pod, lr plog.LogRecord, replicas int, m ByPod, rng *rand.Rand) *pod {
	attrs := lr.Attributes()
	side := "destination"
	if v, _ := attrs.Get("reporter"); v.Str() == "source" {
		side = "source"
	}
	wl, _ := attrs.Get(side + "_workload")
	ns, _ := attrs.Get(side + "_namespace")
	name := fmt.Sprintf("%s-%d", wl.Str(), int(lr.TraceID()[0])%replicas)
	id := ns.Str() + "/" + name
	p := pods[id]
	if p == nil {
		sum := sha256.Sum256([]byte("k8s.namespace.name=" + ns.Str() + ",k8s.pod.name=" + name))
		p = &pod{name: name, namespace: ns.Str(), key: sum[:16]}
		p.reset(m, rng)
		pods[id] = p
	}
	return p
}

// reset starts p's next message: an empty request with the resource the
// collector's k8sattributes processor gives a proxy's logs.
func (p *pod) reset(m ByPod, rng *rand.Rand) {
	p.logs = plog.NewLogs()
	rl := p.logs.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("k8s.pod.name", p.name)
	rl.Resource().Attributes().PutStr("k8s.namespace.name", p.namespace)
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("envoy.access_loggers.open_telemetry")
	p.records = sl.LogRecords()
	p.want = m.MinPerMessage + rng.IntN(m.MaxPerMessage-m.MinPerMessage+1)
}
