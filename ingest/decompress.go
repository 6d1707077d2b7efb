package ingest

import (
	"errors"
	"fmt"
	"io"
	"sync"

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
