package respond

import (
	"context"
	"fmt"
	"time"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/storage"
)

// A revoke is a person's brake: it holds for respond.revoke_hold on every
// replica and across restarts, because it is read back from the audit log
// (where every revoke, from Slack, the API or the CLI, is written) rather
// than kept in one process. Only a person approving the action again
// lifts it before then.

// held returns why action id may not be applied now, or "". Callers hold
// r.mu.
func (r *Responder) held(ctx context.Context, id string, now time.Time) string {
	hold := func(actor string, at time.Time) string {
		return fmt.Sprintf("revoked by %s at %s; not re-applied before %s unless a person approves it again (respond.revoke_hold)",
			actor, at.UTC().Format(time.RFC3339), at.Add(r.cfg.RevokeHold).UTC().Format(time.RFC3339))
	}
	local, hasLocal := r.revoked[id]
	if hasLocal && !now.Before(local.at.Add(r.cfg.RevokeHold)) {
		delete(r.revoked, id)
		hasLocal = false
	}
	if r.brake == nil {
		if hasLocal {
			return hold(local.actor, local.at)
		}
		return ""
	}
	rows, err := r.brake.HumanDecisions(ctx, id, now.Add(-r.cfg.RevokeHold))
	if err != nil {
		r.log.Error("respond: reading revokes failed; not applying", "action_id", id, "err", err)
		return "revokes could not be read, so none can be ruled out: " + err.Error()
	}
	if len(rows) == 0 {
		if hasLocal {
			// This process's revoke, its audit row not (yet) readable.
			return hold(local.actor, local.at)
		}
		return ""
	}
	last := rows[len(rows)-1]
	if last.State != string(models.StateRevoked) {
		delete(r.revoked, id)
		return ""
	}
	return hold(last.Actor, last.At)
}

// liftHold records that actor approves action id again after a revoke, so
// that the next detection may apply it. It returns ErrNotFound when no
// revoke holds the action.
func (r *Responder) liftHold(ctx context.Context, id, actor string) (models.Action, error) {
	now := r.now()
	why := r.held(ctx, id, now)
	if why == "" {
		return models.Action{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	a := models.Action{ID: id, At: now, Actor: actor, State: models.StatePromoted, Mode: models.ModeDryRun,
		Reason: "approved again by " + actor + ": the revoke no longer holds; the next detection applies it (" + why + ")"}
	if r.brake != nil {
		if rows, err := r.brake.HumanDecisions(ctx, id, now.Add(-r.cfg.RevokeHold)); err == nil && len(rows) > 0 {
			last := rows[len(rows)-1]
			a.DetectionID, a.Kind, a.Target = last.DetectionID, models.ActionKind(last.Kind), last.Target
			if !last.At.Before(now.Truncate(time.Second)) {
				// The log orders by the second, a revoke winning a tie:
				// the approval is written in the next one.
				a.At = last.At.Truncate(time.Second).Add(time.Second)
			}
		}
	}
	delete(r.revoked, id)
	r.record(ctx, a, models.Detection{ID: a.DetectionID})
	return a, nil
}

var (
	_ storage.BrakeReader = (*storage.ClickHouse)(nil)
	_ storage.BrakeReader = (*storage.Memory)(nil)
)
