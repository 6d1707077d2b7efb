// Package bench holds what meshguard's end-to-end ingest benchmarks share:
// producing realistic access-log messages to a fresh topic on a real
// Kafka. ingestbench (a command, meshguard and the OpenTelemetry Collector
// as subprocesses) and BenchmarkIngest (meshguard's pipeline in-process,
// for profiling) both use it. See README.md.
package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/meshguard/meshguard/scenario"
)

// CreateTopic creates topic with partitions and waits until every
// partition has a leader.
func CreateTopic(ctx context.Context, client *kafka.Client, topic string, partitions int) error {
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}},
	})
	if err == nil {
		err = resp.Errors[topic]
	}
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	// A produce right after CreateTopics can fail until every partition
	// has a leader.
	deadline := time.Now().Add(30 * time.Second)
	for {
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil && len(md.Topics[0].Partitions) == partitions {
			ready := true
			for _, p := range md.Topics[0].Partitions {
				ready = ready && p.Leader.ID >= 0 && p.Error == nil
			}
			if ready {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topic %s: partitions without a leader after 30s (%v)", topic, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Messages describes what Produce writes.
type Messages struct {
	Count      int // messages
	PerMessage int // log records in every message
	// Body adds Istio's default text line to each record, as the
	// envoyOtelAls provider sends it when labels are set but no text
	// format.
	Body        bool
	Compression compress.Compression
}

// Produce writes generated access logs to topic as the collector's kafka
// exporter would after its batch processor: otlp_proto, one
// ExportLogsServiceRequest a message. It returns the records
// (Count*PerMessage) and the uncompressed bytes written.
//
// Every message holds exactly PerMessage records so that the record count
// is round: 1M records fill meshguard's default 100k-flow batches
// exactly, and no partial last batch waits out ingest.batch_timeout at
// the end of a run (which would charge up to a second to the last
// records).
func Produce(ctx context.Context, brokers []string, topic string, m Messages) (records int, size int64, err error) {
	w := &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Topic:        topic,
		Balancer:     &kafka.RoundRobin{},
		RequiredAcks: kafka.RequireAll,
		Compression:  m.Compression,
		BatchTimeout: time.Millisecond,
	}
	defer w.Close()

	// Generate in one goroutine and write in this one: the two overlap
	// on two cores.
	type chunk struct {
		msgs    []kafka.Message
		records int
		err     error
	}
	chunks := make(chan chunk, 4)
	genCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		defer close(chunks)
		// A weekday afternoon: the generator's daily peak.
		gen := scenario.New(scenario.DefaultMesh(), time.Date(2026, 11, 18, 14, 0, 0, 0, time.UTC), 42)
		gen.Body = m.Body
		marshal := &plog.ProtoMarshaler{}
		pending := plog.NewLogs() // records not yet in a message
		made := 0
		for made < m.Count {
			gen.Next(10 * time.Second).ResourceLogs().MoveAndAppendTo(pending.ResourceLogs())
			parts := scenario.Split(pending, m.PerMessage)
			pending = plog.NewLogs()
			if last := parts[len(parts)-1]; last.LogRecordCount() < m.PerMessage {
				pending, parts = last, parts[:len(parts)-1]
			}
			var c chunk
			for _, part := range parts {
				if made == m.Count {
					break
				}
				value, err := marshal.MarshalLogs(part)
				if err != nil {
					c.err = err
					break
				}
				c.msgs = append(c.msgs, kafka.Message{Value: value})
				c.records += part.LogRecordCount()
				made++
			}
			select {
			case chunks <- c:
			case <-genCtx.Done():
				return
			}
			if c.err != nil {
				return
			}
		}
	}()
	for c := range chunks {
		if c.err != nil {
			return records, size, fmt.Errorf("marshal: %w", c.err)
		}
		if err := w.WriteMessages(ctx, c.msgs...); err != nil {
			var tooLarge kafka.MessageTooLargeError
			if errors.As(err, &tooLarge) {
				err = fmt.Errorf("%w (lower -per-message)", err)
			}
			return records, size, fmt.Errorf("produce to %s: %w", topic, err)
		}
		records += c.records
		for _, m := range c.msgs {
			size += int64(len(m.Value))
		}
	}
	return records, size, nil
}

// EndOffsets returns each partition's end offset (the next offset to be
// written): a group has consumed everything once it committed these.
func EndOffsets(ctx context.Context, client *kafka.Client, topic string, partitions int) (map[int]int64, error) {
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {}}}
	for p := range partitions {
		req.Topics[topic] = append(req.Topics[topic], kafka.LastOffsetOf(p))
	}
	resp, err := client.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("list offsets of %s: %w", topic, err)
	}
	end := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("list offsets of %s/%d: %w", topic, p.Partition, p.Error)
		}
		end[p.Partition] = p.LastOffset
	}
	if len(end) != partitions {
		return nil, fmt.Errorf("list offsets of %s: %d partitions answered, want %d", topic, len(end), partitions)
	}
	return end, nil
}

// Committed returns group's committed offset of every partition of topic
// (-1 for none yet).
func Committed(ctx context.Context, client *kafka.Client, group, topic string, partitions int) (map[int]int64, error) {
	req := &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {}}}
	for p := range partitions {
		req.Topics[topic] = append(req.Topics[topic], p)
	}
	resp, err := client.OffsetFetch(ctx, req)
	if err == nil {
		err = resp.Error
	}
	if err != nil {
		return nil, err
	}
	out := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			return nil, p.Error
		}
		out[p.Partition] = p.CommittedOffset
	}
	return out, nil
}
