package respond

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/meshguard/meshguard/models"
)

// Reconcile runs one pass of the background work, on the state the
// backend holds (so it picks up where a previous process left off):
// expired actions are deleted, staged ones whose promote-at has passed
// are promoted (or held, saying why). Only the leader reconciles.
func (r *Responder) Reconcile(ctx context.Context) error {
	if !r.leading.Load() {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	ps, listErr := r.backend.List(ctx, r.cfg.Instance, "")
	if listErr != nil && len(ps) == 0 {
		return listErr
	}
	var errs []error
	if listErr != nil {
		// Objects that do not read back are left alone, and said so.
		errs = append(errs, listErr)
	}
	for _, g := range groups(ps) {
		a := models.Action{At: now, Actor: actorMeshguard}
		fill(&a, g)
		d := detectionOf(g)
		switch {
		case !now.Before(a.ExpiresAt):
			a.State = models.StateExpired
			a.Reason = "TTL expired at " + a.ExpiresAt.UTC().Format(time.RFC3339)
			if err := r.deleteAll(ctx, g); err != nil {
				a.State, a.Reason = models.StateFailed, "expire: "+err.Error()
				errs = append(errs, err)
			}
			r.record(ctx, a, d)
		case a.Mode == models.ModeDryRun && due(g, now):
			if err := r.promote(ctx, a, d, g, true); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// due reports whether a staged action's promote-at has passed.
func due(g []Policy, now time.Time) bool {
	for _, p := range g {
		if !p.Meta.PromoteAt.IsZero() && !now.Before(p.Meta.PromoteAt) {
			return true
		}
	}
	return false
}

func (r *Responder) deleteAll(ctx context.Context, g []Policy) error {
	var errs []error
	for _, p := range g {
		if err := r.backend.Delete(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// promote takes a dry-run action to enforce. Automatic promotion is held
// (and stops being retried) when the global mode is no longer enforce or
// the blast radius is above the limit; a person approving overrides both.
func (r *Responder) promote(ctx context.Context, a models.Action, d models.Detection, g []Policy, auto bool) error {
	blast, why := r.blastCheck(ctx, g, time.Time{}, r.now())
	a.BlastRequests, a.BlastCallers = blast.Requests, blast.Callers
	if auto && r.cfg.Mode != models.ModeEnforce {
		why = fmt.Sprintf("respond.mode is %s", r.cfg.Mode)
	}
	if auto && why != "" {
		for _, p := range g {
			p.Meta.PromoteAt = time.Time{}
			if err := r.backend.Apply(ctx, p); err != nil {
				return r.failed(ctx, a, d, "hold promotion", err)
			}
		}
		a.State, a.Reason = models.StateSkipped, "promotion held, stays in dry-run: "+why
		r.record(ctx, a, d)
		return nil
	}
	for _, p := range g {
		p.DryRun = false
		p.Meta.PromoteAt = time.Time{}
		if err := r.backend.Apply(ctx, p); err != nil {
			return r.failed(ctx, a, d, "promote", err)
		}
	}
	a.State, a.Mode = models.StatePromoted, models.ModeEnforce
	if auto {
		a.Reason = "staged dry-run promoted to enforce after respond.promote_after"
	} else {
		a.Reason = "approved by " + a.Actor
		if why != "" {
			a.Reason += " (overriding: " + why + ")"
		}
	}
	r.record(ctx, a, d)
	return nil
}

func (r *Responder) failed(ctx context.Context, a models.Action, d models.Detection, what string, err error) error {
	a.State, a.Reason = models.StateFailed, what+": "+err.Error()
	r.record(ctx, a, d)
	return fmt.Errorf("respond %s: %s: %w", a.ID, what, err)
}

// lookup returns the objects of action id, or ErrNotFound.
func (r *Responder) lookup(ctx context.Context, id string) ([]Policy, error) {
	g, err := r.backend.List(ctx, r.cfg.Instance, id)
	if err != nil && len(g) == 0 {
		return nil, err
	}
	if len(g) == 0 {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return g, nil
}

// Approve promotes a dry-run action to enforce on behalf of actor. An
// action revoked within respond.revoke_hold has no policy to promote:
// approving it lifts the revoke, so that the next detection applies it.
func (r *Responder) Approve(ctx context.Context, actionID, actor string) (models.Action, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g, err := r.lookup(ctx, actionID)
	if errors.Is(err, ErrNotFound) {
		return r.liftHold(ctx, actionID, actor)
	}
	if err != nil {
		return models.Action{}, err
	}
	a := models.Action{At: r.now(), Actor: actor}
	fill(&a, g)
	if a.Mode == models.ModeEnforce {
		a.State, a.Reason = models.StateApplied, "already enforced"
		return a, nil
	}
	if err := r.promote(ctx, a, detectionOf(g), g, false); err != nil {
		return a, err
	}
	a.State, a.Mode = models.StatePromoted, models.ModeEnforce
	return a, nil
}

// Revoke deletes an action's policies on behalf of actor. No replica
// re-applies the same action for respond.revoke_hold (the revoke is read
// back from the audit log) unless a person approves it again.
func (r *Responder) Revoke(ctx context.Context, actionID, actor string) (models.Action, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g, err := r.lookup(ctx, actionID)
	if err != nil {
		return models.Action{}, err
	}
	now := r.now()
	a := models.Action{At: now, Actor: actor}
	fill(&a, g)
	d := detectionOf(g)
	if err := r.deleteAll(ctx, g); err != nil {
		return a, r.failed(ctx, a, d, "revoke", err)
	}
	r.revoked[a.ID] = revocation{actor: actor, at: now}
	a.State, a.Reason = models.StateRevoked, "revoked by "+actor
	r.record(ctx, a, d)
	return a, nil
}

// Extend pushes an action's expiry by `by` (from now, if it is already
// past) on behalf of actor.
func (r *Responder) Extend(ctx context.Context, actionID, actor string, by time.Duration) (models.Action, error) {
	if by <= 0 {
		return models.Action{}, fmt.Errorf("extend %s: %v is not a positive duration", actionID, by)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	g, err := r.lookup(ctx, actionID)
	if err != nil {
		return models.Action{}, err
	}
	now := r.now()
	a := models.Action{At: now, Actor: actor}
	fill(&a, g)
	exp := a.ExpiresAt
	if exp.Before(now) {
		exp = now
	}
	exp = exp.Add(by)
	a.Reason = ""
	if err := r.setExpiry(ctx, a, detectionOf(g), g, exp, fmt.Sprintf("extended by %s by %v", actor, by)); err != nil {
		return a, err
	}
	a.State, a.ExpiresAt = models.StateExtended, exp
	return a, nil
}

// List returns the current actions, as the backend holds them (state
// "applied"; mode dry-run or enforce), oldest first.
func (r *Responder) List(ctx context.Context) ([]models.Action, error) {
	ps, err := r.backend.List(ctx, r.cfg.Instance, "")
	if err != nil && len(ps) == 0 {
		return nil, err
	}
	var out []models.Action
	for _, g := range groups(ps) {
		a := models.Action{At: g[0].Meta.CreatedAt, State: models.StateApplied, Actor: actorMeshguard}
		fill(&a, g)
		out = append(out, a)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, err
}

// Run does the background work until ctx is done: with leader election,
// it campaigns for the Lease and reconciles while it holds it (and
// campaigns again after losing it); without, it reconciles.
func (r *Responder) Run(ctx context.Context) error {
	if !r.cfg.LeaderElection.Enabled {
		r.reconcileLoop(ctx)
		return nil
	}
	le := r.cfg.LeaderElection
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: le.Namespace, Name: le.LeaseName},
		Client:     r.kube.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: r.identity},
	}
	for ctx.Err() == nil {
		elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   le.LeaseDuration,
			RenewDeadline:   le.RenewDeadline,
			RetryPeriod:     le.RetryPeriod,
			ReleaseOnCancel: true,
			Name:            le.LeaseName,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) {
					r.leading.Store(true)
					r.log.Info("respond: leading", "identity", r.identity, "lease", le.Namespace+"/"+le.LeaseName)
					r.reconcileLoop(ctx)
				},
				OnStoppedLeading: func() {
					r.leading.Store(false)
					r.log.Info("respond: not leading", "identity", r.identity)
				},
				OnNewLeader: func(id string) {
					if id != r.identity {
						r.log.Info("respond: leader elected", "leader", id)
					}
				},
			},
		})
		if err != nil {
			return fmt.Errorf("respond: leader election: %w", err)
		}
		elector.Run(ctx)
	}
	return nil
}

func (r *Responder) reconcileLoop(ctx context.Context) {
	t := time.NewTicker(r.cfg.ReconcileInterval)
	defer t.Stop()
	for {
		if err := r.Reconcile(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("respond: reconcile", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
