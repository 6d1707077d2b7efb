package ingest

import (
	"errors"
	"strings"

	"github.com/meshguard/meshguard/models"
)

// Istio's default access-log format (reference section 2):
//
//	[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE%
//	%RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS%
//	"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION%
//	%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%"
//	"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER%
//	%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS%
//	%REQUESTED_SERVER_NAME% %ROUTE_NAME%
//
// Envoy does not escape quotes, and X-Forwarded-For, User-Agent and
// X-Request-Id are whatever the client sent. So the parser reads the fields
// the client cannot shape (cluster, addresses, SNI, codes) by position from
// both ends, and only the client's headers in the middle are split on
// '" "'. A header containing '" "' can then bleed into its neighbour, never
// into the cluster, addresses or codes.

var (
	errNoStartTime = errors.New("missing [START_TIME]")
	errRequestLine = errors.New("malformed request line")
	errFieldCount  = errors.New("too few fields")
	errQuotedField = errors.New("malformed quoted field")
	errEmptyField  = errors.New("empty field")
)

// parseAccessLog splits a default-format line into its 24 fields, in
// format order. Values are substrings of line, "-" included.
func parseAccessLog(line string, out *[numTextFields]string) error {
	line = strings.TrimRight(line, "\r\n") // Envoy ends the format with a newline
	if len(line) < 2 || line[0] != '[' {
		return errNoStartTime
	}
	i := strings.IndexByte(line, ']')
	if i < 0 {
		return errNoStartTime
	}
	out[fStartTime] = line[1:i]
	rest, ok := strings.CutPrefix(line[i+1:], ` "`)
	if !ok {
		return errRequestLine
	}

	// "METHOD PATH PROTOCOL": method and protocol have no spaces; the path
	// is what lies between them.
	req, rest, ok := strings.Cut(rest, `" `)
	if !ok {
		return errRequestLine
	}
	m := strings.IndexByte(req, ' ')
	p := strings.LastIndexByte(req, ' ')
	if m < 0 || p <= m {
		return errRequestLine
	}
	out[fMethod], out[fPath], out[fProtocol] = req[:m], req[m+1:p], req[p+1:]

	// The right end: six unquoted fields.
	for _, f := range [...]int{fRouteName, fRequestedServerName, fDownstreamRemoteAddress, fDownstreamLocalAddress, fUpstreamLocalAddress, fUpstreamCluster} {
		j := strings.LastIndexByte(rest, ' ')
		if j < 0 {
			return errFieldCount
		}
		out[f], rest = rest[j+1:], rest[:j]
	}

	// The left end: code, flags, details, termination details, the quoted
	// failure reason (it may hold spaces, never quotes), then four numbers.
	for _, f := range [...]int{fResponseCode, fResponseFlags, fResponseCodeDetails, fConnectionTerminationDetails} {
		if out[f], rest, ok = strings.Cut(rest, " "); !ok {
			return errFieldCount
		}
	}
	if rest, ok = strings.CutPrefix(rest, `"`); !ok {
		return errQuotedField
	}
	if out[fUpstreamTransportFailureReason], rest, ok = strings.Cut(rest, `" `); !ok {
		return errQuotedField
	}
	for _, f := range [...]int{fBytesReceived, fBytesSent, fDuration, fUpstreamServiceTime} {
		if out[f], rest, ok = strings.Cut(rest, " "); !ok {
			return errFieldCount
		}
	}

	// The middle: "XFF" "UA" "REQUEST-ID" "AUTHORITY" "UPSTREAM_HOST".
	// Authority and upstream host are validated by Envoy (no quotes or
	// spaces); take them, then the request id, from the right, and split
	// what remains at the first '" "' into X-Forwarded-For and User-Agent.
	if len(rest) < 2 || rest[0] != '"' || rest[len(rest)-1] != '"' {
		return errQuotedField
	}
	rest = rest[1 : len(rest)-1]
	for _, f := range [...]int{fUpstreamHost, fAuthority, fRequestID} {
		j := strings.LastIndex(rest, `" "`)
		if j < 0 {
			return errFieldCount
		}
		out[f], rest = rest[j+3:], rest[:j]
	}
	if out[fXForwardedFor], out[fUserAgent], ok = strings.Cut(rest, `" "`); !ok {
		return errFieldCount
	}
	for _, f := range [...]int{fStartTime, fMethod, fProtocol, fResponseCode, fUpstreamCluster, fDownstreamRemoteAddress} {
		if out[f] == "" {
			return errEmptyField
		}
	}
	return nil
}

// ParseAccessLogText parses one line of Istio's default access-log text
// format into f, which it resets first (and leaves zero on error). It applies the decoder's rules with
// default limits: "-" is unset, strings are valid UTF-8 and capped, the
// reporter and destination service come from the cluster and SNI. Only
// what a line carries is set (no workloads, principals or trace id); Count
// is 1. Strings in f may share memory with line.
func ParseAccessLogText(line string, f *models.Flow) error {
	*f = models.Flow{}
	var text [numTextFields]string
	if err := parseAccessLog(line, &text); err != nil {
		return err
	}
	d := Decoder{cfg: DecoderConfig{}.withDefaults()}
	r := &d.log
	for i, s := range text {
		r.v[i] = strValue(s)
	}
	r.known = true
	if detail := d.fillLog(r, &resourceInfo{}, f); detail != "" {
		*f = models.Flow{}
		return errors.New(detail)
	}
	return nil
}
