package storage

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The audit log as a person reads it: the same decision written again and
// again (a "skipped" every tick of an ongoing detection, an "extended" at
// each update, its reason quoting the newest evidence) is one row with
// how often, from when to when, and the newest row's details.

// AuditFilter selects audit rows; empty fields match everything. Each
// field is matched exactly and passed to the server as a query parameter.
type AuditFilter struct {
	// Since bounds the rows read by time (zero: all).
	Since time.Time
	// Actor is who acted ("meshguard", a user name).
	Actor string
	// Action matches an action's id, its kind (block_edge, alert, ...)
	// or its state (applied, skipped, revoked, ...).
	Action string
	// Limit caps the groups returned, at most MaxRecent (0: 200).
	Limit int
}

// AuditGroup is the audit rows of one decision: one action's rows of one
// kind, mode, state and actor. Row is the newest of them (its reason,
// target and expiry; At is Last).
type AuditGroup struct {
	Row         ActionRow
	Count       uint64
	First, Last time.Time
}

// auditGroupLimit is AuditFilter.Limit's default.
const auditGroupLimit = 200

func (f AuditFilter) limit() int {
	if f.Limit <= 0 {
		return auditGroupLimit
	}
	return clampLimit(f.Limit)
}

// auditSummaryQuery groups the actions log by decision (see AuditGroup);
// the filter's conditions are placeholders, args their values in order.
// Rows of one second keep the value argMax meets first.
func auditSummaryQuery(db string, f AuditFilter) (string, []any) {
	var where []string
	var args []any
	if !f.Since.IsZero() {
		where = append(where, "at >= toDateTime(?)")
		args = append(args, f.Since.Unix())
	}
	if f.Actor != "" {
		where = append(where, "actor = ?")
		args = append(args, f.Actor)
	}
	if f.Action != "" {
		where = append(where, "(action_id = ? OR kind = ? OR state = ?)")
		args = append(args, f.Action, f.Action, f.Action)
	}
	q := `SELECT action_id, argMax(detection_id, at), kind, mode, state, actor, argMax(reason, at), argMax(target, at),
    argMax(policy_name, at), argMax(policy_namespace, at), argMax(expires_at, at), count() AS n, min(at), max(at) AS last
FROM ` + db + `.actions`
	if len(where) > 0 {
		q += "\nWHERE " + strings.Join(where, " AND ")
	}
	q += `
GROUP BY action_id, kind, mode, state, actor
ORDER BY last DESC, action_id DESC, state
LIMIT ` + strconv.Itoa(f.limit())
	return q, args
}

// AuditSummary returns the audit log's runs of identical rows that f
// selects, the most recent first.
func (c *ClickHouse) AuditSummary(ctx context.Context, f AuditFilter) ([]AuditGroup, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	q, args := auditSummaryQuery(c.db, f)
	rows, err := c.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("audit summary: %w", classify(err))
	}
	defer rows.Close()
	var out []AuditGroup
	for rows.Next() {
		var g AuditGroup
		a := &g.Row
		if err := rows.Scan(&a.ActionID, &a.DetectionID, &a.Kind, &a.Mode, &a.State, &a.Actor, &a.Reason, &a.Target,
			&a.PolicyName, &a.PolicyNamespace, &a.ExpiresAt, &g.Count, &g.First, &g.Last); err != nil {
			return nil, fmt.Errorf("audit summary: %w", classify(err))
		}
		g.First, g.Last, a.ExpiresAt = g.First.UTC(), g.Last.UTC(), fromDateTime(a.ExpiresAt)
		a.At = g.Last
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit summary: %w", classify(err))
	}
	return out, nil
}

// AuditSummary groups the actions kept as the ClickHouse query does.
func (m *Memory) AuditSummary(_ context.Context, f AuditFilter) ([]AuditGroup, error) {
	m.mu.Lock()
	rows := append([]ActionRow(nil), m.actions...)
	m.mu.Unlock()
	type decision struct{ id, kind, mode, state, actor string }
	at := map[decision]int{}
	var out []AuditGroup
	for _, a := range rows {
		t := a.At.UTC().Truncate(time.Second)
		if !f.Since.IsZero() && t.Before(f.Since.Truncate(time.Second)) || f.Actor != "" && a.Actor != f.Actor ||
			f.Action != "" && a.ActionID != f.Action && a.Kind != f.Action && a.State != f.Action {
			continue
		}
		a.ExpiresAt = fromDateTime(a.ExpiresAt.UTC().Truncate(time.Second))
		k := decision{a.ActionID, a.Kind, a.Mode, a.State, a.Actor}
		i, ok := at[k]
		if !ok {
			i = len(out)
			at[k] = i
			out = append(out, AuditGroup{Row: a, First: t, Last: t})
		}
		g := &out[i]
		g.Count++
		if t.Before(g.First) {
			g.First = t
		}
		if t.After(g.Last) {
			g.Last, g.Row = t, a
		}
	}
	for i := range out {
		out[i].Row.At = out[i].Last
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.Last.Equal(b.Last) {
			return a.Last.After(b.Last)
		}
		if a.Row.ActionID != b.Row.ActionID {
			return a.Row.ActionID > b.Row.ActionID
		}
		return a.Row.State < b.Row.State
	})
	return out[:min(len(out), f.limit())], nil
}
