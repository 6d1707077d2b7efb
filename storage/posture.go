package storage

import (
	"context"
	"fmt"
	"slices"
	"time"
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

// postureQuery totals flows per edge, port and reporter. The span is
// bound as parameters; MaxPostureSamples is a constant of ours.
func postureQuery(db string) string {
	return fmt.Sprintf(`SELECT source_principal, source_workload, source_namespace,
    if(source_workload = '' AND source_principal = '', source_ip, '') AS sip,
    max(destination_principal), destination_workload, destination_namespace, destination_port, reporter,
    sumIf(toUInt64(count), mtls = 1), sumIf(toUInt64(count), mtls = 2), sumIf(toUInt64(count), mtls NOT IN (1, 2)),
    min(ts), max(ts), minIf(ts, mtls = 2), maxIf(ts, mtls = 2),
    groupUniqArrayIf(%d)(request_id, mtls = 2 AND request_id != '')
FROM %s.flows
WHERE ts >= toDateTime(?) AND ts < toDateTime(?)
GROUP BY source_principal, source_workload, source_namespace, sip,
    destination_workload, destination_namespace, destination_port, reporter`, MaxPostureSamples, db)
}

// PostureEdges returns every edge with a flow in [from, to) with its
// requests by TLS state. A batch that ingest retried after a partial
// write can count twice (see ConsumeFlows), as it does in edge_minute.
func (c *ClickHouse) PostureEdges(ctx context.Context, from, to time.Time) ([]PostureEdge, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	rows, err := c.conn.Query(ctx, postureQuery(c.db), from.Unix(), to.Unix())
	if err != nil {
		return nil, fmt.Errorf("posture edges: %w", classify(err))
	}
	defer rows.Close()
	var out []PostureEdge
	for rows.Next() {
		var e PostureEdge
		if err := rows.Scan(&e.SourcePrincipal, &e.SourceWorkload, &e.SourceNamespace, &e.SourceIP,
			&e.DestinationPrincipal, &e.DestinationWorkload, &e.DestinationNamespace, &e.DestinationPort, &e.Reporter,
			&e.MTLS, &e.Plaintext, &e.Unknown, &e.FirstSeen, &e.LastSeen,
			&e.PlaintextFirstSeen, &e.PlaintextLastSeen, &e.SampleRequestIDs); err != nil {
			return nil, fmt.Errorf("posture edges: %w", classify(err))
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
		return nil, fmt.Errorf("posture edges: %w", classify(err))
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
