package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/meshguard/meshguard/test/bench"
)

// dataset is what was produced: the same messages every consumer reads.
// meshguard reads mixed, which holds every message; the collector's
// kafka receiver takes one encoding per topic, so it reads the same
// messages from one topic per encoding (byEncoding; for otlp_proto only,
// that is mixed itself).
type dataset struct {
	mixed      topic
	byEncoding []topic
	partitions int // of each topic
	messages   int
	records    int
	bytes      int64
}

type topic struct {
	name     string
	encoding string        // otlp_proto, otlp_json; "" for a mixed topic
	end      map[int]int64 // partition -> end offset
}

func (d dataset) topics() []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range append([]topic{d.mixed}, d.byEncoding...) {
		if t.name != "" && !seen[t.name] {
			seen[t.name] = true
			out = append(out, t.name)
		}
	}
	return out
}

// produceBatches writes the batch shape (every message PerMessage records
// of otlp_proto) to one topic that every consumer reads.
func (b *runner) produceBatches(ctx context.Context, partitions int, m bench.Messages) (string, error) {
	name := strings.ReplaceAll(b.id, "_", "-")
	b.data.mixed, b.data.partitions = topic{name: name}, partitions
	if err := bench.CreateTopic(ctx, b.kafkaClient, name, partitions); err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "producing %d messages to %s\n", m.Count, name)
	records, size, err := bench.Produce(ctx, b.brokers, name, m)
	if err != nil {
		return "", err
	}
	b.data.messages, b.data.records, b.data.bytes = m.Count, records, size
	b.data.byEncoding = []topic{{name: name, encoding: "otlp_proto"}}
	if err := b.endOffsets(ctx, &b.data.mixed, partitions); err != nil {
		return "", err
	}
	b.data.byEncoding[0].end = b.data.mixed.end
	return fmt.Sprintf("%d records in %d messages (batch shape: otlp_proto, %d records a message, %.0f MB uncompressed)",
		records, m.Count, m.PerMessage, float64(size)/1e6), nil
}

// produceByPod writes the small-message shape to a mixed topic and again
// to one topic per encoding.
func (b *runner) produceByPod(ctx context.Context, partitions int, m bench.ByPod) (string, error) {
	base := strings.ReplaceAll(b.id, "_", "-")
	b.data.mixed, b.data.partitions = topic{name: base}, partitions
	b.data.byEncoding = []topic{{name: base + "-proto", encoding: "otlp_proto"}}
	if m.JSONShare > 0 {
		b.data.byEncoding = append(b.data.byEncoding, topic{name: base + "-json", encoding: "otlp_json"})
	}
	for _, name := range b.data.topics() {
		if err := bench.CreateTopic(ctx, b.kafkaClient, name, partitions); err != nil {
			return "", err
		}
	}
	// meshguard's dead-letter topic (serve does not create topics).
	if err := bench.CreateTopic(ctx, b.kafkaClient, base+"-dlq", 1); err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "producing %d records to %v\n", m.Records, b.data.topics())
	topics := bench.ByPodTopics{Mixed: b.data.mixed.name, Proto: b.data.byEncoding[0].name}
	if len(b.data.byEncoding) > 1 {
		topics.JSON = b.data.byEncoding[1].name
	}
	got, err := bench.ProduceByPod(ctx, b.brokers, topics, m)
	if err != nil {
		return "", err
	}
	b.data.messages, b.data.records, b.data.bytes = got.Messages, got.Records, got.Bytes
	var split int64
	for i := range b.data.byEncoding {
		if err := b.endOffsets(ctx, &b.data.byEncoding[i], partitions); err != nil {
			return "", err
		}
		for _, e := range b.data.byEncoding[i].end {
			split += e
		}
	}
	if err := b.endOffsets(ctx, &b.data.mixed, partitions); err != nil {
		return "", err
	}
	if split != int64(got.Messages) {
		return "", fmt.Errorf("the per-encoding topics hold %d messages, %d were produced", split, got.Messages)
	}
	return fmt.Sprintf("%d records in %d messages (small shape: one pod's records a message, %d-%d each, %.1f on average, %d pods; %d otlp_json, the rest otlp_proto; %.0f MB uncompressed)",
		got.Records, got.Messages, m.MinPerMessage, m.MaxPerMessage, float64(got.Records)/float64(got.Messages), got.Pods,
		got.JSONMessages, float64(got.Bytes)/1e6), nil
}

// endOffsets reads t's end offsets and checks they add up to the
// messages produced.
func (b *runner) endOffsets(ctx context.Context, t *topic, partitions int) error {
	end, err := bench.EndOffsets(ctx, b.kafkaClient, t.name, partitions)
	if err != nil {
		return err
	}
	t.end = end
	var total int64
	for _, e := range end {
		total += e
	}
	if t.encoding == "" && total != int64(b.data.messages) {
		return fmt.Errorf("topic %s holds %d messages, %d were produced", t.name, total, b.data.messages)
	}
	return nil
}
