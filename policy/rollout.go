package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/respond"
	"github.com/meshguard/meshguard/storage"
)

var authorizationPolicies = schema.GroupVersionResource{Group: "security.istio.io", Version: "v1", Resource: "authorizationpolicies"}

// AnnotationPromotedAt is when a person promoted the policy to enforce.
const AnnotationPromotedAt = "meshguard.io/promoted-at"

// Errors a rollout step returns, for callers to tell apart.
var (
	ErrNotFound = errors.New("no such ALLOW policy")
	// ErrNotClean: promotion refused, the dry-run soak is not clean (or
	// not over, or says nothing).
	ErrNotClean = errors.New("dry-run soak not clean")
	// ErrProtected: respond's guardrails keep meshguard off the workload.
	ErrProtected = errors.New("protected")
)

// Rollout applies, promotes and revokes ALLOW policies in a cluster, with
// respond's guardrails and audit log. Its methods are safe for concurrent
// use (every state is the cluster's).
type Rollout struct {
	dyn      dynamic.Interface
	guard    respond.Config
	audit    storage.ActionWriter
	verdicts storage.DryRunReader
	log      *slog.Logger
	// MinSoak is how long a policy stays in dry-run before it may be
	// promoted.
	MinSoak time.Duration
	// Now defaults to time.Now.
	Now func() time.Time
}

// NewRollout returns a rollout on dyn; guard is the respond section (its
// instance, protected namespaces and workloads); audit may be nil.
func NewRollout(dyn dynamic.Interface, guard respond.Config, audit storage.ActionWriter, verdicts storage.DryRunReader, log *slog.Logger) *Rollout {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Rollout{dyn: dyn, guard: guard, audit: audit, verdicts: verdicts, log: log, MinSoak: 24 * time.Hour, Now: time.Now}
}

// Staged is one ALLOW policy meshguard wrote, as the cluster holds it.
type Staged struct {
	ID        string    `json:"id"`
	Namespace string    `json:"namespace"`
	Target    string    `json:"target"`
	DryRun    bool      `json:"dry_run"`
	Since     time.Time `json:"dry_run_since,omitzero"`
	Rules     int       `json:"rules"`
	// BlastRequests is the suggestion's blast radius when it was learned.
	BlastRequests uint64 `json:"blast_requests"`
}

// Apply writes s in dry-run (istio.io/dry-run: "true") on behalf of
// actor, and audits it. Applying the same workload's suggestion again
// replaces the policy and restarts its soak.
func (r *Rollout) Apply(ctx context.Context, s Suggestion, actor string) (models.Action, error) {
	now := r.Now()
	a := r.action(s.Name, s.Namespace, s.Namespace+"/"+s.Workload, actor, now)
	a.BlastRequests, a.BlastCallers = s.BlastRequests, uint64(s.BlastCallers)
	if why := r.guard.Protects(s.Namespace, s.Workload); why != "" {
		a.State, a.Reason = models.StateSkipped, why
		r.record(ctx, a)
		return a, fmt.Errorf("%w: %s", ErrProtected, why)
	}
	obj, err := s.Object(r.guard.Instance, true, now)
	if err != nil {
		return a, err
	}
	u, err := obj.Unstructured()
	if err != nil {
		return a, err
	}
	if err := r.apply(ctx, u); err != nil {
		a.State, a.Reason = models.StateFailed, "apply dry-run: "+err.Error()
		r.record(ctx, a)
		return a, err
	}
	a.State = models.StateApplied
	a.Reason = fmt.Sprintf("least-privilege ALLOW in dry-run: %d rules, %d of %d requests of the period would have been denied",
		len(s.Rules), s.BlastRequests, s.Requests)
	r.record(ctx, a)
	return a, nil
}

// List returns the ALLOW policies of this instance.
func (r *Rollout) List(ctx context.Context) ([]Staged, error) {
	items, err := r.list(ctx, "")
	if err != nil {
		return nil, err
	}
	out := make([]Staged, 0, len(items))
	for i := range items {
		out = append(out, stagedOf(&items[i]))
	}
	return out, nil
}

// Verdicts returns policy id and what the dry-run said since it was
// applied.
func (r *Rollout) Verdicts(ctx context.Context, id string) (Staged, storage.DryRunVerdicts, error) {
	u, err := r.get(ctx, id)
	if err != nil {
		return Staged{}, storage.DryRunVerdicts{}, err
	}
	st := stagedOf(u)
	if !st.DryRun {
		return st, storage.DryRunVerdicts{}, nil
	}
	ns, wl := targetOf(st)
	v, err := r.verdicts.DryRunVerdicts(ctx, ns, wl, st.Since, r.Now())
	return st, v, err
}

// Promote takes policy id from dry-run to enforce on behalf of actor. It
// refuses (ErrNotClean, audited as skipped) while the soak is shorter
// than MinSoak, when the dry-run would have denied any request, and when
// the proxies reported no verdict at all: silence is not a clean soak.
func (r *Rollout) Promote(ctx context.Context, id, actor string) (models.Action, error) {
	st, v, err := r.Verdicts(ctx, id)
	if err != nil {
		return models.Action{}, err
	}
	now := r.Now()
	a := r.action(st.ID, st.Namespace, st.Target, actor, now)
	if !st.DryRun {
		a.Mode, a.State, a.Reason = models.ModeEnforce, models.StateApplied, "already enforced"
		return a, nil
	}
	why := ""
	switch {
	case st.Since.IsZero():
		why = "the policy does not say when its dry-run started (" + AnnotationAppliedAt + ")"
	case now.Sub(st.Since) < r.MinSoak:
		why = fmt.Sprintf("in dry-run for %s, less than the %s soak", now.Sub(st.Since).Round(time.Second), r.MinSoak)
	case v.Denied > 0:
		why = fmt.Sprintf("the dry-run would have denied %d requests since %s", v.Denied, st.Since.UTC().Format(time.RFC3339))
		for _, c := range v.DeniedCallers {
			why += fmt.Sprintf("; %s: %d", c.Caller, c.Requests)
		}
	case v.Allowed == 0:
		why = fmt.Sprintf("no request to %s carried a dry-run verdict since %s (%d without one): is dry_run_allow_result in the access-log format (deploy/istio/mesh-config.yaml)?",
			st.Target, st.Since.UTC().Format(time.RFC3339), v.Unknown)
	}
	if why != "" {
		a.State, a.Reason = models.StateSkipped, "promotion refused, stays in dry-run: "+why
		r.record(ctx, a)
		return a, fmt.Errorf("%w: %s: %s", ErrNotClean, id, why)
	}
	u, err := r.get(ctx, id)
	if err != nil {
		return a, err
	}
	ann := u.GetAnnotations()
	delete(ann, respond.AnnotationDryRun)
	delete(ann, AnnotationAppliedAt)
	ann[AnnotationPromotedAt] = now.UTC().Format(time.RFC3339)
	clean := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": u.GetAPIVersion(), "kind": u.GetKind(),
		"metadata": map[string]any{"name": u.GetName(), "namespace": u.GetNamespace()},
		"spec":     u.Object["spec"],
	}}
	clean.SetLabels(u.GetLabels())
	clean.SetAnnotations(ann)
	if err := r.apply(ctx, clean); err != nil {
		a.State, a.Reason = models.StateFailed, "promote: "+err.Error()
		r.record(ctx, a)
		return a, err
	}
	a.Mode, a.State = models.ModeEnforce, models.StatePromoted
	a.Reason = fmt.Sprintf("promoted by %s after a clean dry-run soak since %s: %d requests allowed, none denied",
		actor, st.Since.UTC().Format(time.RFC3339), v.Allowed)
	r.record(ctx, a)
	return a, nil
}

// Revoke deletes policy id on behalf of actor (the workload is back to
// what other policies allow).
func (r *Rollout) Revoke(ctx context.Context, id, actor string) (models.Action, error) {
	u, err := r.get(ctx, id)
	if err != nil {
		return models.Action{}, err
	}
	st := stagedOf(u)
	a := r.action(st.ID, st.Namespace, st.Target, actor, r.Now())
	if !st.DryRun {
		a.Mode = models.ModeEnforce
	}
	err = r.dyn.Resource(authorizationPolicies).Namespace(u.GetNamespace()).Delete(ctx, u.GetName(), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		a.State, a.Reason = models.StateFailed, "revoke: "+err.Error()
		r.record(ctx, a)
		return a, fmt.Errorf("delete authorizationpolicy %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	a.State, a.Reason = models.StateRevoked, "revoked by "+actor
	r.record(ctx, a)
	return a, nil
}

func (r *Rollout) action(id, ns, target, actor string, now time.Time) models.Action {
	return models.Action{ID: id, At: now, Kind: models.ActionAllow, Mode: models.ModeDryRun, Actor: actor,
		Target: target, PolicyName: id, PolicyNamespace: ns}
}

func (r *Rollout) apply(ctx context.Context, u *unstructured.Unstructured) error {
	_, err := r.dyn.Resource(authorizationPolicies).Namespace(u.GetNamespace()).Apply(ctx, u.GetName(), u,
		metav1.ApplyOptions{FieldManager: respond.FieldManager, Force: true})
	if err != nil {
		return fmt.Errorf("apply authorizationpolicy %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	return nil
}

// list returns this instance's ALLOW policies (one when id is set).
func (r *Rollout) list(ctx context.Context, id string) ([]unstructured.Unstructured, error) {
	set := labels.Set{respond.LabelManagedBy: respond.ManagedBy, LabelAllowInstance: r.guard.Instance, respond.LabelRole: RoleAllow}
	if id != "" {
		set[respond.LabelActionID] = id
	}
	list, err := r.dyn.Resource(authorizationPolicies).Namespace("").List(ctx,
		metav1.ListOptions{LabelSelector: labels.SelectorFromSet(set).String()})
	if err != nil {
		return nil, fmt.Errorf("list authorizationpolicies: %w", err)
	}
	return list.Items, nil
}

func (r *Rollout) get(ctx context.Context, id string) (*unstructured.Unstructured, error) {
	items, err := r.list(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return &items[0], nil
}

// record audits a in the actions table; the audit outlives a cancelled
// caller (the change was made).
func (r *Rollout) record(ctx context.Context, a models.Action) {
	if r.audit != nil {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := r.audit.WriteAction(actx, storage.ActionToRow(a)); err != nil {
			r.log.Error("policy: audit write failed", "action_id", a.ID, "state", a.State, "err", err)
		}
	}
	r.log.Info("policy: "+string(a.State), "action_id", a.ID, "mode", a.Mode, "actor", a.Actor, "target", a.Target, "reason", a.Reason)
}

func stagedOf(u *unstructured.Unstructured) Staged {
	ann := u.GetAnnotations()
	st := Staged{ID: u.GetLabels()[respond.LabelActionID], Namespace: u.GetNamespace(),
		Target: ann[respond.AnnotationTarget], DryRun: ann[respond.AnnotationDryRun] == "true"}
	if t, err := time.Parse(time.RFC3339, ann[AnnotationAppliedAt]); err == nil {
		st.Since = t
	}
	st.BlastRequests, _ = strconv.ParseUint(ann[AnnotationBlastRequests], 10, 64)
	rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
	st.Rules = len(rules)
	return st
}

// targetOf splits Target ("namespace/workload").
func targetOf(st Staged) (string, string) {
	if ns, wl, ok := strings.Cut(st.Target, "/"); ok {
		return ns, wl
	}
	return st.Namespace, st.Target
}
