package storage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/meshguard/meshguard/consumer"
)

// The queries least-privilege suggestions learn from (package policy):
// who called each destination, how, and whether that traffic was part of
// a detection; when each edge was first seen; and what Istio's dry-run
// said about staged ALLOW policies.

// SuggestQuery selects the traffic a suggestion learns from: calls into
// the destinations of Namespace (and Workload) between From and To, all
// namespaces when Namespace is empty.
type SuggestQuery struct {
	From, To  time.Time
	Namespace string
	Workload  string
	// Detected are the spans of traffic detections were about; flows in
	// one are returned apart, with Detected set.
	Detected []DetectedTraffic
}

// DetectedTraffic is one detection's traffic: its source's flows (to its
// destination, or to any when the detection names none) between From
// and To.
type DetectedTraffic struct {
	SourcePrincipal      string
	SourceNamespace      string
	SourceWorkload       string
	DestinationNamespace string
	DestinationWorkload  string
	From, To             time.Time
}

// MaxDetectedSpans bounds the spans one query carries (each is a few
// bound values in the query text, under the server's max_query_size).
const MaxDetectedSpans = 500

// CallerTraffic is what one caller sent one destination over the period,
// by method, path template and port, as one reporter logged it.
type CallerTraffic struct {
	DestinationNamespace string
	DestinationWorkload  string
	Reporter             string
	SourcePrincipal      string
	SourceNamespace      string
	SourceWorkload       string
	// SourceIP is kept only for callers with neither workload nor
	// principal, as edge_minute keys them.
	SourceIP string
	// Attested: the principal is the caller's mTLS certificate as the
	// record reported it (mtls, not filled from the cluster, not
	// contradicted by it).
	Attested     bool
	Method       string
	PathTemplate string
	Port         uint16
	// Detected: this traffic fell in a DetectedTraffic span.
	Detected  bool
	Requests  uint64
	FirstSeen time.Time
	LastSeen  time.Time
}

// CallerTrafficSource answers what suggestions learn from.
// Implementations are goroutine-safe.
type CallerTrafficSource interface {
	CallerTraffic(ctx context.Context, q SuggestQuery) ([]CallerTraffic, error)
	EdgesFirstSeen(ctx context.Context, q SuggestQuery) ([]EdgeFirstSeen, error)
	DetectionsBetween(ctx context.Context, from, to time.Time) ([]DetectionRow, error)
}

// EdgeFirstSeen is when an edge (keyed as edge_minute keys it) first
// carried traffic, over all stored history before the query's end.
type EdgeFirstSeen struct {
	DestinationNamespace string
	DestinationWorkload  string
	SourcePrincipal      string
	SourceNamespace      string
	SourceWorkload       string
	FirstSeen            time.Time
}

// destinationFilter renders q's destination filter with placeholders.
func destinationFilter(q SuggestQuery) (string, []any) {
	switch {
	case q.Namespace != "" && q.Workload != "":
		return " AND destination_namespace = ? AND destination_workload = ?", []any{q.Namespace, q.Workload}
	case q.Namespace != "":
		return " AND destination_namespace = ?", []any{q.Namespace}
	case q.Workload != "":
		return " AND destination_workload = ?", []any{q.Workload}
	}
	return "", nil
}

// detectedCondition renders the spans as one boolean expression with
// placeholders; spans that name no source match nothing.
func detectedCondition(spans []DetectedTraffic) (string, []any, error) {
	if len(spans) > MaxDetectedSpans {
		return "", nil, fmt.Errorf("suggest: %d detection spans in the period, more than %d; narrow --since or --namespace", len(spans), MaxDetectedSpans)
	}
	var parts []string
	var args []any
	for _, s := range spans {
		var who []string
		span := []any{s.From.Unix(), s.To.Unix()}
		if s.SourcePrincipal != "" {
			who = append(who, "source_principal = ?")
			span = append(span, s.SourcePrincipal)
		}
		if s.SourceWorkload != "" {
			who = append(who, "(source_namespace = ? AND source_workload = ?)")
			span = append(span, s.SourceNamespace, s.SourceWorkload)
		}
		if len(who) == 0 {
			continue
		}
		cond := "(ts >= toDateTime(?) AND ts <= toDateTime(?) AND (" + strings.Join(who, " OR ") + ")"
		if s.DestinationWorkload != "" {
			cond += " AND destination_namespace = ? AND destination_workload = ?"
			span = append(span, s.DestinationNamespace, s.DestinationWorkload)
		}
		parts = append(parts, cond+")")
		args = append(args, span...)
	}
	if len(parts) == 0 {
		return "0", nil, nil
	}
	return "(" + strings.Join(parts, " OR ") + ")", args, nil
}

// callerTrafficQuery groups flows by destination, caller, operation and
// whether they were detected. A principal counts as attested only as an
// mTLS peer identity the proxy reported: identity_resolved bit 4 is
// source_principal filled from the cluster (models.ResolvedSourcePrincipal).
func callerTrafficQuery(db, detected, dstFilter string) string {
	return `SELECT destination_namespace, destination_workload, reporter,
    source_principal, source_namespace, source_workload,
    if(source_workload = '' AND source_principal = '', source_ip, '') AS sip,
    toUInt8(mtls = 1 AND source_principal != '' AND bitAnd(identity_resolved, 4) = 0 AND identity_conflict = 0) AS attested,
    method, path_template, destination_port,
    toUInt8(` + detected + `) AS detected,
    sum(toUInt64(count)) AS requests, min(ts) AS first_seen, max(ts) AS last_seen
FROM ` + db + `.flows
WHERE ts >= toDateTime(?) AND ts < toDateTime(?)` + dstFilter + `
GROUP BY destination_namespace, destination_workload, reporter,
    source_principal, source_namespace, source_workload, sip, attested,
    method, path_template, destination_port, detected`
}

// CallerTraffic returns q's traffic grouped per destination, caller and
// operation.
func (c *ClickHouse) CallerTraffic(ctx context.Context, q SuggestQuery) ([]CallerTraffic, error) {
	detected, dargs, err := detectedCondition(q.Detected)
	if err != nil {
		return nil, consumer.Permanent(err)
	}
	filter, fargs := destinationFilter(q)
	args := append(dargs, q.From.Unix(), q.To.Unix())
	args = append(args, fargs...)
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	rows, err := c.conn.Query(ctx, callerTrafficQuery(c.db, detected, filter), args...)
	if err != nil {
		return nil, fmt.Errorf("caller traffic: %w", classify(err))
	}
	defer rows.Close()
	var out []CallerTraffic
	for rows.Next() {
		var t CallerTraffic
		var attested, det uint8
		if err := rows.Scan(&t.DestinationNamespace, &t.DestinationWorkload, &t.Reporter,
			&t.SourcePrincipal, &t.SourceNamespace, &t.SourceWorkload, &t.SourceIP, &attested,
			&t.Method, &t.PathTemplate, &t.Port, &det, &t.Requests, &t.FirstSeen, &t.LastSeen); err != nil {
			return nil, fmt.Errorf("caller traffic: %w", classify(err))
		}
		t.Attested, t.Detected = attested == 1, det == 1
		t.FirstSeen, t.LastSeen = fromDateTime(t.FirstSeen), fromDateTime(t.LastSeen)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("caller traffic: %w", classify(err))
	}
	return out, nil
}

func edgesFirstSeenQuery(db, dstFilter string) string {
	return `SELECT destination_namespace, destination_workload, source_principal, source_namespace, source_workload, min(minute)
FROM ` + db + `.edge_minute
WHERE minute < toDateTime(?)` + dstFilter + `
GROUP BY destination_namespace, destination_workload, source_principal, source_namespace, source_workload`
}

// EdgesFirstSeen returns when each edge into q's destinations was first
// seen, over everything stored before q.To (not only q's period: an
// edge's age is what the learning rule asks).
func (c *ClickHouse) EdgesFirstSeen(ctx context.Context, q SuggestQuery) ([]EdgeFirstSeen, error) {
	filter, fargs := destinationFilter(q)
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	rows, err := c.conn.Query(ctx, edgesFirstSeenQuery(c.db, filter), append([]any{q.To.Unix()}, fargs...)...)
	if err != nil {
		return nil, fmt.Errorf("edges first seen: %w", classify(err))
	}
	defer rows.Close()
	var out []EdgeFirstSeen
	for rows.Next() {
		var e EdgeFirstSeen
		if err := rows.Scan(&e.DestinationNamespace, &e.DestinationWorkload, &e.SourcePrincipal,
			&e.SourceNamespace, &e.SourceWorkload, &e.FirstSeen); err != nil {
			return nil, fmt.Errorf("edges first seen: %w", classify(err))
		}
		e.FirstSeen = fromDateTime(e.FirstSeen)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("edges first seen: %w", classify(err))
	}
	return out, nil
}

var _ CallerTrafficSource = (*ClickHouse)(nil)
