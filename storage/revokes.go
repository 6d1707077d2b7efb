package storage

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"
)

// The human brake, read back from the audit log: a revoke is an actions
// row every replica and every restart can read, so no replica re-applies
// what a person took back.

// Audit states and the automatic actor the brake looks for (the values of
// models.StateRevoked, models.StatePromoted and respond's actor).
const (
	stateRevoked  = "revoked"
	statePromoted = "promoted"
	actorAuto     = "meshguard"
)

// BrakeReader reads the human decisions about one action from the audit
// log. Implementations are goroutine-safe.
type BrakeReader interface {
	// HumanDecisions returns the rows of actionID written at or after
	// since whose state is revoked, or promoted by someone other than
	// meshguard (a person approving), oldest first.
	HumanDecisions(ctx context.Context, actionID string, since time.Time) ([]ActionRow, error)
}

// humanDecisionsQuery selects the newest revokes and approvals of one
// action, newest first (the caller reverses them); ORDER BY at alone
// would leave rows of one second in any order, so a revoke counts as
// later than an approval of the same second: the brake wins a tie.
func humanDecisionsQuery(db string) string {
	return `SELECT action_id, at, detection_id, kind, mode, state, actor, reason, target,
    policy_name, policy_namespace, expires_at
FROM ` + db + `.actions
WHERE action_id = ? AND at >= toDateTime(?)
  AND (state = '` + stateRevoked + `' OR (state = '` + statePromoted + `' AND actor != '` + actorAuto + `'))
ORDER BY at DESC, state = '` + stateRevoked + `' DESC
LIMIT 1000`
}

// HumanDecisions reads the revokes and approvals of actionID since since.
func (c *ClickHouse) HumanDecisions(ctx context.Context, actionID string, since time.Time) ([]ActionRow, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	rows, err := c.conn.Query(ctx, humanDecisionsQuery(c.db), actionID, since.UTC().Unix())
	if err != nil {
		return nil, fmt.Errorf("revokes of %s: %w", actionID, classify(err))
	}
	defer rows.Close()
	var out []ActionRow
	for rows.Next() {
		var a ActionRow
		if err := rows.Scan(&a.ActionID, &a.At, &a.DetectionID, &a.Kind, &a.Mode, &a.State, &a.Actor,
			&a.Reason, &a.Target, &a.PolicyName, &a.PolicyNamespace, &a.ExpiresAt); err != nil {
			return nil, fmt.Errorf("revokes of %s: %w", actionID, classify(err))
		}
		a.At, a.ExpiresAt = a.At.UTC(), fromDateTime(a.ExpiresAt)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("revokes of %s: %w", actionID, classify(err))
	}
	slices.Reverse(out)
	return out, nil
}

// HumanDecisions answers as the ClickHouse store does.
func (m *Memory) HumanDecisions(_ context.Context, actionID string, since time.Time) ([]ActionRow, error) {
	m.mu.Lock()
	var out []ActionRow
	for _, a := range m.actions {
		if a.ActionID != actionID || a.At.Before(since.Truncate(time.Second)) {
			continue
		}
		if a.State == stateRevoked || a.State == statePromoted && a.Actor != actorAuto {
			out = append(out, a)
		}
	}
	m.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool {
		ti, tj := out[i].At.Truncate(time.Second), out[j].At.Truncate(time.Second)
		if !ti.Equal(tj) {
			return ti.Before(tj)
		}
		return out[i].State != stateRevoked && out[j].State == stateRevoked
	})
	return out, nil
}
