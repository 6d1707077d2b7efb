package alert

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxValue bounds one telemetry-derived value in a message: a request path
// can be kilobytes and a Slack section holds 3000 characters.
const maxValue = 120

// code renders an attacker-controlled string for Slack mrkdwn as inline
// code, so that nothing in it is interpreted:
//
//   - &, < and > become &amp; &lt; &gt;: no <!channel>, <@U123>,
//     <#C123> or <http://x|y> link can be formed;
//   - inside a code span Slack applies no *bold*, _italic_, ~strike~ and no
//     auto-linking of URLs or @mentions; a backtick, which would close the
//     span, becomes ˋ (U+02CB), which looks alike;
//   - line breaks and other control characters, which would end the span,
//     become a visible ␤ or are dropped; invalid UTF-8 becomes U+FFFD;
//   - the value is cut to maxValue characters with an ellipsis.
//
// Every text object is also sent with verbatim set, so Slack does not
// linkify or parse mentions in our own text either. Empty values read "-".
func code(s string) string {
	if s == "" {
		return "-"
	}
	return "`" + clean(s) + "`"
}

// clean is code without the backticks: escaped, flattened and cut.
func clean(s string) string {
	var b strings.Builder
	n := 0
	for i, r := range s {
		if n == maxValue {
			if i < len(s) {
				b.WriteString("…")
			}
			break
		}
		n++
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size <= 1 {
				b.WriteRune('\uFFFD')
				continue
			}
		}
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '`':
			b.WriteRune('\u02CB')
		case '\n', '\r':
			b.WriteRune('␤')
		default:
			if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || isInvisible(r) {
				continue
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}

// isInvisible: format characters (bidi overrides, zero-width joiners) that
// could make a value read as something else.
func isInvisible(r rune) bool { return unicode.Is(unicode.Cf, r) }

// plainText cleans a string for a plain_text object (headers, button
// labels): no mrkdwn is parsed there, but the length still matters.
func plainText(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}
