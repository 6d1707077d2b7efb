package ingest

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// Headers on a dead-lettered message. The value and key are the original
// bytes, untouched, so the message can be replayed once the cause is fixed.
const (
	HeaderReason    = "meshguard.dlq.reason"
	HeaderDetail    = "meshguard.dlq.detail"
	HeaderRejected  = "meshguard.dlq.rejected" // "N/M" records, for partly decoded messages
	HeaderTopic     = "meshguard.original.topic"
	HeaderPartition = "meshguard.original.partition"
	HeaderOffset    = "meshguard.original.offset"
	HeaderTimestamp = "meshguard.original.timestamp" // RFC 3339, ms
)

type deadLetters struct {
	cfg KafkaConfig
	w   *kafka.Writer
	log *slog.Logger
	max time.Duration
}

func newDeadLetters(cfg KafkaConfig, log *slog.Logger) (*deadLetters, error) {
	transport, err := cfg.Transport()
	if err != nil {
		return nil, err
	}
	return &deadLetters{
		cfg: cfg,
		w: &kafka.Writer{
			Addr:         kafka.TCP(cfg.Brokers...),
			Transport:    transport,
			Topic:        cfg.DLQTopic,
			RequiredAcks: kafka.RequireAll,
			// One message at a time, synchronously: the offset behind it
			// is committed only once the DLQ holds it.
			BatchTimeout:           5 * time.Millisecond,
			AllowAutoTopicCreation: true,
		},
		log: log,
		max: 10 * time.Second,
	}, nil
}

// send writes m to the DLQ with the reason, retrying until it succeeds or
// ctx ends (then false: m must not be committed).
func (d *deadLetters) send(ctx context.Context, m kafka.Message, e *DecodeError) bool {
	out := kafka.Message{
		Key:   m.Key,
		Value: m.Value,
		Headers: []kafka.Header{
			{Key: HeaderReason, Value: []byte(e.Reason)},
			{Key: HeaderDetail, Value: []byte(e.Detail)},
			{Key: HeaderTopic, Value: []byte(m.Topic)},
			{Key: HeaderPartition, Value: []byte(strconv.Itoa(m.Partition))},
			{Key: HeaderOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
			{Key: HeaderTimestamp, Value: []byte(m.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"))},
		},
	}
	if e.Rejected > 0 {
		out.Headers = append(out.Headers, kafka.Header{Key: HeaderRejected,
			Value: []byte(strconv.Itoa(e.Rejected) + "/" + strconv.Itoa(e.Total))})
	}
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := d.w.WriteMessages(ctx, out)
		if err == nil {
			d.log.Warn("message sent to the dead-letter topic", "reason", e.Reason, "detail", e.Detail,
				"topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "rejected", e.Rejected, "total", e.Total)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if attempt == 1 || attempt%10 == 0 {
			d.log.Warn("writing to the dead-letter topic failed; retrying", "topic", d.w.Topic, "err", d.cfg.Diagnose(ctx, err), "attempt", attempt)
		}
		select {
		case <-time.After(jitter(wait)):
		case <-ctx.Done():
			return false
		}
		wait = min(wait*2, d.max)
	}
}

func (d *deadLetters) close() {
	if err := d.w.Close(); err != nil {
		d.log.Warn("closing dead-letter writer", "err", err)
	}
}
