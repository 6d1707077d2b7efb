package storage

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/meshguard/meshguard/models"
)

// Posture reads: every edge's requests by TLS state (flows.mtls: 0
// unknown, 1 mTLS, 2 plaintext) over a span, for the zero-trust posture
// (package posture) and the compliance report.

// MaxPostureSamples is how many request ids of plaintext requests a
// PostureEdge carries.
const MaxPostureSamples = 5

// PostureEdge is one edge's requests over a span by TLS state, as one side
// (Reporter) logged them. The key is edge_minute's plus the destination
// port, which port-level PeerAuthentication needs.
type PostureEdge struct {
	SourcePrincipal string
	SourceWorkload  string
	SourceNamespace string
	// SourceIP is set only for callers with neither workload nor principal.
	SourceIP string

	// DestinationPrincipal is one principal the destination presented
	// (the greatest), empty when no record carried one.
	DestinationPrincipal string
	DestinationWorkload  string
	DestinationNamespace string
	DestinationPort      uint16

	Reporter string

	MTLS, Plaintext, Unknown uint64
	FirstSeen, LastSeen      time.Time
	// PlaintextFirstSeen and PlaintextLastSeen bound the plaintext
	// requests; zero without any.
	PlaintextFirstSeen, PlaintextLastSeen time.Time
	// SampleRequestIDs are up to MaxPostureSamples request ids of
	// plaintext requests, sorted.
	SampleRequestIDs []string
}

// Requests is the edge's total.
func (e *PostureEdge) Requests() uint64 { return e.MTLS + e.Plaintext + e.Unknown }

// PostureQuerier answers posture reads. Implementations are
// goroutine-safe.
type PostureQuerier interface {
	// PostureEdges returns every edge with a flow in [from, to), one side
	// per edge (see foldPostureReporters).
	PostureEdges(ctx context.Context, from, to time.Time) ([]PostureEdge, error)
}

// postureQuery totals the rollups (see rollupSource) per edge, port and
// reporter: the TLS states summed, first/last seen, and up to
// MaxPostureSamples plaintext request ids.
var postureQuery = `SELECT source_principal, source_workload, source_namespace, source_ip,
    maxMerge(max_destination_principal), destination_workload, destination_namespace, destination_port, reporter,
    sumMerge(mtls_requests), sumMerge(plaintext_requests), sumMerge(unknown_requests),
    toDateTime(minMerge(first_seen), 'UTC'), toDateTime(maxMerge(last_seen), 'UTC'),
    toDateTime(if(sumMerge(plaintext_requests) = 0, 0, minMerge(plaintext_first_seen)), 'UTC'),
    toDateTime(if(sumMerge(plaintext_requests) = 0, 0, maxMerge(plaintext_last_seen)), 'UTC'),
    arraySlice(arrayDistinct(groupArrayIfMerge(` + strconv.Itoa(rollupSamples) + `)(plaintext_samples)), 1, ` + strconv.Itoa(MaxPostureSamples) + `) AS samples
FROM (
    {rollup}
)
GROUP BY source_principal, source_workload, source_namespace, source_ip,
    destination_workload, destination_namespace, destination_port, reporter`

var postureStates = []string{"max_destination_principal", "mtls_requests", "plaintext_requests", "unknown_requests",
	"first_seen", "last_seen", "plaintext_first_seen", "plaintext_last_seen", "plaintext_samples"}

// PostureEdges returns every edge with a flow in [from, to) with its
// requests by TLS state. A batch that ingest retried after a partial
// write can count twice (see ConsumeFlows), as it does in edge_minute.
func (c *ClickHouse) PostureEdges(ctx context.Context, from, to time.Time) ([]PostureEdge, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	q, ok, err := c.rollupQuery(ctx, postureQuery, from, to, postureStates, false)
	if err != nil || !ok {
		return nil, wrapErr("posture edges", err)
	}
	rows, err := c.conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("posture edges: %w", classify(err))
	}
	defer rows.Close()
	out, err := scanPostureEdges(rows)
	if err != nil {
		return nil, fmt.Errorf("posture edges: %w", err)
	}
	return out, nil
}

// scanPostureEdges reads rows of postureQuery's columns, one side per
// edge (foldPostureReporters).
func scanPostureEdges(rows driver.Rows) ([]PostureEdge, error) {
	var out []PostureEdge
	for rows.Next() {
		var e PostureEdge
		if err := rows.Scan(&e.SourcePrincipal, &e.SourceWorkload, &e.SourceNamespace, &e.SourceIP,
			&e.DestinationPrincipal, &e.DestinationWorkload, &e.DestinationNamespace, &e.DestinationPort, &e.Reporter,
			&e.MTLS, &e.Plaintext, &e.Unknown, &e.FirstSeen, &e.LastSeen,
			&e.PlaintextFirstSeen, &e.PlaintextLastSeen, &e.SampleRequestIDs); err != nil {
			return nil, classify(err)
		}
		e.FirstSeen, e.LastSeen = e.FirstSeen.UTC(), e.LastSeen.UTC()
		e.PlaintextFirstSeen, e.PlaintextLastSeen = fromDateTime(e.PlaintextFirstSeen), fromDateTime(e.PlaintextLastSeen)
		if e.Plaintext == 0 {
			e.PlaintextFirstSeen, e.PlaintextLastSeen = time.Time{}, time.Time{}
		}
		slices.Sort(e.SampleRequestIDs)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(err)
	}
	return foldPostureReporters(out), nil
}

// postureKey is a PostureEdge's edge without the reporter.
type postureKey struct {
	srcPrincipal, srcWorkload, srcNamespace, srcIP string
	dstWorkload, dstNamespace                      string
	dstPort                                        uint16
}

func postureKeyOf(e *PostureEdge) postureKey {
	return postureKey{e.SourcePrincipal, e.SourceWorkload, e.SourceNamespace, e.SourceIP,
		e.DestinationWorkload, e.DestinationNamespace, e.DestinationPort}
}

// foldPostureReporters keeps one side per edge: the destination's when it
// logged the edge, since only the destination proxy sees the client
// certificate (a client's record in Istio's stock format says nothing of
// TLS), else the source's. Summing both would count each request twice.
// The result is sorted by destination, then source, then port.
func foldPostureReporters(rows []PostureEdge) []PostureEdge {
	at := make(map[postureKey]int, len(rows))
	out := rows[:0:0]
	for _, e := range rows {
		k := postureKeyOf(&e)
		i, ok := at[k]
		if !ok {
			at[k] = len(out)
			out = append(out, e)
			continue
		}
		if e.Reporter == "destination" && out[i].Reporter != "destination" {
			out[i] = e
		}
	}
	slices.SortFunc(out, func(a, b PostureEdge) int {
		ka, kb := postureKeyOf(&a), postureKeyOf(&b)
		for _, p := range [][2]string{{ka.dstNamespace, kb.dstNamespace}, {ka.dstWorkload, kb.dstWorkload},
			{ka.srcNamespace, kb.srcNamespace}, {ka.srcWorkload, kb.srcWorkload},
			{ka.srcPrincipal, kb.srcPrincipal}, {ka.srcIP, kb.srcIP}} {
			if p[0] != p[1] {
				if p[0] < p[1] {
					return -1
				}
				return 1
			}
		}
		return int(ka.dstPort) - int(kb.dstPort)
	})
	return out
}

// PostureEdges totals the flows kept as PostureEdges does on ClickHouse;
// of more than MaxPostureSamples plaintext ids it keeps the smallest
// (ClickHouse keeps any).
func (m *Memory) PostureEdges(_ context.Context, from, to time.Time) ([]PostureEdge, error) {
	type key struct {
		postureKey
		reporter string
	}
	sums := map[key]*PostureEdge{}
	ids := map[key]map[string]bool{}
	lo, hi := from.Truncate(time.Second), to.Truncate(time.Second)
	m.mu.Lock()
	for i := range m.flows {
		f := &m.flows[i]
		at := time.UnixMilli(f.TimestampMs).UTC().Truncate(time.Second)
		if at.Before(lo) || !at.Before(hi) {
			continue
		}
		k := key{postureKey{f.Source.Principal, f.Source.Workload, f.Source.Namespace, plaintextIP(f),
			f.Destination.Workload, f.Destination.Namespace, f.Destination.Port}, f.Reporter.String()}
		e := sums[k]
		if e == nil {
			e = &PostureEdge{SourcePrincipal: k.srcPrincipal, SourceWorkload: k.srcWorkload, SourceNamespace: k.srcNamespace,
				SourceIP: k.srcIP, DestinationWorkload: k.dstWorkload, DestinationNamespace: k.dstNamespace,
				DestinationPort: k.dstPort, Reporter: k.reporter, FirstSeen: at, LastSeen: at}
			sums[k] = e
		}
		e.DestinationPrincipal = max(e.DestinationPrincipal, f.Destination.Principal)
		e.FirstSeen, e.LastSeen = minTime(e.FirstSeen, at), maxTime(e.LastSeen, at)
		n := uint64(f.Count)
		switch f.TLS {
		case models.TLSMutual:
			e.MTLS += n
		case models.TLSPlaintext:
			if e.PlaintextFirstSeen.IsZero() {
				e.PlaintextFirstSeen, e.PlaintextLastSeen = at, at
			}
			e.PlaintextFirstSeen, e.PlaintextLastSeen = minTime(e.PlaintextFirstSeen, at), maxTime(e.PlaintextLastSeen, at)
			e.Plaintext += n
			if f.RequestID != "" {
				if ids[k] == nil {
					ids[k] = map[string]bool{}
				}
				ids[k][f.RequestID] = true
			}
		default:
			e.Unknown += n
		}
	}
	m.mu.Unlock()
	out := make([]PostureEdge, 0, len(sums))
	for k, e := range sums {
		if e.Plaintext == 0 {
			// As on ClickHouse: plaintext flows of no requests bound nothing.
			e.PlaintextFirstSeen, e.PlaintextLastSeen = time.Time{}, time.Time{}
		}
		samples := slices.Sorted(maps.Keys(ids[k]))
		e.SampleRequestIDs = append([]string{}, samples[:min(len(samples), MaxPostureSamples)]...)
		out = append(out, *e)
	}
	return foldPostureReporters(out), nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
