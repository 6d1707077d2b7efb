package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
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
	// HeaderTruncated marks a capped copy: the brokers refused the whole
	// message as too large, so the DLQ holds its first dlqCapBytes and the
	// original size here; the original coordinates locate the whole one.
	HeaderTruncated = "meshguard.dlq.truncated"
)

// readerMaxBytes is the largest fetch, hence the largest message, the
// consumer takes.
const readerMaxBytes = 16 << 20

// dlqCapBytes bounds the value of a capped copy, far below any broker's
// message.max.bytes (1 MiB by default).
const dlqCapBytes = 64 << 10

type deadLetters struct {
	cfg KafkaConfig
	w   *kafka.Writer
	log *slog.Logger
	max time.Duration

	failures atomic.Int64 // permanent failures met (each attempt counted)
	skipped  atomic.Int64 // messages committed without a DLQ copy (kafka.dlq_required: false)
	capped   atomic.Int64 // capped copies written
	blocked  atomic.Bool  // a send waits on a permanent failure now
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
			// Whatever the reader takes must fit in one batch, headers
			// added: kafka-go's 1 MiB default refused large messages
			// locally, and the retries stalled the partition forever.
			BatchBytes: readerMaxBytes + 1<<20,
		},
		log: log,
		max: 10 * time.Second,
	}, nil
}

// send writes m to the DLQ with the reason, retrying transient failures
// until it succeeds or ctx ends (then false: m must not be committed).
// A message the brokers refuse as too large is replaced by a capped copy.
// A permanent failure (the topic missing or denied, a copy still too
// large) is logged with the topic and the fix and counted; with
// kafka.dlq_required (the default) the send keeps trying, so nothing is
// committed that the DLQ does not hold, else m is skipped (true, with kept
// false).
func (d *deadLetters) send(ctx context.Context, m kafka.Message, e *DecodeError) (commit, kept bool) {
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
	defer d.blocked.Store(false)
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := unwrapWriteErrors(d.w.WriteMessages(ctx, out))
		if errors.Is(err, kafka.MessageSizeTooLarge) && !isCapped(out) {
			out = capped(out)
			d.capped.Add(1)
			d.log.Warn("message too large for the dead-letter topic; writing a capped copy (the original coordinates locate the whole message)",
				"topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "bytes", len(m.Value)+len(m.Key), "dlq_topic", d.w.Topic)
			err = unwrapWriteErrors(d.w.WriteMessages(ctx, out))
		}
		if err == nil {
			d.log.Warn("message sent to the dead-letter topic", "reason", e.Reason, "detail", e.Detail,
				"topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "rejected", e.Rejected, "total", e.Total)
			return true, true
		}
		if ctx.Err() != nil {
			return false, false
		}
		if fix := permanentDLQ(err); fix != "" {
			d.failures.Add(1)
			if !d.cfg.DLQRequired {
				d.skipped.Add(1)
				d.log.Error("kafka.dlq_topic "+strconv.Quote(d.w.Topic)+": "+fix+"; kafka.dlq_required is false, so this undecodable message is committed without a copy",
					"err", err, "reason", e.Reason, "topic", m.Topic, "partition", m.Partition, "offset", m.Offset)
				return true, false
			}
			d.blocked.Store(true)
			wait = d.max
			if attempt == 1 || attempt%6 == 0 {
				d.log.Error("kafka.dlq_topic "+strconv.Quote(d.w.Topic)+": "+fix+"; ingest of this partition waits (kafka.dlq_required: true) and resumes by itself",
					"err", err, "reason", e.Reason, "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "attempt", attempt)
			}
		} else if attempt == 1 || attempt%10 == 0 {
			d.log.Warn("writing to the dead-letter topic failed; retrying", "topic", d.w.Topic, "err", d.cfg.Diagnose(ctx, err), "attempt", attempt)
		}
		select {
		case <-time.After(jitter(wait)):
		case <-ctx.Done():
			return false, false
		}
		wait = min(wait*2, d.max)
	}
}

// permanentDLQ returns what to do about err when retrying cannot help
// until someone acts, "" for a transient error.
func permanentDLQ(err error) string {
	switch {
	case errors.Is(err, kafka.UnknownTopicOrPartition):
		return "the topic does not exist; create it (deploy/kafka/topics.sh creates every topic meshguard needs)"
	case errors.Is(err, kafka.TopicAuthorizationFailed):
		return "writing is denied; grant meshguard's user Write and Describe on the topic (a Kafka ACL)"
	case errors.Is(err, kafka.ClusterAuthorizationFailed):
		return "the broker denied the producer; grant meshguard's user IdempotentWrite on the cluster or Write on the topic"
	case errors.Is(err, kafka.MessageSizeTooLarge), errors.Is(err, kafka.RecordListTooLarge):
		return fmt.Sprintf("even a capped copy (%d bytes of value) is too large; raise max.message.bytes of the topic", dlqCapBytes)
	case errors.Is(err, kafka.InvalidTopic):
		return "the name is not a valid topic; fix kafka.dlq_topic"
	}
	return ""
}

// capped returns a copy of out whose key and value fit any broker's
// limit, marked with the original size.
func capped(out kafka.Message) kafka.Message {
	c := out
	size := len(out.Value)
	if len(c.Key) > 1<<10 {
		c.Key = c.Key[:1<<10]
	}
	if len(c.Value) > dlqCapBytes {
		c.Value = c.Value[:dlqCapBytes]
	}
	c.Headers = append(append([]kafka.Header(nil), out.Headers...),
		kafka.Header{Key: HeaderTruncated, Value: []byte(strconv.Itoa(size))})
	for i, h := range c.Headers {
		if h.Key == HeaderDetail && len(h.Value) > 1<<10 {
			c.Headers[i].Value = h.Value[:1<<10]
		}
	}
	return c
}

func isCapped(m kafka.Message) bool {
	for _, h := range m.Headers {
		if h.Key == HeaderTruncated {
			return true
		}
	}
	return false
}

// unwrapWriteErrors returns the error of a one-message write: kafka-go
// wraps it in WriteErrors, which errors.Is does not look into.
func unwrapWriteErrors(err error) error {
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		for _, e := range we {
			if e != nil {
				return e
			}
		}
	}
	return err
}

func (d *deadLetters) close() {
	if err := d.w.Close(); err != nil {
		d.log.Warn("closing dead-letter writer", "err", err)
	}
}
