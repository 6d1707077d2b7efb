package storage

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/meshguard/meshguard/models"
)

// Reads for the dashboard's service graph: every edge's requests, errors
// and transport security over a span, and which workload each Service
// host stands for. Both read only what the flows carry (as reported, or
// filled by identity resolution); neither guesses. Both read the edge
// rollups (posture_rollup.go).

// maxGraphRows caps the rows GraphEdges reads (one per edge and
// reporter), the busiest first, as maxEdgeRows does for EdgeSummary.
const maxGraphRows = 20000

// GraphEdge is one edge's traffic over a span as one side (Reporter) saw
// it. The key is edge_minute's: a source is its workload, else its
// principal, else its IP.
type GraphEdge struct {
	SourcePrincipal string
	SourceWorkload  string
	SourceNamespace string
	// SourceIP is set only for callers with neither workload nor principal.
	SourceIP string

	DestinationWorkload  string
	DestinationNamespace string
	DestinationService   string

	Reporter string
	// Requests is the sum of the flows' Count; Errors5xx and Errors4xx
	// the requests answered so.
	Requests, Errors5xx, Errors4xx uint64
	// MTLS, Plaintext and UnknownTLS split Requests by what the records
	// showed of transport security (models.TLS).
	MTLS, Plaintext, UnknownTLS uint64
	// FirstSeen and LastSeen are the oldest and the newest flow's time,
	// to the second.
	FirstSeen, LastSeen time.Time
}

// ServiceWorkload says that requests to Service host Service (in
// Namespace) reached Workload: learned from flows whose destination
// workload came with the host, from the destination's own proxy or from
// identity resolution (models.ResolvedDestinationWorkload). Requests is
// how many did; flows whose claim contradicted the cluster are left out.
type ServiceWorkload struct {
	Namespace, Service, Workload string
	Requests                     uint64
}

// graphEdgesQuery totals the rollups (see rollupSource) per edge and
// reporter, the busiest first.
var graphEdgesQuery = `SELECT source_principal, source_workload, source_namespace, source_ip,
    destination_workload, destination_namespace, destination_service, reporter,
    sumMerge(requests) AS r, sumMerge(responses_5xx), sumMerge(responses_4xx),
    sumMerge(mtls_requests), sumMerge(plaintext_requests), sumMerge(unknown_requests),
    toDateTime(minMerge(first_seen), 'UTC'), toDateTime(maxMerge(last_seen), 'UTC')
FROM (
    {rollup}
)
GROUP BY source_principal, source_workload, source_namespace, source_ip,
    destination_workload, destination_namespace, destination_service, reporter
ORDER BY r DESC
LIMIT ` + strconv.Itoa(maxGraphRows)

var graphEdgesStates = []string{"requests", "responses_5xx", "responses_4xx",
	"mtls_requests", "plaintext_requests", "unknown_requests", "first_seen", "last_seen"}

// GraphEdges returns every edge with flows at or after from and before
// to, per reporter, the busiest first.
func (c *ClickHouse) GraphEdges(ctx context.Context, from, to time.Time) ([]GraphEdge, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	q, ok, err := c.rollupQuery(ctx, graphEdgesQuery, from, to, graphEdgesStates, false)
	if err != nil || !ok {
		return nil, wrapErr("graph edges", err)
	}
	rows, err := c.conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("graph edges: %w", classify(err))
	}
	defer rows.Close()
	out, err := scanGraphEdges(rows)
	if err != nil {
		return nil, fmt.Errorf("graph edges: %w", err)
	}
	return out, nil
}

// scanGraphEdges reads rows of graphEdgesQuery's columns.
func scanGraphEdges(rows driver.Rows) ([]GraphEdge, error) {
	var out []GraphEdge
	for rows.Next() {
		var e GraphEdge
		if err := rows.Scan(&e.SourcePrincipal, &e.SourceWorkload, &e.SourceNamespace, &e.SourceIP,
			&e.DestinationWorkload, &e.DestinationNamespace, &e.DestinationService, &e.Reporter,
			&e.Requests, &e.Errors5xx, &e.Errors4xx, &e.MTLS, &e.Plaintext, &e.UnknownTLS, &e.FirstSeen, &e.LastSeen); err != nil {
			return nil, classify(err)
		}
		e.FirstSeen, e.LastSeen = e.FirstSeen.UTC(), e.LastSeen.UTC()
		out = append(out, e)
	}
	return out, classify(rows.Err())
}

// serviceWorkloadsQuery totals the rollups' service evidence (see
// serviceEvidence) per Service host and workload.
const serviceWorkloadsQuery = `SELECT destination_namespace, destination_service, destination_workload, sumMerge(service_requests)
FROM (
    {rollup}
)
GROUP BY destination_namespace, destination_service, destination_workload
HAVING sumMerge(service_flows) > 0
ORDER BY destination_namespace, destination_service, destination_workload`

var serviceWorkloadsStates = []string{"service_flows", "service_requests"}

// ServiceWorkloads returns which workloads each Service host reached
// between from and to (see ServiceWorkload), by namespace and host.
func (c *ClickHouse) ServiceWorkloads(ctx context.Context, from, to time.Time) ([]ServiceWorkload, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	q, ok, err := c.rollupQuery(ctx, serviceWorkloadsQuery, from, to, serviceWorkloadsStates, false)
	if err != nil || !ok {
		return nil, wrapErr("service workloads", err)
	}
	rows, err := c.conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("service workloads: %w", classify(err))
	}
	defer rows.Close()
	out, err := scanServiceWorkloads(rows)
	if err != nil {
		return nil, fmt.Errorf("service workloads: %w", err)
	}
	return out, nil
}

// scanServiceWorkloads reads rows of serviceWorkloadsQuery's columns.
func scanServiceWorkloads(rows driver.Rows) ([]ServiceWorkload, error) {
	var out []ServiceWorkload
	for rows.Next() {
		var s ServiceWorkload
		if err := rows.Scan(&s.Namespace, &s.Service, &s.Workload, &s.Requests); err != nil {
			return nil, classify(err)
		}
		out = append(out, s)
	}
	return out, classify(rows.Err())
}

// graphKey is a GraphEdge's key, reporter included.
type graphKey struct {
	edgeKey
	reporter string
}

// GraphEdges totals the flows kept as GraphEdges does on ClickHouse.
func (m *Memory) GraphEdges(_ context.Context, from, to time.Time) ([]GraphEdge, error) {
	sums := map[graphKey]*GraphEdge{}
	m.mu.Lock()
	for i := range m.flows {
		f := &m.flows[i]
		at := time.UnixMilli(f.TimestampMs).UTC().Truncate(time.Second)
		if at.Before(from.Truncate(time.Second)) || !at.Before(to.Truncate(time.Second)) {
			continue
		}
		k := graphKey{edgeKey{f.Source.Principal, f.Source.Workload, f.Source.Namespace, plaintextIP(f),
			f.Destination.Workload, f.Destination.Namespace, f.Destination.Service}, f.Reporter.String()}
		e := sums[k]
		if e == nil {
			e = &GraphEdge{SourcePrincipal: k.srcPrincipal, SourceWorkload: k.srcWorkload, SourceNamespace: k.srcNamespace,
				SourceIP: k.srcIP, DestinationWorkload: k.dstWorkload, DestinationNamespace: k.dstNamespace,
				DestinationService: k.dstService, Reporter: k.reporter}
			sums[k] = e
		}
		n := uint64(f.Count)
		e.Requests += n
		switch {
		case f.ResponseCode >= 500 && f.ResponseCode < 600:
			e.Errors5xx += n
		case f.ResponseCode >= 400 && f.ResponseCode < 500:
			e.Errors4xx += n
		}
		switch f.TLS {
		case models.TLSMutual:
			e.MTLS += n
		case models.TLSPlaintext:
			e.Plaintext += n
		default:
			e.UnknownTLS += n
		}
		if at.After(e.LastSeen) {
			e.LastSeen = at
		}
		if e.FirstSeen.IsZero() || at.Before(e.FirstSeen) {
			e.FirstSeen = at
		}
	}
	m.mu.Unlock()
	out := make([]GraphEdge, 0, len(sums))
	for _, e := range sums {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Requests != out[j].Requests {
			return out[i].Requests > out[j].Requests
		}
		if ki, kj := out[i].key(), out[j].key(); ki != kj {
			return lessKey(ki, kj)
		}
		return out[i].Reporter < out[j].Reporter
	})
	return out[:min(len(out), maxGraphRows)], nil
}

func (e *GraphEdge) key() edgeKey {
	return edgeKey{e.SourcePrincipal, e.SourceWorkload, e.SourceNamespace, e.SourceIP,
		e.DestinationWorkload, e.DestinationNamespace, e.DestinationService}
}

// plaintextIP is a flow's source IP as edge keys keep it: only for a
// caller with neither workload nor principal.
func plaintextIP(f *models.Flow) string {
	if f.Source.Workload == "" && f.Source.Principal == "" && f.Source.IP.IsValid() {
		return f.Source.IP.String()
	}
	return ""
}

// ServiceWorkloads answers as the ClickHouse query does, from the flows
// kept.
func (m *Memory) ServiceWorkloads(_ context.Context, from, to time.Time) ([]ServiceWorkload, error) {
	type key struct{ ns, svc, wl string }
	sums := map[key]uint64{}
	m.mu.Lock()
	for i := range m.flows {
		f := &m.flows[i]
		at := time.UnixMilli(f.TimestampMs).UTC().Truncate(time.Second)
		if at.Before(from.Truncate(time.Second)) || !at.Before(to.Truncate(time.Second)) ||
			f.Destination.Service == "" || f.Destination.Workload == "" || f.IdentityConflict ||
			f.Reporter != models.ReporterDestination && !f.Resolved.Has(models.ResolvedDestinationWorkload) {
			continue
		}
		sums[key{f.Destination.Namespace, f.Destination.Service, f.Destination.Workload}] += uint64(f.Count)
	}
	m.mu.Unlock()
	out := make([]ServiceWorkload, 0, len(sums))
	for k, n := range sums {
		out = append(out, ServiceWorkload{Namespace: k.ns, Service: k.svc, Workload: k.wl, Requests: n})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		return a.Workload < b.Workload
	})
	return out, nil
}
