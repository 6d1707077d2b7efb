package ingest

import (
	"encoding/hex"
	"slices"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/meshguard/meshguard/models"
)

// The JSON fast path is decodeLogsFast's twin for otlp_json logs. pdata's
// JSON unmarshaler builds an object per attribute through jsoniter and
// was about nine times slower per record than the protobuf fast path, on
// the quarter of a mixed mesh's messages that collectors send as JSON.
//
// It is a strict subset of pdata too: it reads only the field names the
// collector's JSON marshaler writes (camelCase), and gives up, leaving the
// message to pdata, on anything else: snake_case or unknown names, a field
// twice, null, numbers where pdata also takes strings (or the reverse),
// doubles, arrays, maps and bytes values, a resource after its scope logs,
// unpaired surrogates, invalid UTF-8, control characters, trailing data.
// What it accepts becomes the same rawLog values pdata's objects give, and
// appendLog does the rest for both (TestFastJSONMatchesPdata,
// FuzzFastJSONMatchesPdata).

// decodeLogsFastJSON returns ok false, with dst and the counters as they
// were, when the message needs pdata.
func (d *Decoder) decodeLogsFastJSON(value []byte, id models.FlowIDBase, dst []models.Flow) ([]models.Flow, error, bool) {
	p := jsonParser{b: value, arena: d.jsonArena[:0]}
	out, err, ok := d.attempt(dst, func(dst []models.Flow, b *tally) ([]models.Flow, bool) {
		return d.jsonRequest(&p, id, dst, b)
	})
	d.jsonArena = p.arena[:0]
	return out, err, ok
}

func (d *Decoder) jsonRequest(p *jsonParser, id models.FlowIDBase, dst []models.Flow, b *tally) ([]models.Flow, bool) {
	seen := false
	ok := p.object(func(key string) bool {
		if key != "resourceLogs" || seen {
			return false
		}
		seen = true
		return p.array(func() bool {
			var ok bool
			dst, ok = d.jsonResourceLogs(p, id, dst, b)
			return ok
		})
	})
	p.ws()
	return dst, ok && p.i == len(p.b)
}

// The field names the fast path reads, by object; an index into one of
// these is what fields passes on.
var (
	resourceLogsFields = []string{"resource", "scopeLogs", "schemaUrl"}
	resourceFields     = []string{"attributes", "droppedAttributesCount"}
	scopeLogsFields    = []string{"scope", "logRecords", "schemaUrl"}
	scopeFields        = []string{"name", "version", "attributes", "droppedAttributesCount"}
	keyValueFields     = []string{"key", "value"}
	logRecordFields    = []string{"attributes", "timeUnixNano", "observedTimeUnixNano", "body", "traceId", "spanId",
		"severityNumber", "severityText", "droppedAttributesCount", "flags", "eventName"}
)

// Indexes into logRecordFields.
const (
	jlrAttributes = iota
	jlrTime
	jlrObserved
	jlrBody
	jlrTraceID
	jlrSpanID
	jlrSeverityNumber
	jlrSeverityText
	jlrDropped
	jlrFlags
	jlrEventName
)

func (d *Decoder) jsonResourceLogs(p *jsonParser, id models.FlowIDBase, dst []models.Flow, b *tally) ([]models.Flow, bool) {
	var res resourceInfo
	seenResource, seenScopes := false, false
	ok := p.fields(resourceLogsFields, func(i int) bool {
		switch i {
		case 0: // resource
			if seenScopes { // pdata reads it whatever its place
				return false
			}
			seenResource = true
			var ok bool
			res, ok = d.jsonResource(p)
			return ok
		case 1: // scopeLogs
			seenScopes = true
			if !seenResource {
				var rr rawResource
				res = rr.resolve(d)
			}
			return p.array(func() bool {
				var ok bool
				dst, ok = d.jsonScopeLogs(p, id, dst, b, &res)
				return ok
			})
		}
		_, ok := p.str()
		return ok
	})
	return dst, ok
}

func (d *Decoder) jsonResource(p *jsonParser) (resourceInfo, bool) {
	var rr rawResource
	ok := p.fields(resourceFields, func(i int) bool {
		if i == 1 { // droppedAttributesCount
			return p.smallUint()
		}
		return p.array(func() bool {
			key, val, ok := p.keyValue()
			rr.set(key, val)
			return ok
		})
	})
	if !ok {
		return resourceInfo{}, false
	}
	return rr.resolve(d), true
}

func (d *Decoder) jsonScopeLogs(p *jsonParser, id models.FlowIDBase, dst []models.Flow, b *tally, res *resourceInfo) ([]models.Flow, bool) {
	ok := p.fields(scopeLogsFields, func(i int) bool {
		switch i {
		case 0: // scope
			return p.scope()
		case 1: // logRecords
			return p.array(func() bool {
				if !d.jsonLogRecord(p) {
					return false
				}
				dst = d.appendLog(dst, b, id, res)
				return true
			})
		}
		_, ok := p.str()
		return ok
	})
	return dst, ok
}

// jsonLogRecord fills d.log from one LogRecord.
func (d *Decoder) jsonLogRecord(p *jsonParser) bool {
	r := &d.log
	*r = rawLog{}
	p.arena = p.arena[:0] // appendLog kept copies of the last record's strings
	return p.fields(logRecordFields, func(i int) bool {
		switch i {
		case jlrAttributes:
			pos := 0
			return p.array(func() bool {
				key, val, ok := p.keyValue()
				if ok {
					d.setAt(pos, key, val)
					pos++
				}
				return ok
			})
		case jlrTime, jlrObserved:
			s, ok := p.str()
			if !ok {
				return false
			}
			t, err := strconv.ParseUint(s, 10, 64) // as pdata reads a quoted uint64
			if err != nil {
				return false
			}
			if i == jlrTime {
				r.timeNs = t
			} else {
				r.observedNs = t
			}
			return true
		case jlrBody:
			val, ok := p.anyValue()
			if ok && val.kind == kindStr {
				r.hasBody, r.body = true, val.s
			}
			return ok
		case jlrTraceID:
			return p.hexID(r.traceID[:])
		case jlrSpanID:
			var span [8]byte
			return p.hexID(span[:])
		case jlrSeverityNumber, jlrDropped, jlrFlags:
			return p.smallUint()
		}
		_, ok := p.str()
		return ok
	})
}

// jsonParser reads the JSON subset the fast path accepts. Strings are
// views of the message, or of arena when they held escapes.
type jsonParser struct {
	b     []byte
	i     int
	arena []byte
}

func (p *jsonParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// next consumes c, after any whitespace, if it comes next.
func (p *jsonParser) next(c byte) bool {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// object reads an object, calling field for each key with the parser at
// its value; field reads the value or returns false.
func (p *jsonParser) object(field func(key string) bool) bool {
	if !p.next('{') {
		return false
	}
	if p.next('}') {
		return true
	}
	for {
		key, ok := p.str()
		if !ok || !p.next(':') || !field(key) {
			return false
		}
		if !p.next(',') {
			return p.next('}')
		}
	}
}

// fields reads an object whose keys must be among names, each at most
// once (pdata would merge or overwrite a second one), calling field with
// the key's index and the parser at its value.
func (p *jsonParser) fields(names []string, field func(i int) bool) bool {
	var seen uint32
	return p.object(func(key string) bool {
		i := slices.Index(names, key)
		if i < 0 || seen&(1<<i) != 0 {
			return false
		}
		seen |= 1 << i
		return field(i)
	})
}

// array reads an array, calling elem at each element.
func (p *jsonParser) array(elem func() bool) bool {
	if !p.next('[') {
		return false
	}
	if p.next(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if !p.next(',') {
			return p.next(']')
		}
	}
}

// str reads a string.
func (p *jsonParser) str() (string, bool) {
	if !p.next('"') {
		return "", false
	}
	start := p.i
	ascii := true
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			if !ascii && !utf8.Valid(s) {
				return "", false
			}
			return view(s), true
		case c == '\\':
			return p.unescape(start)
		case c < 0x20:
			return "", false
		case c >= 0x80:
			ascii = false
		}
		p.i++
	}
	return "", false
}

// unescape reads the rest of a string that holds an escape, from its
// first byte at start, into the arena. Its output is never longer than
// its input, so it fits in room reserved up front and earlier views of
// the arena stay valid.
func (p *jsonParser) unescape(start int) (string, bool) {
	end := start
	for end < len(p.b) && p.b[end] != '"' {
		if p.b[end] == '\\' {
			end++
		}
		end++
	}
	if end >= len(p.b) {
		return "", false
	}
	if cap(p.arena)-len(p.arena) < end-start {
		p.arena = make([]byte, 0, max(2*cap(p.arena), end-start, 4096))
	}
	from := len(p.arena)
	out := p.arena
	for i := start; i < end; i++ {
		c := p.b[i]
		if c < 0x20 {
			return "", false
		}
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		switch p.b[i] {
		case '"', '\\', '/':
			out = append(out, p.b[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			if i+4 >= end {
				return "", false
			}
			r, err := strconv.ParseUint(string(p.b[i+1:i+5]), 16, 16)
			if err != nil || r >= 0xd800 && r <= 0xdfff { // surrogates: left to pdata
				return "", false
			}
			out = utf8.AppendRune(out, rune(r))
			i += 4
		default:
			return "", false
		}
	}
	p.arena = out
	p.i = end + 1
	s := out[from:]
	if !utf8.Valid(s) {
		return "", false
	}
	return view(s), true
}

// smallUint reads an unquoted integer of at most nine digits: a value
// pdata reads as an int32, uint32 or enum number the same way.
func (p *jsonParser) smallUint() bool {
	p.ws()
	n := 0
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
		n++
	}
	// jsoniter reads a leading zero as the whole number.
	if n == 0 || n > 9 || n > 1 && p.b[p.i-n] == '0' || p.i < len(p.b) && (p.b[p.i] == '.' || p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		return false
	}
	return true
}

// hexID reads a trace or span id: "" leaves dst zero, as pdata does.
func (p *jsonParser) hexID(dst []byte) bool {
	s, ok := p.str()
	if !ok {
		return false
	}
	if len(s) == 0 {
		return true
	}
	if len(s) != 2*len(dst) {
		return false
	}
	_, err := hex.Decode(dst, unsafe.Slice(unsafe.StringData(s), len(s)))
	return err == nil
}

// keyValue reads an attribute.
func (p *jsonParser) keyValue() (key string, val rawValue, ok bool) {
	if key, val, ok := p.stringKeyValue(); ok {
		return key, val, true
	}
	ok = p.fields(keyValueFields, func(i int) bool {
		if i == 0 {
			var ok bool
			key, ok = p.str()
			return ok
		}
		var ok bool
		val, ok = p.anyValue()
		return ok
	})
	return key, val, ok
}

// anyValue reads a scalar AnyValue of the kinds the fast path takes.
func (p *jsonParser) anyValue() (rawValue, bool) {
	var val rawValue
	seen := false
	ok := p.object(func(k string) bool {
		if seen {
			return false // pdata keeps the last
		}
		seen = true
		switch k {
		case "stringValue":
			s, ok := p.str()
			val = strValue(s)
			return ok
		case "intValue":
			s, ok := p.str()
			if !ok {
				return false
			}
			n, err := strconv.ParseInt(s, 10, 64) // as pdata reads a quoted int64
			val = rawValue{n: uint64(n), kind: kindInt}
			return err == nil
		case "boolValue":
			switch {
			case p.literal("true"):
				val = rawValue{n: 1, kind: kindBool}
			case p.literal("false"):
				val = rawValue{kind: kindBool}
			default:
				return false
			}
			return true
		}
		return false
	})
	return val, ok
}

// literal consumes word if it comes next.
func (p *jsonParser) literal(word string) bool {
	p.ws()
	if len(p.b)-p.i < len(word) || string(p.b[p.i:p.i+len(word)]) != word {
		return false
	}
	p.i += len(word)
	return true
}

// scope reads an InstrumentationScope; nothing in it is used.
func (p *jsonParser) scope() bool {
	return p.fields(scopeFields, func(i int) bool {
		switch i {
		case 2: // attributes
			return p.array(func() bool {
				_, _, ok := p.keyValue()
				return ok
			})
		case 3: // droppedAttributesCount
			return p.smallUint()
		}
		_, ok := p.str()
		return ok
	})
}

// stringKeyValue matches a string attribute as the collector writes it,
// {"key":"K","value":{"stringValue":"V"}} with no space and no escape,
// without the general loop; anything else leaves the parser where it was.
func (p *jsonParser) stringKeyValue() (key string, val rawValue, ok bool) {
	const open, mid, end = `{"key":"`, `","value":{"stringValue":"`, `"}}`
	b, i := p.b, p.i
	if !hasAt(b, i, open) {
		return "", rawValue{}, false
	}
	k, i := plainString(b, i+len(open))
	if i < 0 || !hasAt(b, i, mid) {
		return "", rawValue{}, false
	}
	v, i := plainString(b, i+len(mid))
	if i < 0 || !hasAt(b, i, end) {
		return "", rawValue{}, false
	}
	p.i = i + len(end)
	return k, strValue(v), true
}

func hasAt(b []byte, i int, s string) bool {
	return len(b)-i >= len(s) && string(b[i:i+len(s)]) == s
}

// plainString reads string bytes from i to the closing quote: printable
// ASCII only, no escape. It returns the index of the quote, or -1.
func plainString(b []byte, i int) (string, int) {
	start := i
	for ; i < len(b); i++ {
		c := b[i]
		if c == '"' {
			return view(b[start:i]), i
		}
		if c == '\\' || c < 0x20 || c >= 0x80 {
			return "", -1
		}
	}
	return "", -1
}
