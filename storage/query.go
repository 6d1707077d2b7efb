package storage

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"
)

// Reads for the HTTP API and the dashboard: the newest detections and
// actions, and every edge's totals over a recent span. Both stores answer
// them the same way; the ClickHouse queries run on 18.16 and on modern
// servers.

// MaxRecent caps the limit of RecentDetections and RecentActions.
const MaxRecent = 10000

// maxEdgeRows caps the rows EdgeSummary reads (one per edge and reporter),
// the busiest first, so that a mesh with a huge number of edges (an IP
// scan) cannot make one dashboard refresh read them all.
const maxEdgeRows = 20000

// EdgeSummary is one edge's totals over a span, as one side (reporter) saw
// them: Istio logs a request on both sides, so the side that saw the most
// stands for the edge and the two are never summed. The key mirrors
// edge_minute's.
type EdgeSummary struct {
	SourcePrincipal string
	SourceWorkload  string
	SourceNamespace string
	// SourceIP is set only for callers with neither workload nor principal.
	SourceIP string

	DestinationWorkload  string
	DestinationNamespace string
	DestinationService   string

	// Reporter is the side the counts come from.
	Reporter string
	EdgeCounts
	// LastSeen is the start of the newest minute the edge had traffic in.
	LastSeen time.Time
}

// clampLimit keeps a limit within [1, MaxRecent].
func clampLimit(limit int) int { return min(max(limit, 1), MaxRecent) }

// recentDetectionsQuery reads the newest version of the newest detections:
// FINAL collapses the versions merges have not yet (see detectionQuery).
// limit is an int the caller clamped, so formatting it into the text is
// safe.
func recentDetectionsQuery(db string, limit int) string {
	return detectionSelect(db) + `
ORDER BY detected_at DESC, detection_id
LIMIT ` + strconv.Itoa(limit)
}

// RecentDetections returns the newest version of the limit most recently
// detected detections, newest first.
func (c *ClickHouse) RecentDetections(ctx context.Context, limit int) ([]DetectionRow, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	rows, err := c.conn.Query(ctx, recentDetectionsQuery(c.db, clampLimit(limit)))
	if err != nil {
		return nil, fmt.Errorf("recent detections: %w", classify(err))
	}
	defer rows.Close()
	var out []DetectionRow
	for rows.Next() {
		d, err := scanDetection(rows)
		if err != nil {
			return nil, fmt.Errorf("recent detections: %w", classify(err))
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("recent detections: %w", classify(err))
	}
	return out, nil
}

// recentActionsQuery reads the newest rows of the audit log.
func recentActionsQuery(db string, limit int) string {
	return `SELECT action_id, at, detection_id, kind, mode, state, actor, reason, target,
    policy_name, policy_namespace, expires_at
FROM ` + db + `.actions
ORDER BY at DESC, action_id DESC
LIMIT ` + strconv.Itoa(limit)
}

// RecentActions returns the limit newest rows of the actions audit log,
// newest first.
func (c *ClickHouse) RecentActions(ctx context.Context, limit int) ([]ActionRow, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	rows, err := c.conn.Query(ctx, recentActionsQuery(c.db, clampLimit(limit)))
	if err != nil {
		return nil, fmt.Errorf("recent actions: %w", classify(err))
	}
	defer rows.Close()
	out, err := scanActions(rows)
	if err != nil {
		return nil, fmt.Errorf("recent actions: %w", err)
	}
	return out, nil
}

// edgeSummaryQuery totals edge_minute per edge and reporter for minutes
// from the bound time on; rows of one key may sit in unmerged parts, so
// it groups and merges the states (as edgeMinuteQuery does).
func edgeSummaryQuery(db string) string {
	return `SELECT source_principal, source_workload, source_namespace, source_ip,
    destination_workload, destination_namespace, destination_service, reporter,
    sumMerge(requests) AS r, sumMerge(responses_2xx), sumMerge(responses_3xx),
    sumMerge(responses_4xx), sumMerge(responses_5xx),
    sumMerge(responses_401), sumMerge(responses_403),
    sumMerge(bytes_sent), sumMerge(bytes_received), max(minute)
FROM ` + db + `.edge_minute
WHERE minute >= toDateTime(?)
GROUP BY source_principal, source_workload, source_namespace, source_ip,
    destination_workload, destination_namespace, destination_service, reporter
ORDER BY r DESC
LIMIT ` + strconv.Itoa(maxEdgeRows)
}

// EdgeSummary returns every edge that had traffic in a minute starting at
// or after since, with its totals from then on (see EdgeSummary), the
// busiest first.
func (c *ClickHouse) EdgeSummary(ctx context.Context, since time.Time) ([]EdgeSummary, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	rows, err := c.conn.Query(ctx, edgeSummaryQuery(c.db), since.Unix())
	if err != nil {
		return nil, fmt.Errorf("edge summary: %w", classify(err))
	}
	defer rows.Close()
	var out []EdgeSummary
	for rows.Next() {
		var e EdgeSummary
		if err := rows.Scan(&e.SourcePrincipal, &e.SourceWorkload, &e.SourceNamespace, &e.SourceIP,
			&e.DestinationWorkload, &e.DestinationNamespace, &e.DestinationService, &e.Reporter,
			&e.Requests, &e.Responses2xx, &e.Responses3xx, &e.Responses4xx, &e.Responses5xx,
			&e.Responses401, &e.Responses403, &e.BytesSent, &e.BytesReceived, &e.LastSeen); err != nil {
			return nil, fmt.Errorf("edge summary: %w", classify(err))
		}
		e.LastSeen = e.LastSeen.UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("edge summary: %w", classify(err))
	}
	return foldReporters(out), nil
}

// edgeKey is an EdgeSummary's edge without the reporter.
type edgeKey struct {
	srcPrincipal, srcWorkload, srcNamespace, srcIP string
	dstWorkload, dstNamespace, dstService          string
}

func keyOf(e *EdgeSummary) edgeKey {
	return edgeKey{e.SourcePrincipal, e.SourceWorkload, e.SourceNamespace, e.SourceIP,
		e.DestinationWorkload, e.DestinationNamespace, e.DestinationService}
}

// foldReporters keeps, per edge, the side that saw the most requests (the
// destination on a tie: it sees what actually arrived), with the newest
// LastSeen of both, sorted busiest first.
func foldReporters(rows []EdgeSummary) []EdgeSummary {
	best := map[edgeKey]int{}
	var out []EdgeSummary
	for _, e := range rows {
		k := keyOf(&e)
		i, ok := best[k]
		if !ok {
			best[k] = len(out)
			out = append(out, e)
			continue
		}
		old := &out[i]
		last := old.LastSeen
		if e.LastSeen.After(last) {
			last = e.LastSeen
		}
		if e.Requests > old.Requests || e.Requests == old.Requests && e.Reporter == "destination" {
			*old = e
		}
		old.LastSeen = last
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Requests != out[j].Requests {
			return out[i].Requests > out[j].Requests
		}
		return lessKey(keyOf(&out[i]), keyOf(&out[j]))
	})
	return out
}

func lessKey(a, b edgeKey) bool {
	as := [...]string{a.dstNamespace, a.dstWorkload, a.dstService, a.srcNamespace, a.srcWorkload, a.srcPrincipal, a.srcIP}
	bs := [...]string{b.dstNamespace, b.dstWorkload, b.dstService, b.srcNamespace, b.srcWorkload, b.srcPrincipal, b.srcIP}
	for i := range as {
		if as[i] != bs[i] {
			return as[i] < bs[i]
		}
	}
	return false
}

// RecentDetections returns the limit most recently detected detections,
// newest first.
func (m *Memory) RecentDetections(_ context.Context, limit int) ([]DetectionRow, error) {
	m.mu.Lock()
	out := make([]DetectionRow, 0, len(m.detections))
	for _, d := range m.detections {
		out = append(out, d)
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].DetectedAt.Equal(out[j].DetectedAt) {
			return out[i].DetectedAt.After(out[j].DetectedAt)
		}
		return out[i].DetectionID < out[j].DetectionID
	})
	return out[:min(len(out), clampLimit(limit))], nil
}

// RecentActions returns the limit newest actions, newest first (the later
// written first among equal times).
func (m *Memory) RecentActions(_ context.Context, limit int) ([]ActionRow, error) {
	m.mu.Lock()
	out := make([]ActionRow, len(m.actions))
	for i, a := range m.actions {
		out[len(out)-1-i] = a
	}
	m.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.After(out[j].At) })
	return out[:min(len(out), clampLimit(limit))], nil
}

// EdgeSummary totals the flows kept as edge_minute would, for minutes
// starting at or after since.
func (m *Memory) EdgeSummary(_ context.Context, since time.Time) ([]EdgeSummary, error) {
	type key struct {
		edgeKey
		reporter string
	}
	from := since.Unix()
	sums := map[key]*EdgeSummary{}
	m.mu.Lock()
	for i := range m.flows {
		f := &m.flows[i]
		minute := time.UnixMilli(f.TimestampMs).UTC().Truncate(time.Minute)
		if minute.Unix() < from {
			continue
		}
		ip := ""
		if f.Source.Workload == "" && f.Source.Principal == "" && f.Source.IP.IsValid() {
			ip = f.Source.IP.String()
		}
		k := key{edgeKey{f.Source.Principal, f.Source.Workload, f.Source.Namespace, ip,
			f.Destination.Workload, f.Destination.Namespace, f.Destination.Service}, f.Reporter.String()}
		e := sums[k]
		if e == nil {
			e = &EdgeSummary{SourcePrincipal: k.srcPrincipal, SourceWorkload: k.srcWorkload,
				SourceNamespace: k.srcNamespace, SourceIP: ip, DestinationWorkload: k.dstWorkload,
				DestinationNamespace: k.dstNamespace, DestinationService: k.dstService, Reporter: k.reporter}
			sums[k] = e
		}
		e.Add(f)
		if minute.After(e.LastSeen) {
			e.LastSeen = minute
		}
	}
	m.mu.Unlock()
	rows := make([]EdgeSummary, 0, len(sums))
	for _, e := range sums {
		rows = append(rows, *e)
	}
	// A deterministic order before folding, as the server's ORDER BY.
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Requests != rows[j].Requests {
			return rows[i].Requests > rows[j].Requests
		}
		if ki, kj := keyOf(&rows[i]), keyOf(&rows[j]); ki != kj {
			return lessKey(ki, kj)
		}
		return rows[i].Reporter < rows[j].Reporter
	})
	return foldReporters(rows[:min(len(rows), maxEdgeRows)]), nil
}
