package ingest

import (
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/meshguard/meshguard/models"
)

// Signal is what a topic carries.
type Signal uint8

const (
	SignalLogs Signal = iota + 1
	SignalSpans
	SignalMetrics
)

// String returns "logs", "spans" or "metrics" ("unknown" otherwise).
func (s Signal) String() string {
	switch s {
	case SignalLogs:
		return "logs"
	case SignalSpans:
		return "spans"
	case SignalMetrics:
		return "metrics"
	}
	return "unknown"
}

// Encoding of a Kafka record's value, as the collector's kafkaexporter
// writes it.
type Encoding uint8

const (
	// EncodingAuto detects per message: JSON when the first non-space byte
	// is '{', OTLP protobuf otherwise.
	EncodingAuto Encoding = iota
	EncodingProto
	EncodingJSON
)

// String returns the configuration name of e.
func (e Encoding) String() string {
	switch e {
	case EncodingProto:
		return "otlp_proto"
	case EncodingJSON:
		return "otlp_json"
	}
	return "auto"
}

// ParseEncoding accepts "", "auto", "otlp_proto" and "otlp_json".
func ParseEncoding(s string) (Encoding, error) {
	switch s {
	case "", "auto":
		return EncodingAuto, nil
	case "otlp_proto":
		return EncodingProto, nil
	case "otlp_json":
		return EncodingJSON, nil
	}
	return 0, fmt.Errorf("ingest: unknown encoding %q (want auto, otlp_proto or otlp_json)", s)
}

// Default limits; see DecoderConfig.
const (
	DefaultMaxPathBytes      = 2048
	DefaultMaxUserAgentBytes = 512
	DefaultMaxFieldBytes     = 512
	DefaultMaxSeries         = 100_000
	DefaultCounterStartGrace = time.Minute
)

// DecoderConfig sets a Decoder's encoding and limits. Zero values take the
// documented defaults.
type DecoderConfig struct {
	Encoding Encoding

	// MaxPathBytes caps Flow.Path (default 2048). Longer paths are cut at a
	// rune boundary and counted in DecoderStats.Truncated.
	MaxPathBytes int
	// MaxUserAgentBytes caps Flow.UserAgent (default 512).
	MaxUserAgentBytes int
	// MaxFieldBytes caps every other string (default 512). Free text
	// (method, protocol, response flags, request id, TLS version) is cut;
	// identities (principals, workloads, namespaces, services) that do
	// not fit are dropped instead, because a cut name is a different,
	// possibly real, identity. Kubernetes names are at most 253 bytes.
	MaxFieldBytes int

	// MaxSeries caps the metric series whose last cumulative value is
	// remembered to compute deltas (default 100,000). When full, the
	// least recently updated tenth is evicted (DecoderStats.SeriesEvicted);
	// an evicted series restarts like a new one.
	MaxSeries int
	// CounterStartGrace: the first point seen of a cumulative series counts
	// whole (its value is the delta) when its StartTimestamp is earlier than
	// its Timestamp by at most this (default 1m, about a scrape interval):
	// the counter was born within the interval. Otherwise the first point
	// only sets the baseline.
	CounterStartGrace time.Duration
	// MaxFuture rejects records dated more than this ahead of the wall
	// clock at the start of each Decode (DecoderStats.RejectedFuture):
	// one record dated 2098 must not move a watermark. 0 bounds event
	// times by the year 2100 only. The consumer sets detect.max_future.
	MaxFuture time.Duration
}

func (c DecoderConfig) withDefaults() DecoderConfig {
	if c.MaxPathBytes <= 0 {
		c.MaxPathBytes = DefaultMaxPathBytes
	}
	if c.MaxUserAgentBytes <= 0 {
		c.MaxUserAgentBytes = DefaultMaxUserAgentBytes
	}
	if c.MaxFieldBytes <= 0 {
		c.MaxFieldBytes = DefaultMaxFieldBytes
	}
	if c.MaxSeries <= 0 {
		c.MaxSeries = DefaultMaxSeries
	}
	if c.CounterStartGrace <= 0 {
		c.CounterStartGrace = DefaultCounterStartGrace
	}
	return c
}

// DecoderStats are a Decoder's counters since it was created.
type DecoderStats struct {
	Messages       uint64 // Decode calls
	MessagesFailed uint64 // whole messages that could not be decoded
	FastPath       uint64 // log messages decoded without pdata (otlp_proto and otlp_json)

	LogRecords uint64 // log records seen
	Spans      uint64 // spans seen
	DataPoints uint64 // metric data points seen
	Flows      uint64 // flows returned

	// Records that are not mesh telemetry and were ignored, not rejected:
	// application spans, other metrics, histogram points.
	Skipped uint64

	// Records rejected, by reason.
	RejectedBadNumber   uint64 // a numeric field that is not a number in range
	RejectedBadTime     uint64 // an event time that does not parse, is missing or lies outside 2000..2100
	RejectedNoTelemetry uint64 // no known attribute and no parseable text body
	RejectedFuture      uint64 // an event time more than MaxFuture ahead of the wall clock

	// TextParseErrors counts text bodies that did not parse on records that
	// were kept thanks to their attributes.
	TextParseErrors uint64

	Truncated         uint64 // free-text fields cut to their cap
	InvalidUTF8       uint64 // fields whose invalid UTF-8 was replaced
	DroppedIdentities uint64 // identities too long, not UTF-8 or not a valid principal

	SeriesTracked      uint64 // metric series remembered now
	SeriesEvicted      uint64 // series forgotten because MaxSeries was reached
	FirstPointsSkipped uint64 // first points of a series: baseline only, no delta
	StalePoints        uint64 // points not newer than the last seen (redelivery)
	CounterResets      uint64 // cumulative counters that restarted
}

// Decoder turns Kafka record values into flows. It is not safe for
// concurrent use: give each consumer goroutine its own (Stats alone may be
// called from any goroutine). It keeps metric
// delta state, so every point of one metric series must reach the same
// Decoder (partition the metrics topic by resource).
type Decoder struct {
	cfg   DecoderConfig
	stats DecoderStats // updated freely while decoding
	// horizonMs is the newest event time accepted when cfg.MaxFuture is
	// set, taken from the wall clock by each Decode.
	horizonMs int64

	mu       sync.Mutex
	snapshot DecoderStats // stats as of the end of the last Decode

	// borrowed is set while field values are views into the caller's
	// Kafka buffer (the fast path): every string kept must be copied.
	borrowed bool
	// pdataOnly turns the fast path off: tests compare the two paths.
	pdataOnly bool

	log        rawLog
	res        resourceInfo
	intern     internTable       // identities, methods, flags: few distinct values
	principals map[string]string // raw principal -> Istio form, "" when invalid
	keys       [48]keySlot       // attribute key at each position of the last record
	templates  internTable       // path templates
	agents     internTable       // user agents: few per mesh, unless someone varies them
	tplBuf     []byte
	jsonArena  []byte // the JSON fast path's unescaped strings

	series   map[seriesKey]seriesState
	seriesSq uint64
	seqBuf   []uint64

	logsProto    plog.ProtoUnmarshaler
	logsJSON     plog.JSONUnmarshaler
	tracesProto  ptrace.ProtoUnmarshaler
	tracesJSON   ptrace.JSONUnmarshaler
	metricsProto pmetric.ProtoUnmarshaler
	metricsJSON  pmetric.JSONUnmarshaler
}

// NewDecoder returns a Decoder for cfg.
func NewDecoder(cfg DecoderConfig) *Decoder {
	cfg = cfg.withDefaults()
	return &Decoder{
		cfg:        cfg,
		intern:     newInternTable(4096),
		principals: make(map[string]string),
		templates:  newInternTable(4096),
		agents:     newInternTable(1024),
		series:     make(map[seriesKey]seriesState),
	}
}

// Stats returns the decoder's counters as of the end of the last Decode.
// It is safe to call while another goroutine decodes.
func (d *Decoder) Stats() DecoderStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.snapshot
}

// DecodeError says a message, or some of its records, could not be
// decoded. The consumer sends the message to the dead-letter topic with
// Reason; when Partial, it also stores the flows that did decode (flow ids
// come from coordinates, so replaying the message later is idempotent).
type DecodeError struct {
	// Reason is short and stable: "unmarshal_proto", "unmarshal_json",
	// "unknown_signal" for whole messages, "bad_record" for rejected records.
	Reason string
	// Detail is for people: valid UTF-8, at most maxDetail bytes.
	Detail string
	// Rejected records, of Total in the message; 0 when the whole message
	// failed.
	Rejected int
	Total    int
}

func (e *DecodeError) Error() string {
	if e.Rejected > 0 {
		return fmt.Sprintf("ingest: %s: %d of %d records rejected: %s", e.Reason, e.Rejected, e.Total, e.Detail)
	}
	return fmt.Sprintf("ingest: %s: %s", e.Reason, e.Detail)
}

// Partial reports whether some records decoded (returned in dst) and
// others were rejected.
func (e *DecodeError) Partial() bool { return e.Rejected > 0 && e.Rejected < e.Total }

const (
	reasonUnmarshalProto = "unmarshal_proto"
	reasonUnmarshalJSON  = "unmarshal_json"
	reasonUnknownSignal  = "unknown_signal"
	reasonBadRecord      = "bad_record"

	maxDetail = 512
)

func wholeError(reason string, err error) *DecodeError {
	return &DecodeError{Reason: reason, Detail: sanitizeDetail(err.Error())}
}

// tally tracks the records of one message: how many, how many rejected,
// and why the first was.
type tally struct {
	total, rejected int
	detail          string
}

func (b *tally) reject(i int, detail string) {
	if b.rejected == 0 {
		b.detail = sanitizeDetail(fmt.Sprintf("record %d: %s", i, detail))
	}
	b.rejected++
}

func (b *tally) err() error {
	if b.rejected == 0 {
		return nil
	}
	return &DecodeError{Reason: reasonBadRecord, Detail: b.detail, Rejected: b.rejected, Total: b.total}
}

// Decode appends to dst the flows in value, one Kafka record of signal sig,
// and returns the extended slice. Record i of the message (its position
// among all log records, spans or data points, in order) gets id.ID(i).
//
// A message that does not unmarshal returns dst unchanged and a
// *DecodeError with Rejected 0. Records that are not valid telemetry are
// left out and counted; the others are still returned, with a partial
// *DecodeError. Decode never keeps value or points into it.
func (d *Decoder) Decode(sig Signal, value []byte, id models.FlowIDBase, dst []models.Flow) ([]models.Flow, error) {
	d.stats.Messages++
	if d.cfg.MaxFuture > 0 {
		d.horizonMs = time.Now().Add(d.cfg.MaxFuture).UnixMilli()
	}
	out, err := d.decode(sig, value, id, dst)
	if err != nil {
		if e, ok := err.(*DecodeError); ok && e.Rejected == 0 {
			d.stats.MessagesFailed++
		}
	}
	d.stats.Flows += uint64(len(out) - len(dst))
	d.stats.SeriesTracked = uint64(len(d.series))
	d.mu.Lock()
	d.snapshot = d.stats
	d.mu.Unlock()
	return out, err
}

func (d *Decoder) decode(sig Signal, value []byte, id models.FlowIDBase, dst []models.Flow) ([]models.Flow, error) {
	enc := d.cfg.Encoding
	if enc == EncodingAuto {
		enc = detectEncoding(value)
		// A protobuf message starts with 0x0a, which is also '\n': when
		// that newline is followed by '{', try protobuf first.
		if enc == EncodingJSON && value[0] == '\n' {
			out, err := d.decodeAs(sig, EncodingProto, value, id, dst)
			if e, ok := err.(*DecodeError); !ok || e.Rejected > 0 {
				return out, err
			}
		}
	}
	return d.decodeAs(sig, enc, value, id, dst)
}

func detectEncoding(b []byte) Encoding {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return EncodingJSON
		}
		break
	}
	return EncodingProto
}

func (d *Decoder) decodeAs(sig Signal, enc Encoding, value []byte, id models.FlowIDBase, dst []models.Flow) ([]models.Flow, error) {
	reason := reasonUnmarshalProto
	if enc == EncodingJSON {
		reason = reasonUnmarshalJSON
	}
	switch sig {
	case SignalLogs:
		if !d.pdataOnly {
			fast := d.decodeLogsFast
			if enc == EncodingJSON {
				fast = d.decodeLogsFastJSON
			}
			if out, err, ok := fast(value, id, dst); ok {
				d.stats.FastPath++
				return out, err
			}
		}
		var ld plog.Logs
		var err error
		if enc == EncodingJSON {
			ld, err = d.logsJSON.UnmarshalLogs(value)
		} else {
			ld, err = d.logsProto.UnmarshalLogs(value)
		}
		if err != nil {
			return dst, wholeError(reason, err)
		}
		return d.decodeLogs(ld, id, dst)
	case SignalSpans:
		var td ptrace.Traces
		var err error
		if enc == EncodingJSON {
			td, err = d.tracesJSON.UnmarshalTraces(value)
		} else {
			td, err = d.tracesProto.UnmarshalTraces(value)
		}
		if err != nil {
			return dst, wholeError(reason, err)
		}
		return d.decodeSpans(td, id, dst)
	case SignalMetrics:
		var md pmetric.Metrics
		var err error
		if enc == EncodingJSON {
			md, err = d.metricsJSON.UnmarshalMetrics(value)
		} else {
			md, err = d.metricsProto.UnmarshalMetrics(value)
		}
		if err != nil {
			return dst, wholeError(reason, err)
		}
		return d.decodeMetrics(md, id, dst)
	}
	return dst, &DecodeError{Reason: reasonUnknownSignal, Detail: fmt.Sprintf("signal %d", sig)}
}

// Event times must lie in [2000, 2100). ClickHouse's DateTime wraps times
// outside 1970..2106 into wrong day partitions, and a far-future partition
// never expires; a time outside this century is a broken clock or a forged
// record, not telemetry, so it goes to the DLQ with the reason.
var (
	minEventMs = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	maxEventMs = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
)

// checkTime returns why ms is not a usable event time, or "".
func (d *Decoder) checkTime(ms int64) string {
	if ms < minEventMs || ms >= maxEventMs {
		d.stats.RejectedBadTime++
		if ms == 0 {
			return "the record has no event time"
		}
		return "event time " + time.UnixMilli(ms).UTC().Format(time.RFC3339) + " is outside 2000..2100"
	}
	if d.cfg.MaxFuture > 0 && ms > d.horizonMs {
		d.stats.RejectedFuture++
		return "event time " + time.UnixMilli(ms).UTC().Format(time.RFC3339) + " is more than " + d.cfg.MaxFuture.String() +
			" (detect.max_future) ahead of the wall clock"
	}
	return ""
}
