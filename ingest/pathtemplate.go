package ingest

import "strings"

// Path templates keep per-path baselines from growing with every user id:
// "/users/42/orders/9f1c..." and "/users/7/orders/0b3e..." are one route.
//
// A path segment becomes a placeholder when it is
//   - all digits:                                 {id}
//   - a UUID (8-4-4-4-12 hex digits):              {uuid}
//   - 16 or more hex digits with a digit and a letter (hashes, object ids): {hash}
//   - 20 or more base64url characters that look random: digits scattered
//     among letters and frequent changes of case, as in tokens and JWT
//     parts (camelCase names and dated slugs stay): {token}
//
// Everything else stays as it is, so words, versions ("v2"), file names,
// gRPC methods ("/pkg.Service/Method") and dotfiles ("/.env", "/.git/config")
// stay visible: probes for them are what an attack looks like. The query
// string and fragment are not part of the template.

// PathTemplate returns the template of path. It does not allocate when no
// segment changes (the result is then a prefix of path).
func PathTemplate(path string) string {
	p := path[:pathEnd(path)]
	if t, changed := appendTemplate(nil, p); changed {
		return string(t)
	}
	return p
}

// pathTemplate is PathTemplate with the result capped like paths and
// interned: templates repeat.
func (d *Decoder) pathTemplate(path string) string {
	p := path[:pathEnd(path)]
	t, changed := appendTemplate(d.tplBuf[:0], p)
	d.tplBuf = t
	if !changed {
		return p
	}
	if len(t) > d.cfg.MaxPathBytes { // "/1/2/3" grows into "/{id}/{id}/{id}"
		t = t[:len(cutRunes(string(t), d.cfg.MaxPathBytes))]
	}
	return d.templates.getBytes(t)
}

func pathEnd(path string) int {
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		return i
	}
	return len(path)
}

// appendTemplate appends the template of path to dst, but only once a
// segment changes: until then it appends nothing, so unchanged paths cost
// one scan and no copy.
func appendTemplate(dst []byte, path string) ([]byte, bool) {
	changed := false
	start := 0
	for i := 0; i <= len(path); i++ {
		if i < len(path) && path[i] != '/' {
			continue
		}
		seg := path[start:i]
		if p := placeholder(seg); p != "" {
			if !changed {
				dst = append(dst, path[:start]...)
				changed = true
			}
			dst = append(dst, p...)
		} else if changed {
			dst = append(dst, seg...)
		}
		if changed && i < len(path) {
			dst = append(dst, '/')
		}
		start = i + 1
	}
	return dst, changed
}

func placeholder(seg string) string {
	n := len(seg)
	if n == 0 {
		return ""
	}
	var digits, hex, lower, upper, other, changes, digitChanges int
	prev := byte(0)
	for i := 0; i < n; i++ {
		c := seg[i]
		var class byte
		switch {
		case c >= '0' && c <= '9':
			digits++
			hex++
			class = 'd'
		case c >= 'a' && c <= 'z':
			lower++
			if c <= 'f' {
				hex++
			}
			class = 'l'
		case c >= 'A' && c <= 'Z':
			upper++
			if c <= 'F' {
				hex++
			}
			class = 'u'
		case c == '-' || c == '_':
			other++
			class = prev // a separator does not change class
		default:
			return "" // dots, percent escapes, anything else: a name, not an id
		}
		if prev != 0 && class != prev {
			changes++
			if class == 'd' || prev == 'd' {
				digitChanges++
			}
		}
		prev = class
	}
	switch {
	case digits == n:
		return "{id}"
	case n == 36 && isUUID(seg):
		return "{uuid}"
	case n >= 16 && hex == n && digits > 0:
		return "{hash}"
	case n >= 20 && digitChanges >= 3 && changes*4 >= n-other:
		return "{token}"
	}
	return ""
}

func isUUID(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}
