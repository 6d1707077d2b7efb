package models

import (
	"encoding/hex"
	"net/netip"
	"time"
)

// Reporter says which proxy logged a flow. Istio logs a request on both
// sides by default, so one request can arrive twice, once per reporter;
// detectors count it once by preferring one side.
type Reporter uint8

const (
	ReporterUnknown Reporter = iota
	ReporterSource
	ReporterDestination
)

var reporterNames = [...]string{"unknown", "source", "destination"}

// String returns the name used in storage, the API and Istio's
// `reporter` label: "source", "destination" or "unknown".
func (r Reporter) String() string {
	if int(r) < len(reporterNames) {
		return reporterNames[r]
	}
	return "unknown"
}

// ParseReporter accepts Istio's label values and Envoy's side names
// ("client"/"outbound" for the source proxy, "server"/"inbound" for the
// destination proxy). Anything else is ReporterUnknown.
func ParseReporter(s string) Reporter {
	switch s {
	case "source", "client", "outbound":
		return ReporterSource
	case "destination", "server", "inbound":
		return ReporterDestination
	}
	return ReporterUnknown
}

// Source is the calling side of a flow.
type Source struct {
	// Principal is the caller's mTLS identity in Istio's policy form
	// "cluster.local/ns/NS/sa/SA" (no "spiffe://"); empty for plaintext.
	Principal string
	Workload  string
	Namespace string
	IP        netip.Addr
}

// Destination is the called side of a flow.
type Destination struct {
	Principal string
	Workload  string
	Namespace string
	// Service is the FQDN the caller asked for, e.g.
	// "reviews.bookinfo.svc.cluster.local".
	Service string
	Port    uint16
}

// Flow is one observed request or connection between two workloads, or,
// when Count > 1, an aggregate of Count of them (from metrics).
//
// Bytes are counted from the reporting proxy's view of the caller:
// BytesReceived is what the caller sent (the request), BytesSent what it
// got back (the response), as in Envoy's %BYTES_RECEIVED%/%BYTES_SENT%.
type Flow struct {
	ID FlowID
	// TimestampMs is the event time: Unix milliseconds, UTC.
	TimestampMs int64
	Reporter    Reporter

	Source      Source
	Destination Destination

	// Protocol as Envoy prints it: "HTTP/1.1", "HTTP/2", "TCP", ...
	Protocol string
	Method   string
	// Path is the raw request path; PathTemplate the same with ids,
	// numbers and hashes replaced by placeholders ("/users/{id}"), which
	// keeps baselines from growing with every user id.
	Path         string
	PathTemplate string
	// ResponseCode 0 means no response was sent.
	ResponseCode  uint16
	ResponseFlags string

	BytesSent     uint64
	BytesReceived uint64
	DurationMs    uint32

	// TLS is what the record showed of transport security: mTLS,
	// plaintext, or unknown when it carried no evidence.
	TLS        TLS
	TLSVersion string

	UserAgent string
	RequestID string
	TraceID   TraceID

	// Count is 1 for one request, more for an aggregate.
	Count uint32

	// Resolved says which identity fields meshguard filled from the
	// cluster (the pod behind the source IP, the Service behind the
	// destination host) because the record lacked them; the others are
	// as reported. IdentityConflict: what the record claimed contradicts
	// what its source IP or destination Service resolve to at its event
	// time; the claim is kept and nothing was filled, but for the
	// workload and namespace of a source claimed by principal alone (the
	// pod behind its address).
	Resolved         Resolved
	IdentityConflict bool
	// DryRunAllow is what dry-run ALLOW policies said of the request
	// (destination-side records only).
	DryRunAllow DryRun
	// Partition is the Kafka partition the flow arrived on; detect shards
	// its state by it so that replicas of one consumer group split the
	// work. Not stored.
	Partition int32
}

// Time returns the event time.
func (f *Flow) Time() time.Time { return time.UnixMilli(f.TimestampMs).UTC() }

// Edge returns the key of the edge the flow travels on.
func (f *Flow) Edge() Edge {
	return Edge{Source: sourceEndpoint(&f.Source), Destination: destinationEndpoint(&f.Destination)}
}

// TraceID is a W3C trace id; all zeros means none.
type TraceID [16]byte

// IsEmpty reports whether the trace id is unset.
func (t TraceID) IsEmpty() bool { return t == TraceID{} }

// String returns the 32 lowercase hex characters, or "" when unset.
func (t TraceID) String() string {
	if t.IsEmpty() {
		return ""
	}
	return hex.EncodeToString(t[:])
}
