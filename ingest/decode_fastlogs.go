package ingest

import (
	"encoding/binary"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/meshguard/meshguard/models"
)

// The fast path decodes otlp_proto logs straight from the wire into
// rawLog, without building pdata objects: pdata allocates several objects
// per attribute, and access logs carry about thirty attributes a record.
//
// It is a strict subset of pdata. It gives up (and Decode falls back to
// pdata, which stays the reference) on anything it does not handle exactly
// as pdata does: malformed or unusual wire data, groups, a singular field
// that appears twice (pdata merges or overwrites), array, map or bytes
// values, deprecated or string-table fields, entity refs. What it accepts,
// it turns into the same rawLog values pdata's objects give, and fillLog
// does the rest for both, so both paths produce identical flows
// (TestFastPathMatchesPdata, FuzzFastPathMatchesPdata).
//
// Field values are views into the Kafka buffer while decoding (d.borrowed):
// fillLog copies or interns every string it keeps.

// OTLP field numbers (opentelemetry-proto logs/v1, common/v1, resource/v1).
const (
	reqResourceLogs = 1

	rlResource    = 1
	rlScopeLogs   = 2
	rlSchemaURL   = 3
	rlDeprecated  = 1000
	resAttributes = 1
	resDropped    = 2
	resEntityRefs = 3

	slScope      = 1
	slLogRecords = 2
	slSchemaURL  = 3

	scName       = 1
	scVersion    = 2
	scAttributes = 3
	scDropped    = 4

	lrTime           = 1
	lrSeverityNumber = 2
	lrSeverityText   = 3
	lrBody           = 5
	lrAttributes     = 6
	lrDropped        = 7
	lrFlags          = 8
	lrTraceID        = 9
	lrSpanID         = 10
	lrObservedTime   = 11
	lrEventName      = 12

	kvKey   = 1
	kvValue = 2

	avString = 1
	avBool   = 2
	avInt    = 3
	avDouble = 4
)

// decodeLogsFast returns ok false, with dst and the counters as they were,
// when the message needs pdata.
func (d *Decoder) decodeLogsFast(value []byte, id models.FlowIDBase, dst []models.Flow) ([]models.Flow, error, bool) {
	return d.attempt(dst, func(dst []models.Flow, b *tally) ([]models.Flow, bool) {
		return d.fastRequest(value, id, dst, b)
	})
}

// attempt runs a fast path, which appends to dst with field values that
// are views of the message. When it gives up, dst and the counters are
// left as they were, for pdata.
func (d *Decoder) attempt(dst []models.Flow, run func(dst []models.Flow, b *tally) ([]models.Flow, bool)) ([]models.Flow, error, bool) {
	start := len(dst)
	saved := d.stats
	d.borrowed = true
	var b tally
	out, ok := run(dst, &b)
	d.borrowed = false
	if !ok {
		clear(out[start:]) // no strings of an abandoned attempt stay reachable
		d.stats = saved
		return out[:start], nil, false
	}
	return out, b.err(), true
}

func (d *Decoder) fastRequest(buf []byte, id models.FlowIDBase, dst []models.Flow, b *tally) ([]models.Flow, bool) {
	for len(buf) > 0 {
		num, typ, n := consumeTag(buf)
		if n < 0 {
			return dst, false
		}
		buf = buf[n:]
		if num != reqResourceLogs {
			if n = skipField(num, typ, buf); n < 0 {
				return dst, false
			}
			buf = buf[n:]
			continue
		}
		if typ != protowire.BytesType {
			return dst, false
		}
		v, n := consumeBytes(buf)
		if n < 0 {
			return dst, false
		}
		buf = buf[n:]
		var ok bool
		if dst, ok = d.fastResourceLogs(v, id, dst, b); !ok {
			return dst, false
		}
	}
	return dst, true
}

// fastResourceLogs reads the resource first, wherever it is in the
// message, then the records.
func (d *Decoder) fastResourceLogs(buf []byte, id models.FlowIDBase, dst []models.Flow, b *tally) ([]models.Flow, bool) {
	var resource []byte
	seen := false
	for rest := buf; len(rest) > 0; {
		num, typ, n := consumeTag(rest)
		if n < 0 {
			return dst, false
		}
		rest = rest[n:]
		switch num {
		case rlResource, rlScopeLogs, rlSchemaURL:
			if typ != protowire.BytesType {
				return dst, false
			}
			v, n := consumeBytes(rest)
			if n < 0 {
				return dst, false
			}
			if num == rlResource {
				if seen { // pdata would merge the two
					return dst, false
				}
				resource, seen = v, true
			}
			rest = rest[n:]
		case rlDeprecated:
			return dst, false
		default:
			if n = skipField(num, typ, rest); n < 0 {
				return dst, false
			}
			rest = rest[n:]
		}
	}
	res, ok := d.fastResource(resource)
	if !ok {
		return dst, false
	}
	// The first pass validated the framing: only the scope logs are left
	// to read.
	for len(buf) > 0 {
		num, typ, n := consumeTag(buf)
		buf = buf[n:]
		if typ != protowire.BytesType {
			buf = buf[skipField(num, typ, buf):]
			continue
		}
		v, n := consumeBytes(buf)
		buf = buf[n:]
		if num == rlScopeLogs {
			if dst, ok = d.fastScopeLogs(v, id, dst, b, &res); !ok {
				return dst, false
			}
		}
	}
	return dst, true
}

func (d *Decoder) fastResource(buf []byte) (resourceInfo, bool) {
	var rr rawResource
	for len(buf) > 0 {
		num, typ, n := consumeTag(buf)
		if n < 0 {
			return resourceInfo{}, false
		}
		buf = buf[n:]
		switch num {
		case resAttributes:
			if typ != protowire.BytesType {
				return resourceInfo{}, false
			}
			v, n := consumeBytes(buf)
			if n < 0 {
				return resourceInfo{}, false
			}
			buf = buf[n:]
			key, val, ok := fastKeyValue(v)
			if !ok {
				return resourceInfo{}, false
			}
			rr.set(key, val)
		case resDropped:
			if typ != protowire.VarintType {
				return resourceInfo{}, false
			}
			fallthrough
		default:
			if num == resEntityRefs {
				return resourceInfo{}, false
			}
			if n = skipField(num, typ, buf); n < 0 {
				return resourceInfo{}, false
			}
			buf = buf[n:]
		}
	}
	return rr.resolve(d), true
}

func (d *Decoder) fastScopeLogs(buf []byte, id models.FlowIDBase, dst []models.Flow, b *tally, res *resourceInfo) ([]models.Flow, bool) {
	seenScope := false
	for len(buf) > 0 {
		num, typ, n := consumeTag(buf)
		if n < 0 {
			return dst, false
		}
		buf = buf[n:]
		switch num {
		case slScope, slLogRecords, slSchemaURL:
			if typ != protowire.BytesType {
				return dst, false
			}
			v, n := consumeBytes(buf)
			if n < 0 {
				return dst, false
			}
			buf = buf[n:]
			switch num {
			case slScope:
				if seenScope || !validScope(v) {
					return dst, false
				}
				seenScope = true
			case slLogRecords:
				if !d.fastLogRecord(v) {
					return dst, false
				}
				dst = d.appendLog(dst, b, id, res)
			}
		default:
			if n = skipField(num, typ, buf); n < 0 {
				return dst, false
			}
			buf = buf[n:]
		}
	}
	return dst, true
}

// validScope checks an InstrumentationScope the way pdata would read it;
// nothing in it is used.
func validScope(buf []byte) bool {
	for len(buf) > 0 {
		num, typ, n := consumeTag(buf)
		if n < 0 {
			return false
		}
		buf = buf[n:]
		switch num {
		case scName, scVersion, scAttributes:
			if typ != protowire.BytesType {
				return false
			}
			v, n := consumeBytes(buf)
			if n < 0 {
				return false
			}
			buf = buf[n:]
			if num == scAttributes {
				if _, _, ok := fastKeyValue(v); !ok {
					return false
				}
			}
			continue
		case scDropped:
			if typ != protowire.VarintType {
				return false
			}
		}
		if n = skipField(num, typ, buf); n < 0 {
			return false
		}
		buf = buf[n:]
	}
	return true
}

// fastLogRecord fills d.log from one LogRecord.
func (d *Decoder) fastLogRecord(buf []byte) bool {
	r := &d.log
	*r = rawLog{}
	var seen uint32 // singular fields already read
	pos := 0        // attributes read
	for len(buf) > 0 {
		num, typ, n := consumeTag(buf)
		if n < 0 {
			return false
		}
		buf = buf[n:]
		if num == lrAttributes {
			// The hot loop: about thirty of these per record.
			if typ != protowire.BytesType {
				return false
			}
			v, n := consumeBytes(buf)
			if n < 0 {
				return false
			}
			buf = buf[n:]
			if key, str, ok := stringKeyValue(v); ok {
				d.setAt(pos, view(key), rawValue{s: view(str), kind: kindStr})
			} else {
				key, val, ok := fastKeyValue(v)
				if !ok {
					return false
				}
				d.setAt(pos, key, val)
			}
			pos++
			continue
		}
		if num <= lrEventName {
			if seen&(1<<num) != 0 {
				return false
			}
			seen |= 1 << num
		}
		switch num {
		case lrTime, lrObservedTime:
			if typ != protowire.Fixed64Type || len(buf) < 8 {
				return false
			}
			t := binary.LittleEndian.Uint64(buf)
			buf = buf[8:]
			if num == lrTime {
				r.timeNs = t
			} else {
				r.observedNs = t
			}
			continue
		case lrBody, lrTraceID, lrSpanID, lrSeverityText, lrEventName:
			if typ != protowire.BytesType {
				return false
			}
			v, n := consumeBytes(buf)
			if n < 0 {
				return false
			}
			buf = buf[n:]
			switch num {
			case lrBody:
				val, ok := fastAnyValue(v)
				if !ok {
					return false
				}
				if val.kind == kindStr {
					r.hasBody, r.body = true, val.s
				}
			case lrTraceID:
				if len(v) != 0 && len(v) != 16 {
					return false
				}
				copy(r.traceID[:], v)
			case lrSpanID:
				if len(v) != 0 && len(v) != 8 {
					return false
				}
			}
			continue
		case lrSeverityNumber, lrDropped:
			if typ != protowire.VarintType {
				return false
			}
		case lrFlags:
			if typ != protowire.Fixed32Type {
				return false
			}
		}
		if n = skipField(num, typ, buf); n < 0 {
			return false
		}
		buf = buf[n:]
	}
	return true
}

// stringKeyValue matches the two encodings exporters use for a string
// attribute without a loop: {1: key, 2: {1: string}} as the protobuf
// spec writes it, and value first, as pdata (so the collector) writes
// it. Anything else goes to fastKeyValue.
func stringKeyValue(b []byte) (key, str []byte, ok bool) {
	if len(b) < 4 {
		return nil, nil, false
	}
	l1, i := shortLen(b, 1)
	if i < 0 || i+l1+2 > len(b) {
		return nil, nil, false
	}
	l2, j := shortLen(b, i+l1+1)
	if j < 0 || j+l2 != len(b) {
		return nil, nil, false
	}
	switch {
	case b[0] == kvKey<<3|2 && b[i+l1] == kvValue<<3|2:
		str, ok = stringValue(b[j:])
		return b[i : i+l1], str, ok
	case b[0] == kvValue<<3|2 && b[i+l1] == kvKey<<3|2:
		str, ok = stringValue(b[i : i+l1])
		return b[j:], str, ok
	}
	return nil, nil, false
}

// stringValue matches an AnyValue holding only a string.
func stringValue(b []byte) ([]byte, bool) {
	if len(b) < 2 || b[0] != avString<<3|2 {
		return nil, false
	}
	l, i := shortLen(b, 1)
	if i < 0 || i+l != len(b) {
		return nil, false
	}
	return b[i:], true
}

// shortLen reads a length of one or two varint bytes at b[i]; longer ones
// (16 KiB and up) are left to the general path.
func shortLen(b []byte, i int) (int, int) {
	if i < len(b) && b[i] < 0x80 {
		return int(b[i]), i + 1
	}
	if i+1 < len(b) && b[i+1] < 0x80 {
		return int(b[i]&0x7f) | int(b[i+1])<<7, i + 2
	}
	return 0, -1
}

// fastKeyValue reads a KeyValue whose value is a scalar (or empty).
func fastKeyValue(buf []byte) (key string, val rawValue, ok bool) {
	seenKey, seenValue := false, false
	for len(buf) > 0 {
		num, typ, n := consumeTag(buf)
		if n < 0 {
			return "", rawValue{}, false
		}
		buf = buf[n:]
		switch num {
		case kvKey, kvValue:
			if typ != protowire.BytesType {
				return "", rawValue{}, false
			}
			v, n := consumeBytes(buf)
			if n < 0 {
				return "", rawValue{}, false
			}
			buf = buf[n:]
			if num == kvKey {
				if seenKey {
					return "", rawValue{}, false
				}
				key, seenKey = view(v), true
			} else {
				if seenValue {
					return "", rawValue{}, false
				}
				if val, ok = fastAnyValue(v); !ok {
					return "", rawValue{}, false
				}
				seenValue = true
			}
		case 3: // key_strindex (profiles' string table)
			return "", rawValue{}, false
		default:
			if n = skipField(num, typ, buf); n < 0 {
				return "", rawValue{}, false
			}
			buf = buf[n:]
		}
	}
	return key, val, true
}

// fastAnyValue reads a scalar AnyValue; arrays, maps, bytes and string-table
// references need pdata.
func fastAnyValue(buf []byte) (rawValue, bool) {
	var val rawValue
	for len(buf) > 0 {
		num, typ, n := consumeTag(buf)
		if n < 0 {
			return rawValue{}, false
		}
		buf = buf[n:]
		if num >= avString && num <= 8 && val.kind != kindNone {
			return rawValue{}, false // a second value: pdata keeps the last
		}
		switch num {
		case avString:
			if typ != protowire.BytesType {
				return rawValue{}, false
			}
			v, n := consumeBytes(buf)
			if n < 0 {
				return rawValue{}, false
			}
			buf = buf[n:]
			val = rawValue{s: view(v), kind: kindStr}
		case avBool, avInt:
			if typ != protowire.VarintType {
				return rawValue{}, false
			}
			x, n := protowire.ConsumeVarint(buf)
			if n < 0 {
				return rawValue{}, false
			}
			buf = buf[n:]
			if num == avBool {
				val = rawValue{kind: kindBool}
				if x != 0 {
					val.n = 1
				}
			} else {
				val = rawValue{n: x, kind: kindInt}
			}
		case avDouble:
			if typ != protowire.Fixed64Type || len(buf) < 8 {
				return rawValue{}, false
			}
			val = rawValue{n: binary.LittleEndian.Uint64(buf), kind: kindDouble}
			buf = buf[8:]
		case 5, 6, 7, 8: // array, kvlist, bytes, string_value_strindex
			return rawValue{}, false
		default:
			if n = skipField(num, typ, buf); n < 0 {
				return rawValue{}, false
			}
			buf = buf[n:]
		}
	}
	return val, true
}

// consumeTag is protowire.ConsumeTag with the one-byte case inline.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	if len(b) > 0 && b[0] < 0x80 {
		if b[0] < 8 { // field number 0
			return 0, 0, -1
		}
		return protowire.Number(b[0] >> 3), protowire.Type(b[0] & 7), 1
	}
	return protowire.ConsumeTag(b)
}

// consumeBytes is protowire.ConsumeBytes with the one-byte length inline.
func consumeBytes(b []byte) ([]byte, int) {
	if len(b) > 0 && b[0] < 0x80 {
		l := int(b[0]) + 1
		if l > len(b) {
			return nil, -1
		}
		return b[1:l], l
	}
	return protowire.ConsumeBytes(b)
}

// skipField skips an unknown field's value. Groups are refused: pdata
// matches their ends differently.
func skipField(num protowire.Number, typ protowire.Type, b []byte) int {
	if typ == protowire.StartGroupType || typ == protowire.EndGroupType {
		return -1
	}
	return protowire.ConsumeFieldValue(num, typ, b)
}

// view returns b as a string without copying; it is valid only while the
// Kafka buffer is, so fillLog copies what it keeps.
func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
