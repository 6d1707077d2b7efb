package storage

import (
	"sync"

	"github.com/meshguard/meshguard/models"
)

// flowColumns is a batch of flows turned inside out: one slice per column
// of the flows table, in the order of flowColumnNames. Strings are not
// copied: they point into the caller's flows, which the caller keeps
// alive until ConsumeFlows returns.
type flowColumns struct {
	ts, tsMs              []int64
	flowID, traceID       [][]byte
	reporter              []string
	srcPrincipal, srcWL   []string
	srcNS, srcIP          []string
	dstPrincipal, dstWL   []string
	dstNS, dstService     []string
	dstPort, responseCode []uint16
	protocol, method      []string
	path, pathTemplate    []string
	responseFlags         []string
	bytesSent, bytesRecv  []uint64
	durationMs, count     []uint32
	mtls                  []uint8
	resolved, conflict    []uint8
	dryRunAllow           []uint8
	tlsVersion, userAgent []string
	requestID             []string

	ids    []byte // flow and trace ids side by side; flowID and traceID point into it
	ipText []byte // source IPs as text, one after the other
	ipEnds []int  // where each flow's IP ends in ipText
}

// flowColumnNames lists the columns ConsumeFlows inserts, in the order
// flowColumns.values returns them.
var flowColumnNames = []string{
	"ts", "ts_ms", "flow_id", "reporter",
	"source_principal", "source_workload", "source_namespace", "source_ip",
	"destination_principal", "destination_workload", "destination_namespace", "destination_service", "destination_port",
	"protocol", "method", "path", "path_template", "response_code", "response_flags",
	"bytes_sent", "bytes_received", "duration_ms", "mtls", "tls_version",
	"user_agent", "request_id", "trace_id", "count",
	"identity_resolved", "identity_conflict",
	"dry_run_allow",
}

// values returns one slice per entry of flowColumnNames, each of a type
// clickhouse-go appends to its column without converting row by row.
func (c *flowColumns) values(from, to int) []any {
	return []any{
		c.ts[from:to], c.tsMs[from:to], c.flowID[from:to], c.reporter[from:to],
		c.srcPrincipal[from:to], c.srcWL[from:to], c.srcNS[from:to], c.srcIP[from:to],
		c.dstPrincipal[from:to], c.dstWL[from:to], c.dstNS[from:to], c.dstService[from:to], c.dstPort[from:to],
		c.protocol[from:to], c.method[from:to], c.path[from:to], c.pathTemplate[from:to], c.responseCode[from:to], c.responseFlags[from:to],
		c.bytesSent[from:to], c.bytesRecv[from:to], c.durationMs[from:to], c.mtls[from:to], c.tlsVersion[from:to],
		c.userAgent[from:to], c.requestID[from:to], c.traceID[from:to], c.count[from:to],
		c.resolved[from:to], c.conflict[from:to],
		c.dryRunAllow[from:to],
	}
}

var flowColumnsPool = sync.Pool{New: func() any { return new(flowColumns) }}

// fill replaces c's contents with flows. It reuses c's slices, so a pooled
// flowColumns allocates only when a batch is bigger than any before.
func (c *flowColumns) fill(flows []models.Flow) {
	n := len(flows)
	c.ts, c.tsMs = resize(c.ts, n), resize(c.tsMs, n)
	c.flowID, c.traceID = resize(c.flowID, n), resize(c.traceID, n)
	for _, s := range []*[]string{
		&c.reporter, &c.srcPrincipal, &c.srcWL, &c.srcNS, &c.srcIP,
		&c.dstPrincipal, &c.dstWL, &c.dstNS, &c.dstService,
		&c.protocol, &c.method, &c.path, &c.pathTemplate, &c.responseFlags,
		&c.tlsVersion, &c.userAgent, &c.requestID,
	} {
		*s = resize(*s, n)
	}
	c.dstPort, c.responseCode = resize(c.dstPort, n), resize(c.responseCode, n)
	c.bytesSent, c.bytesRecv = resize(c.bytesSent, n), resize(c.bytesRecv, n)
	c.durationMs, c.count = resize(c.durationMs, n), resize(c.count, n)
	c.mtls = resize(c.mtls, n)
	c.resolved, c.conflict = resize(c.resolved, n), resize(c.conflict, n)
	c.dryRunAllow = resize(c.dryRunAllow, n)
	c.ids = resize(c.ids, 32*n)
	c.ipText, c.ipEnds = c.ipText[:0], resize(c.ipEnds, n)

	for i := range flows {
		f := &flows[i]
		// Floor, not truncation, so that pre-1970 junk cannot land a second late.
		sec := f.TimestampMs / 1000
		if f.TimestampMs%1000 < 0 {
			sec--
		}
		c.ts[i], c.tsMs[i] = sec, f.TimestampMs
		id := c.ids[32*i : 32*i+32 : 32*i+32]
		copy(id[:16], f.ID[:])
		copy(id[16:], f.TraceID[:])
		c.flowID[i], c.traceID[i] = id[:16:16], id[16:]
		c.reporter[i] = f.Reporter.String()
		c.srcPrincipal[i], c.srcWL[i], c.srcNS[i] = f.Source.Principal, f.Source.Workload, f.Source.Namespace
		c.dstPrincipal[i], c.dstWL[i], c.dstNS[i] = f.Destination.Principal, f.Destination.Workload, f.Destination.Namespace
		c.dstService[i], c.dstPort[i] = f.Destination.Service, f.Destination.Port
		c.protocol[i], c.method[i] = f.Protocol, f.Method
		c.path[i], c.pathTemplate[i] = f.Path, f.PathTemplate
		c.responseCode[i], c.responseFlags[i] = f.ResponseCode, f.ResponseFlags
		c.bytesSent[i], c.bytesRecv[i] = f.BytesSent, f.BytesReceived
		c.durationMs[i], c.count[i] = f.DurationMs, f.Count
		c.mtls[i] = uint8(f.TLS) // 0 unknown, 1 mTLS, 2 plaintext (models.TLS)
		c.tlsVersion[i], c.userAgent[i], c.requestID[i] = f.TLSVersion, f.UserAgent, f.RequestID
		c.resolved[i], c.conflict[i] = uint8(f.Resolved), 0
		if f.IdentityConflict {
			c.conflict[i] = 1
		}
		c.dryRunAllow[i] = uint8(f.DryRunAllow)
	}
	c.fillIPs(flows)
}

// fillIPs renders every source IP into one buffer and slices the strings
// out of one copy of it: one allocation per batch instead of one per flow.
func (c *flowColumns) fillIPs(flows []models.Flow) {
	for i := range flows {
		if ip := flows[i].Source.IP; ip.IsValid() {
			c.ipText = ip.AppendTo(c.ipText)
		}
		c.ipEnds[i] = len(c.ipText)
	}
	all := string(c.ipText)
	start := 0
	for i, end := range c.ipEnds {
		c.srcIP[i] = all[start:end]
		start = end
	}
}

// reset drops the references into the caller's flows so that a pooled
// flowColumns does not keep them alive.
func (c *flowColumns) reset() {
	for _, s := range [][]string{
		c.reporter, c.srcPrincipal, c.srcWL, c.srcNS, c.srcIP,
		c.dstPrincipal, c.dstWL, c.dstNS, c.dstService,
		c.protocol, c.method, c.path, c.pathTemplate, c.responseFlags,
		c.tlsVersion, c.userAgent, c.requestID,
	} {
		clear(s)
	}
}

// resize returns s with length n, reusing its array when large enough.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n, n+n/4)
	}
	return s[:n]
}
