package ingest

import (
	"math"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/meshguard/meshguard/models"
)

// Telemetry is attacker-controlled: request paths, user agents and most
// headers are whatever the client sent. The helpers here turn raw values
// into Flow fields that are valid UTF-8 and bounded, without rejecting the
// record: a hostile request is the evidence.

// valueKind says which of rawValue's fields holds the value.
type valueKind uint8

const (
	kindNone valueKind = iota
	kindStr
	kindInt
	kindDouble
	kindBool
	kindOther // bytes, arrays, maps: never a valid flow field
)

// rawValue is one attribute value as it arrived, before validation. With
// the fast path, s points into the Kafka buffer.
type rawValue struct {
	s    string
	n    uint64 // int64 bits for kindInt, float64 bits for kindDouble, 0/1 for kindBool
	kind valueKind
}

func strValue(s string) rawValue { return rawValue{s: s, kind: kindStr} }

// text returns v as free text cut to max bytes, or "" for "-" and non-text
// values. The result may still point into a borrowed buffer: pass it to
// keep or internStr before storing it.
func (d *Decoder) text(v rawValue, max int) string {
	if v.kind != kindStr || v.s == "-" {
		return ""
	}
	return d.clean(v.s, max)
}

// clean returns s as valid UTF-8 of at most max bytes, counting what it
// changed. Valid, short strings are returned as they are, without
// allocating.
func (d *Decoder) clean(s string, max int) string {
	if len(s) <= max && utf8.ValidString(s) {
		return s
	}
	s, truncated, replaced := sanitize(s, max)
	if truncated {
		d.stats.Truncated++
	}
	if replaced {
		d.stats.InvalidUTF8++
	}
	return s
}

// sanitize cuts s to max bytes at a rune boundary and replaces invalid
// UTF-8. It cuts first so a huge attribute costs no more than max bytes of
// work.
func sanitize(s string, max int) (out string, truncated, replaced bool) {
	if len(s) > max {
		s, truncated = cutRunes(s, max), true
	}
	if !utf8.ValidString(s) {
		s, replaced = strings.ToValidUTF8(s, "\uFFFD"), true
		if len(s) > max { // each replacement can be longer than the bytes it replaced
			s, truncated = cutRunes(s, max), true
		}
	}
	return s, truncated, replaced
}

// cutRunes returns at most max bytes of s without splitting a rune that
// starts before max.
func cutRunes(s string, max int) string {
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && i > max-utf8.UTFMax && !utf8.RuneStart(s[i]) {
		i--
	}
	if !utf8.RuneStart(s[i]) { // not UTF-8 there anyway
		i = max
	}
	return s[:i]
}

// sanitizeDetail bounds an error detail for DecodeError.
func sanitizeDetail(s string) string {
	s, _, _ = sanitize(s, maxDetail)
	return s
}

// keep makes s safe to store: a copy when it points into a borrowed buffer.
func (d *Decoder) keep(s string) string {
	if d.borrowed && s != "" {
		return strings.Clone(s)
	}
	return s
}

// identity returns v as an identity (workload, namespace, service), or ""
// when unset ("-", and "unknown" when unknownUnset) or unusable.
func (d *Decoder) identity(v rawValue, unknownUnset bool) string {
	if v.kind != kindStr {
		return ""
	}
	return d.identityStr(v.s, unknownUnset)
}

func (d *Decoder) identityStr(s string, unknownUnset bool) string {
	if s == "" || s == "-" || (unknownUnset && s == "unknown") {
		return ""
	}
	if len(s) > d.cfg.MaxFieldBytes || !utf8.ValidString(s) {
		d.stats.DroppedIdentities++
		return ""
	}
	return d.internStr(s)
}

// principal returns v as a principal in Istio's form, or "". Results are
// cached by raw value: every record repeats a handful of principals.
func (d *Decoder) principal(v rawValue, unknownUnset bool) string {
	if v.kind != kindStr {
		return ""
	}
	s := v.s
	if s == "" || s == "-" || (unknownUnset && s == "unknown") {
		return ""
	}
	if p, ok := d.principals[s]; ok {
		if p == "" {
			d.stats.DroppedIdentities++
		}
		return p
	}
	var p string
	if len(s) <= d.cfg.MaxFieldBytes && utf8.ValidString(s) {
		p = models.NormalizePrincipal(strings.Clone(s))
	}
	if p == "" {
		d.stats.DroppedIdentities++
	}
	if d.principals != nil {
		if len(d.principals) >= maxPrincipals {
			clear(d.principals)
		}
		d.principals[strings.Clone(s)] = p
	}
	return p
}

const maxPrincipals = 4096

// internStr returns an owned string equal to s, shared with earlier equal
// values: identities, methods and flags repeat in every record.
func (d *Decoder) internStr(s string) string {
	if s == "" {
		return ""
	}
	return d.intern.get(s)
}

// internTable is a bounded string interner. When full it starts over,
// which bounds memory however many distinct values an attacker sends. A
// small direct-mapped cache in front answers most lookups without hashing.
type internTable struct {
	m      map[string]string
	max    int
	recent [64]string
}

func newInternTable(max int) internTable {
	return internTable{m: make(map[string]string), max: max}
}

func recentSlot(n int, first, last byte) int {
	return (n*31 + int(first)*7 + int(last)) & 63
}

// get returns an owned string equal to s. A zero internTable
// (ParseAccessLogText's) interns nothing: its callers' strings are theirs.
func (t *internTable) get(s string) string {
	if t.m == nil || s == "" {
		return s
	}
	i := recentSlot(len(s), s[0], s[len(s)-1])
	if t.recent[i] == s {
		return t.recent[i]
	}
	v, ok := t.m[s]
	if !ok {
		if len(t.m) >= t.max {
			clear(t.m)
		}
		v = strings.Clone(s)
		t.m[v] = v
	}
	t.recent[i] = v
	return v
}

func (t *internTable) getBytes(b []byte) string {
	if t.m == nil || len(b) == 0 {
		return string(b)
	}
	i := recentSlot(len(b), b[0], b[len(b)-1])
	if t.recent[i] == string(b) {
		return t.recent[i]
	}
	v, ok := t.m[string(b)] // no allocation: the compiler knows
	if !ok {
		if len(t.m) >= t.max {
			clear(t.m)
		}
		v = string(b)
		t.m[v] = v
	}
	t.recent[i] = v
	return v
}

// parseDigits parses an unsigned decimal with no sign or spaces.
func parseDigits(s string) (uint64, bool) {
	if s == "" || len(s) > 20 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i] - '0'
		if c > 9 {
			return 0, false
		}
		if n > (math.MaxUint64-uint64(c))/10 {
			return 0, false
		}
		n = n*10 + uint64(c)
	}
	return n, true
}

// number returns v as an unsigned integer no larger than max. Unset ("-",
// absent) is 0. Strings must be decimal digits; OTLP ints must not be
// negative; doubles must be whole. ok is false for anything else.
func number(v rawValue, max uint64) (uint64, bool) {
	var n uint64
	switch v.kind {
	case kindNone:
		return 0, true
	case kindStr:
		if v.s == "-" || v.s == "" {
			return 0, true
		}
		var ok bool
		if n, ok = parseDigits(v.s); !ok {
			return 0, false
		}
	case kindInt:
		if int64(v.n) < 0 {
			return 0, false
		}
		n = v.n
	case kindDouble:
		f := math.Float64frombits(v.n)
		if !(f >= 0 && f < 1<<64) || f != math.Trunc(f) {
			return 0, false
		}
		n = uint64(f)
	default:
		return 0, false
	}
	if n > max {
		return 0, false
	}
	return n, true
}

// describe renders v for an error detail.
func describe(v rawValue) string {
	switch v.kind {
	case kindStr:
		s, _, _ := sanitize(v.s, 64)
		return `"` + s + `"`
	case kindInt:
		return "int " + itoa(int64(v.n))
	case kindDouble:
		return "double"
	case kindBool:
		return "bool"
	}
	return "non-scalar value"
}

func itoa(n int64) string {
	var b [20]byte
	i := len(b)
	u := uint64(n)
	if n < 0 {
		u = uint64(-n)
	}
	for {
		i--
		b[i] = byte('0' + u%10)
		u /= 10
		if u == 0 {
			break
		}
	}
	if n < 0 {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// parseStartTime parses Envoy's %START_TIME% (RFC 3339, milliseconds, UTC:
// "2020-11-25T21:26:18.409Z") into Unix ms, with a fast path for exactly
// that layout and any RFC 3339 time accepted.
func parseStartTime(s string) (int64, bool) {
	if len(s) == 24 && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' && s[16] == ':' && s[19] == '.' && s[23] == 'Z' {
		y, ok1 := fixed(s[0:4])
		mo, ok2 := fixed(s[5:7])
		dd, ok3 := fixed(s[8:10])
		h, ok4 := fixed(s[11:13])
		mi, ok5 := fixed(s[14:16])
		se, ok6 := fixed(s[17:19])
		ms, ok7 := fixed(s[20:23])
		if ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 && mo >= 1 && mo <= 12 && dd >= 1 && dd <= daysIn(mo, y) && h < 24 && mi < 60 && se < 60 {
			days := daysSinceEpoch(y, mo, dd)
			return ((days*24+int64(h))*60+int64(mi))*60_000 + int64(se)*1000 + int64(ms), true
		}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, false
	}
	return t.UnixMilli(), true
}

func fixed(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i] - '0'
		if c > 9 {
			return 0, false
		}
		n = n*10 + int(c)
	}
	return n, true
}

func daysIn(m, y int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysSinceEpoch is Howard Hinnant's days_from_civil.
func daysSinceEpoch(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

// epochMs reads a numeric start time: seconds, ms, µs or ns since the
// epoch, told apart by magnitude.
func epochMs(v rawValue) (int64, bool) {
	n, ok := number(v, math.MaxInt64)
	if !ok {
		return 0, false
	}
	switch {
	case n >= 1e17:
		return int64(n / 1e6), true
	case n >= 1e14:
		return int64(n / 1e3), true
	case n >= 1e11:
		return int64(n), true
	}
	return int64(n) * 1000, true
}

// parseAddr reads "ip:port", "[ip6]:port" or a bare IP. IPv4-mapped IPv6
// addresses are unmapped so one host has one form.
func parseAddr(s string) (netip.Addr, uint16, bool) {
	if s == "" || s == "-" {
		return netip.Addr{}, 0, false
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), ap.Port(), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), 0, true
	}
	return netip.Addr{}, 0, false
}

// parsePort parses a decimal port number (1-65535).
func parsePort(s string) uint16 {
	n, ok := parseDigits(s)
	if !ok || n > math.MaxUint16 {
		return 0
	}
	return uint16(n)
}

// clusterParts splits an Envoy cluster name "outbound|8000|subset|host" or
// "inbound|8000||" into direction, port and host.
func clusterParts(c string) (rep models.Reporter, port uint16, host string) {
	dir, rest, ok := strings.Cut(c, "|")
	if !ok {
		return models.ReporterUnknown, 0, ""
	}
	switch dir {
	case "outbound":
		rep = models.ReporterSource
	case "inbound":
		rep = models.ReporterDestination
	default:
		return models.ReporterUnknown, 0, ""
	}
	p, rest, _ := strings.Cut(rest, "|")
	port = parsePort(p)
	_, host, _ = strings.Cut(rest, "|")
	return rep, port, host
}

// sniParts splits Istio's mTLS SNI "outbound_.8000_._.httpbin.foo.svc.cluster.local"
// (also with a subset: "outbound_.8000_.v1_.host") into port and host.
func sniParts(sni string) (port uint16, host string, ok bool) {
	rest, ok := strings.CutPrefix(sni, "outbound_.")
	if !ok {
		return 0, "", false
	}
	p, rest, ok := strings.Cut(rest, "_.")
	if !ok {
		return 0, "", false
	}
	_, host, ok = strings.Cut(rest, "_.")
	if !ok || host == "" {
		return 0, "", false
	}
	return parsePort(p), host, true
}

// hostPort splits an authority: "httpbin:8000" -> "httpbin", 8000;
// "[::1]:80" -> "::1", 80; "httpbin" -> "httpbin", 0.
func hostPort(a string) (string, uint16) {
	if strings.HasPrefix(a, "[") {
		i := strings.IndexByte(a, ']')
		if i < 0 {
			return a, 0
		}
		host, rest := a[1:i], a[i+1:]
		if p, ok := strings.CutPrefix(rest, ":"); ok {
			return host, parsePort(p)
		}
		return host, 0
	}
	if i := strings.LastIndexByte(a, ':'); i >= 0 && strings.IndexByte(a, ':') == i {
		return a[:i], parsePort(a[i+1:])
	}
	return a, 0
}
