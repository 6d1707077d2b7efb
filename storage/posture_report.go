package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Reads for the compliance report (package report): the mTLS trend per
// day, and the detections and audit rows of a span.

// PostureDay is one UTC day's requests by TLS state, one side per edge
// (as PostureEdges folds them).
type PostureDay struct {
	Day                      time.Time
	MTLS, Plaintext, Unknown uint64
}

// postureTrendQuery totals each day's edges per reporter from the rollups
// (see rollupSource), keeps the destination's side of an edge when it
// logged it (else the source's, else the unknown reporter's), and sums
// the days.
const postureTrendQuery = `SELECT day, sum(m), sum(p), sum(u) FROM (
    SELECT day,
        multiIf(countIf(reporter = 'destination') > 0, sumIf(m, reporter = 'destination'),
                countIf(reporter = 'source') > 0, sumIf(m, reporter = 'source'), sum(m)) AS m,
        multiIf(countIf(reporter = 'destination') > 0, sumIf(p, reporter = 'destination'),
                countIf(reporter = 'source') > 0, sumIf(p, reporter = 'source'), sum(p)) AS p,
        multiIf(countIf(reporter = 'destination') > 0, sumIf(u, reporter = 'destination'),
                countIf(reporter = 'source') > 0, sumIf(u, reporter = 'source'), sum(u)) AS u
    FROM (
        SELECT day, reporter, source_principal, source_workload, source_namespace, source_ip,
            destination_workload, destination_namespace, destination_port,
            sumMerge(mtls_requests) AS m, sumMerge(plaintext_requests) AS p, sumMerge(unknown_requests) AS u
        FROM (
            {rollup}
        )
        GROUP BY day, reporter, source_principal, source_workload, source_namespace, source_ip,
            destination_workload, destination_namespace, destination_port
    )
    GROUP BY day, source_principal, source_workload, source_namespace, source_ip,
        destination_workload, destination_namespace, destination_port
)
GROUP BY day
ORDER BY day`

var postureTrendStates = []string{"mtls_requests", "plaintext_requests", "unknown_requests"}

// PostureTrend returns the requests by TLS state of each UTC day with
// flows in [from, to), oldest first.
func (c *ClickHouse) PostureTrend(ctx context.Context, from, to time.Time) ([]PostureDay, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	q, ok, err := c.rollupQuery(ctx, postureTrendQuery, from, to, postureTrendStates, true)
	if err != nil || !ok {
		return nil, wrapErr("posture trend", err)
	}
	rows, err := c.conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("posture trend: %w", classify(err))
	}
	defer rows.Close()
	out, err := scanPostureDays(rows)
	if err != nil {
		return nil, fmt.Errorf("posture trend: %w", err)
	}
	return out, nil
}

// scanPostureDays reads rows of postureTrendQuery's columns.
func scanPostureDays(rows driver.Rows) ([]PostureDay, error) {
	var out []PostureDay
	for rows.Next() {
		var d PostureDay
		if err := rows.Scan(&d.Day, &d.MTLS, &d.Plaintext, &d.Unknown); err != nil {
			return nil, classify(err)
		}
		d.Day = time.Date(d.Day.Year(), d.Day.Month(), d.Day.Day(), 0, 0, 0, 0, time.UTC)
		out = append(out, d)
	}
	return out, classify(rows.Err())
}

// DetectionsBetween returns the newest version of every detection whose
// windows overlap [from, to), oldest detected first.
func (c *ClickHouse) DetectionsBetween(ctx context.Context, from, to time.Time) ([]DetectionRow, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	q := detectionSelect(c.db) + `
WHERE window_end >= toDateTime(?) AND window_start < toDateTime(?)
ORDER BY detected_at, detection_id`
	rows, err := c.conn.Query(ctx, q, from.Unix(), to.Unix())
	if err != nil {
		return nil, fmt.Errorf("detections between: %w", classify(err))
	}
	defer rows.Close()
	var out []DetectionRow
	for rows.Next() {
		d, err := scanDetection(rows)
		if err != nil {
			return nil, fmt.Errorf("detections between: %w", classify(err))
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("detections between: %w", classify(err))
	}
	return out, nil
}

// ActionsBetween returns every audit row written in [from, to), oldest
// first.
func (c *ClickHouse) ActionsBetween(ctx context.Context, from, to time.Time) ([]ActionRow, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	q := `SELECT action_id, at, detection_id, kind, mode, state, actor, reason, target,
    policy_name, policy_namespace, expires_at
FROM ` + c.db + `.actions
WHERE at >= toDateTime(?) AND at < toDateTime(?)
ORDER BY at, action_id`
	rows, err := c.conn.Query(ctx, q, from.Unix(), to.Unix())
	if err != nil {
		return nil, fmt.Errorf("actions between: %w", classify(err))
	}
	defer rows.Close()
	out, err := scanActions(rows)
	if err != nil {
		return nil, fmt.Errorf("actions between: %w", err)
	}
	return out, nil
}

// scanActions reads rows of the actions table's columns in their order
// (recentActionsQuery's).
func scanActions(rows driver.Rows) ([]ActionRow, error) {
	var out []ActionRow
	for rows.Next() {
		var a ActionRow
		if err := rows.Scan(&a.ActionID, &a.At, &a.DetectionID, &a.Kind, &a.Mode, &a.State, &a.Actor,
			&a.Reason, &a.Target, &a.PolicyName, &a.PolicyNamespace, &a.ExpiresAt); err != nil {
			return nil, classify(err)
		}
		a.At, a.ExpiresAt = a.At.UTC(), fromDateTime(a.ExpiresAt)
		out = append(out, a)
	}
	return out, classify(rows.Err())
}
