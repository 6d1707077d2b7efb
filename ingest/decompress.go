package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
)

// maxDecompressedBatch caps the decompressed size of one record batch.
// The reader takes up to 16 MiB of compressed batches; a batch the
// collector writes (1 MB compressed by default) holds some tens of MiB of
// OTLP at most, while a zstd bomb of a few KiB expands to gigabytes.
const maxDecompressedBatch = 64 << 20

// errBatchTooLarge is returned by a capped codec reader past the cap.
var errBatchTooLarge = fmt.Errorf("decompressed record batch larger than %d MiB", maxDecompressedBatch>>20)

var capCodecsOnce sync.Once

// capCodecs bounds every compression codec kafka-go reads with. kafka-go
// decompresses a whole batch into memory before returning its first
// message and offers no limit, but it looks its codecs up in the exported
// table compress.Codecs: wrapping the entries caps that buffer without a
// fork. The table is process-wide, so every kafka-go reader of this binary
// is capped alike; writers are untouched.
func capCodecs() {
	capCodecsOnce.Do(func() {
		for i, c := range compress.Codecs {
			if c != nil {
				compress.Codecs[i] = cappedCodec{Codec: c, max: maxDecompressedBatch}
			}
		}
	})
}

type cappedCodec struct {
	compress.Codec
	max int64
}

func (c cappedCodec) NewReader(r io.Reader) io.ReadCloser {
	inner := c.Codec.NewReader(r)
	return &cappedReader{inner: inner, left: c.max}
}

type cappedReader struct {
	inner io.ReadCloser
	left  int64
}

func (r *cappedReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		// One byte more tells a batch of exactly the cap from a larger one.
		var one [1]byte
		if n, err := r.inner.Read(one[:]); n > 0 {
			return 0, errBatchTooLarge
		} else if err != nil {
			return 0, err
		}
		return 0, nil
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.inner.Read(p)
	r.left -= int64(n)
	return n, err
}

func (r *cappedReader) Close() error { return r.inner.Close() }

// isBatchTooLarge reports whether one of kafka-go's log arguments is the
// cap's error.
func isBatchTooLarge(args []any) bool {
	for _, a := range args {
		if err, ok := a.(error); ok && errors.Is(err, errBatchTooLarge) {
			return true
		}
	}
	return false
}

// oversizeAt reads the coordinates from kafka-go's report of a failed
// read, "... reading partition %d of %s at offset %d: %s" (the offset the
// partition reader asked for, inside or at the start of the batch).
func oversizeAt(args []any) (kafka.Message, bool) {
	if len(args) != 4 {
		return kafka.Message{}, false
	}
	p, pok := args[0].(int)
	t, tok := args[1].(string)
	o := reflect.ValueOf(args[2])
	if !pok || !tok || !o.CanInt() || o.Int() < 0 || strings.TrimSpace(t) == "" {
		return kafka.Message{}, false
	}
	return kafka.Message{Topic: t, Partition: p, Offset: o.Int()}, true
}

// skipOversize sets aside the record at m's coordinates, whose batch
// decompresses past the cap: a record in the DLQ with the coordinates and
// the reason (no value: the original stays in its topic for its
// retention), then its offset committed, so that the next reader starts
// after it. Everything fetched before it was stored and committed first.
// A batch of several records is skipped one offset per rejoin.
func (c *Consumer) skipOversize(ctx context.Context, m kafka.Message) {
	de := &DecodeError{Reason: "decompressed_too_large",
		Detail: fmt.Sprintf("the record batch holding this offset decompresses past %d bytes; not read", maxDecompressedBatch)}
	commit, kept := c.dlq.send(ctx, m, de)
	if !commit {
		return
	}
	if kept {
		c.stats.deadLettered.Add(1)
	}
	if err := c.reader.CommitMessages(ctx, m); err != nil {
		c.log.Warn("committing past an oversize record batch failed; it is met again", "err", err,
			"topic", m.Topic, "partition", m.Partition, "offset", m.Offset)
		return
	}
	c.log.Error("skipped a record that decompresses past the cap (a compression bomb?); dead-lettered with its coordinates",
		"topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "cap_bytes", maxDecompressedBatch, "dlq_topic", c.kcfg.DLQTopic, "kept", kept)
}
