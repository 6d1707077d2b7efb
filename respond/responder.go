package respond

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/storage"
)

// Deps are what a Responder works with. Kube is needed for the istio and
// networkpolicy backends, pod lookups and leader election; Backend and
// Resolver, when set, replace what Kube would give.
type Deps struct {
	Kube     *rest.Config
	Backend  Backend
	Resolver Resolver
	// Actions receives the audit log; nil writes none.
	Actions storage.ActionWriter
	// Brake reads revokes and approvals back from the audit log, so that
	// a revoke by any replica, the CLI or before a restart holds; nil
	// uses Actions when it can (both stores can), else only this
	// process's revokes hold.
	Brake storage.BrakeReader
	// Blast answers blast-radius previews; nil skips them (and then
	// nothing is enforced at once while blast_radius_max_requests is set:
	// it stays in dry-run, saying why).
	Blast  storage.BlastQuerier
	Logger *slog.Logger
	// Clock defaults to time.Now.
	Clock func() time.Time
	Sink  consumer.Actions
	// Identity names this replica in the Lease; defaults to the host name.
	Identity string
}

// ErrNotFound: no policy of that action id exists.
var ErrNotFound = errors.New("no such action")

// Actor of automatic decisions.
const actorMeshguard = "meshguard"

// Responder turns detections into policies within guardrails. Its
// methods are safe for concurrent use.
type Responder struct {
	cfg      Config
	backend  Backend
	resolve  Resolver
	kube     kubernetes.Interface
	audit    storage.ActionWriter
	brake    storage.BrakeReader
	blast    storage.BlastQuerier
	log      *slog.Logger
	now      func() time.Time
	sink     consumer.Actions
	identity string
	ownNS    []string
	cidrs    []netip.Prefix

	leading       atomic.Bool
	auditFailures atomic.Uint64

	mu           sync.Mutex // one decision at a time: budget, idempotency
	budget       []time.Time
	unspent      []time.Time // dry-runs of unverified identities: no budget, but bounded
	budgetSeeded bool
	revoked      map[string]revocation
}

// revocation is a revoke made by this process: it holds even while the
// audit log cannot be read.
type revocation struct {
	actor string
	at    time.Time
}

// New validates cfg and builds a Responder; it does no I/O.
func New(cfg Config, deps Deps) (*Responder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Responder{
		cfg:      cfg,
		backend:  deps.Backend,
		resolve:  deps.Resolver,
		audit:    deps.Actions,
		brake:    deps.Brake,
		blast:    deps.Blast,
		log:      deps.Logger,
		now:      deps.Clock,
		sink:     deps.Sink,
		identity: deps.Identity,
		revoked:  map[string]revocation{},
		ownNS:    ownNamespaces(cfg),
	}
	if r.brake == nil {
		r.brake, _ = deps.Actions.(storage.BrakeReader)
	}
	for _, c := range cfg.ProtectedCIDRs {
		if p, err := netip.ParsePrefix(c); err == nil {
			r.cidrs = append(r.cidrs, p.Masked())
		}
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.log = r.log.With("stage", "respond")
	if r.now == nil {
		r.now = time.Now
	}
	if r.identity == "" {
		r.identity, _ = os.Hostname()
		r.identity += fmt.Sprintf("-%d", os.Getpid())
	}
	if deps.Kube != nil {
		deps.Kube = withRate(deps.Kube)
		cs, err := kubernetes.NewForConfig(deps.Kube)
		if err != nil {
			return nil, fmt.Errorf("respond: kubernetes client: %w", err)
		}
		r.kube = cs
		if r.resolve == nil {
			r.resolve = KubeResolver(cs)
		}
		if r.backend == nil {
			switch cfg.Backend {
			case BackendIstio:
				dyn, err := dynamic.NewForConfig(deps.Kube)
				if err != nil {
					return nil, fmt.Errorf("respond: kubernetes client: %w", err)
				}
				r.backend = NewIstioBackend(dyn)
			case BackendNetworkPolicy:
				r.backend = NewNetworkPolicyBackend(cs)
			}
		}
	}
	if r.backend == nil && cfg.Backend == BackendGitOps {
		r.backend = NewGitOpsBackend(cfg.GitOpsDir)
	}
	if r.resolve == nil && cfg.Backend == BackendGitOps {
		r.resolve = ConventionResolver
	}
	if r.backend == nil || r.resolve == nil {
		return nil, fmt.Errorf("respond: backend %s needs a Kubernetes client (kubernetes.kubeconfig)", cfg.Backend)
	}
	if cfg.LeaderElection.Enabled && r.kube == nil {
		return nil, errors.New("respond.leader_election.enabled: needs a Kubernetes client (kubernetes.kubeconfig)")
	}
	r.leading.Store(!cfg.LeaderElection.Enabled)
	return r, nil
}

// Client-side rate of the responder's Kubernetes clients when the
// config sets none. client-go's default (5 a second, bursts of 10) made
// a detection wait for tokens: one decision makes about six requests, so
// from the second detection on the path to a policy was mostly queueing.
const (
	kubeQPS   = 50
	kubeBurst = 100
)

func withRate(c *rest.Config) *rest.Config {
	if c.QPS != 0 || c.Burst != 0 || c.RateLimiter != nil {
		return c
	}
	c = rest.CopyConfig(c)
	c.QPS, c.Burst = kubeQPS, kubeBurst
	return c
}

// Leading reports whether this replica acts (always, without leader
// election).
func (r *Responder) Leading() bool { return r.leading.Load() }

// AuditFailures counts audit rows the ActionWriter refused.
func (r *Responder) AuditFailures() uint64 { return r.auditFailures.Load() }

// HandleDetection decides what to do about d and does it. Updates of one
// detection (and repeats of one source and destination) find the policy
// already there and extend its TTL. The error is non-nil only when a
// decided policy could not be written (it is audited as failed too).
func (r *Responder) HandleDetection(ctx context.Context, d models.Detection) error {
	now := r.now()
	dec := r.cfg.decide(d)
	src, problems := parseSource(d.Source)
	var dstNS, dstWL string
	if d.Destination.Namespace != "" || d.Destination.Workload != "" {
		var err error
		if dstNS, dstWL, err = validWorkload(d.Destination.Namespace, d.Destination.Workload); err != nil {
			problems = append(problems, "destination "+err.Error())
		}
	}
	dstKey := ""
	if dstWL != "" {
		dstKey = dstNS + "/" + dstWL
	}
	a := models.Action{
		At: now, DetectionID: d.ID, Detection: d.Kind, Kind: dec.Kind, Mode: dec.Mode,
		Actor: actorMeshguard, Reason: dec.Reason,
	}
	switch dec.Kind {
	case models.ActionQuarantine:
		a.ID = ActionID(dec.Kind, src.key(), "", src.short())
		a.Target = "quarantine " + src.String()
	default:
		a.ID = ActionID(dec.Kind, src.key(), dstKey, src.short()+"-"+dstWL)
		a.Target = src.String() + " -> " + orUnknown(dstKey)
	}
	if len(problems) > 0 {
		a.Reason += "; ignored: " + strings.Join(problems, "; ")
	}
	if dec.Mode == models.ModeAlert {
		a.State = models.StateAlerted
		r.record(ctx, a, d)
		return nil
	}
	if !r.leading.Load() {
		a.State, a.Mode = models.StateSkipped, models.ModeAlert
		a.Reason = "not the leader: the replica holding the Lease acts; " + a.Reason
		r.record(ctx, a, d)
		return nil
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	skip := func(why string) error {
		a.State, a.Reason = models.StateSkipped, why+"; "+a.Reason
		r.record(ctx, a, d)
		return nil
	}
	fail := func(err error) error {
		a.State, a.Reason = models.StateFailed, err.Error()
		r.record(ctx, a, d)
		return fmt.Errorf("respond %s: %w", a.ID, err)
	}
	qid := ActionID(models.ActionQuarantine, src.key(), "", src.short())
	l := r.prefetch(ctx, d, a.ID, qid, src, dec.Kind, dstNS, dstWL, now)
	if l.held != "" {
		return skip(l.held)
	}
	v, err := l.vet, l.vetErr
	if err != nil {
		return fail(err)
	}
	if v.protected != "" {
		return skip(v.protected)
	}
	src.PodIPs, src.podIPsWhy = v.podIPs, v.podIPsWhy
	if len(src.PodIPs) > 0 {
		a.Reason += fmt.Sprintf("; names the IPs of %s/%s's pods as the cluster reports them (%s): a plaintext caller has no principal",
			src.Namespace, src.Workload, strings.Join(src.PodIPs, ", "))
	}
	existing, err := l.byID[a.ID], l.listErr
	if err != nil && len(existing) == 0 {
		return fail(err)
	}
	if len(existing) > 0 {
		return r.extendExisting(ctx, a, d, existing, now)
	}
	// One incident, one action: a source already quarantined (a scan that
	// went on to call what it found) needs no DENY per edge; the
	// quarantine is extended instead, and no budget is spent.
	if dec.Kind == models.ActionBlockEdge {
		if q := l.byID[qid]; len(q) > 0 {
			a.ID, a.Kind, a.Target = qid, models.ActionQuarantine, "quarantine "+src.String()
			a.Reason = "covered by the quarantine of " + src.String() + " (incident " + orUnknown(d.IncidentID) + "); " + a.Reason
			return r.extendExisting(ctx, a, d, q, now)
		}
	}
	unverified := len(v.unverified) > 0
	if unverified {
		why := strings.Join(v.unverified, "; ")
		r.log.Warn("respond: identities not confirmed: dry-run at most, no budget spent", "action_id", a.ID, "detection_id", d.ID, "why", why)
		a.Reason = "NOT ENFORCED, " + why + "; " + a.Reason
		if dec.Mode == models.ModeEnforce {
			dec.Mode = models.ModeDryRun
			a.Mode = models.ModeDryRun
		}
	}
	policies, err := r.plan(ctx, a, dec, d, src, dstNS, dstWL, now)
	if err != nil {
		var perm *PermissionError
		if errors.As(err, &perm) {
			return fail(err)
		}
		return skip(err.Error())
	}
	for _, p := range policies {
		if err := r.backend.Supports(p); err != nil {
			return skip(err.Error())
		}
	}
	if used, ok := r.budgetAllows(ctx, now, unverified); unverified && !ok {
		// Forged records cannot flood the mesh with dry-run objects
		// either: those have an allowance of their own, as large.
		a.State, a.Mode = models.StateAlerted, models.ModeAlert
		a.Reason = fmt.Sprintf("%d dry-run actions of unconfirmed identities in the last hour (at most respond.budget_per_hour=%d); alert only; %s",
			used, r.cfg.BudgetPerHour, a.Reason)
		r.record(ctx, a, d)
		return nil
	} else if !ok {
		a.State, a.Mode = models.StateAlerted, models.ModeAlert
		a.Reason = fmt.Sprintf("BUDGET EXHAUSTED: %d of respond.budget_per_hour=%d policy actions in the last hour; alert only; %s",
			used, r.cfg.BudgetPerHour, a.Reason)
		r.log.Error("respond budget exhausted: alerting only", "action_id", a.ID, "detection_id", d.ID,
			"used", used, "budget_per_hour", r.cfg.BudgetPerHour)
		r.record(ctx, a, d)
		return nil
	}

	// Mode: staged, blast-radius checked, or as decided.
	dryRun := dec.Mode == models.ModeDryRun
	var promoteAt time.Time
	blast, blastWhy := r.blastCheck(ctx, policies, d.WindowStart, now)
	a.BlastRequests, a.BlastCallers = blast.Requests, blast.Callers
	if dec.Mode == models.ModeEnforce {
		switch {
		case blastWhy != "":
			dryRun = true
			a.Reason += "; stays in dry-run: " + blastWhy
		case r.cfg.PromoteAfter > 0:
			dryRun = true
			promoteAt = now.Add(r.cfg.PromoteAfter)
			a.Reason += "; staged: dry-run until " + promoteAt.UTC().Format(time.RFC3339)
		}
	}
	if dryRun && r.backend.Name() == BackendNetworkPolicy {
		return skip("the networkpolicy backend has no dry-run: nothing written until enforced")
	}
	a.ExpiresAt = now.Add(r.cfg.TTL)
	for i := range policies {
		policies[i].DryRun = dryRun
		policies[i].Meta.PromoteAt = promoteAt
		policies[i].Meta.Reason = a.Reason
		policies[i].Meta.Unverified = unverified
	}
	var applied []Policy
	for _, p := range policies {
		if err := r.backend.Apply(ctx, p); err != nil {
			for _, q := range applied { // all or nothing
				if derr := r.backend.Delete(ctx, q); derr != nil {
					r.log.Error("respond: rolling back a partly applied action", "policy", q.Namespace+"/"+q.Name, "err", derr)
				}
			}
			return fail(err)
		}
		applied = append(applied, p)
	}
	if unverified {
		r.unspent = append(r.unspent, now)
	} else {
		r.budget = append(r.budget, now)
	}
	a.State, a.Mode = models.StateApplied, policies[0].Mode()
	a.PolicyName, a.PolicyNamespace = policies[0].Name, policies[0].Namespace
	r.record(ctx, a, d)
	return nil
}

// lookups are what one decision reads before it writes: the brake, the
// identities, and the instance's policies.
type lookups struct {
	held    string
	vet     vetting
	vetErr  error
	byID    map[string][]Policy // of the action and of the source's quarantine
	listErr error
}

// prefetch reads the brake (ClickHouse), vets the source (the cluster) and
// lists the instance's policies (one list for both action ids: a
// label-selected list costs what a cluster-wide one does) at once: they
// are independent, and each is a round trip on the path from detection
// to policy. Callers hold r.mu.
func (r *Responder) prefetch(ctx context.Context, d models.Detection, id, qid string, src source, kind models.ActionKind, dstNS, dstWL string, now time.Time) lookups {
	var l lookups
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		l.held = r.held(ctx, id, now)
	}()
	go func() {
		defer wg.Done()
		l.vet, l.vetErr = r.vet(ctx, kind, src, dstNS, dstWL, needsPodIPs(d, src))
	}()
	ps, err := r.backend.List(ctx, r.cfg.Instance, "")
	l.listErr = err
	l.byID = map[string][]Policy{}
	for _, p := range ps {
		if p.Meta.ActionID == id || p.Meta.ActionID == qid {
			l.byID[p.Meta.ActionID] = append(l.byID[p.Meta.ActionID], p)
		}
	}
	r.seedBudget(ps, err, now)
	wg.Wait()
	return l
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// plan builds the objects of a new action.
func (r *Responder) plan(ctx context.Context, a models.Action, dec decision, d models.Detection, src source, dstNS, dstWL string, now time.Time) ([]Policy, error) {
	meta := Meta{
		ActionID: a.ID, Instance: r.cfg.Instance, Action: dec.Kind,
		DetectionID: d.ID, DetectionKind: d.Kind, Target: a.Target,
		CreatedAt: now, ExpiresAt: now.Add(r.cfg.TTL),
	}
	if src.Workload != "" {
		meta.SourceWorkload = src.Namespace + "/" + src.Workload
	}
	if dstWL != "" {
		meta.Destination = dstNS + "/" + dstWL
	}
	switch dec.Kind {
	case models.ActionBlockEdge:
		if src.Principal == "" && len(ipBlocks(src)) == 0 {
			return nil, errors.New("cannot block: the source has neither a valid principal nor an IP" + src.podIPsWhy)
		}
		if dstWL == "" {
			return nil, errors.New("cannot block: the destination workload is unknown")
		}
		if r.backend.Name() == BackendNetworkPolicy {
			return nil, errors.New("the networkpolicy backend cannot block one edge (NetworkPolicy has no deny)")
		}
		sel, err := r.resolve(ctx, dstNS, dstWL)
		if err != nil {
			return nil, fmt.Errorf("cannot select the destination: %w", err)
		}
		return []Policy{{
			Name: a.ID, Namespace: dstNS, Role: RoleEdge, Selector: sel,
			SourcePrincipal: src.Principal, SourceIPBlocks: ipBlocks(src), Meta: meta,
		}}, nil
	case models.ActionQuarantine:
		if r.backend.Name() == BackendNetworkPolicy {
			if src.Workload == "" {
				return nil, errors.New("cannot quarantine: the source workload is unknown")
			}
			sel, err := r.resolve(ctx, src.Namespace, src.Workload)
			if err != nil {
				return nil, fmt.Errorf("cannot select the source: %w", err)
			}
			return []Policy{{Name: a.ID, Namespace: src.Namespace, Role: RoleIsolate, Selector: sel, Meta: meta}}, nil
		}
		var out []Policy
		if ips := ipBlocks(src); src.Principal != "" || len(ips) > 0 {
			out = append(out, Policy{
				Name: a.ID + "-out", Namespace: r.cfg.RootNamespace, Role: RoleOutbound,
				SourcePrincipal: src.Principal, SourceIPBlocks: ips, Meta: meta,
			})
		}
		var inboundErr error
		if src.Workload != "" {
			sel, err := r.resolve(ctx, src.Namespace, src.Workload)
			var perm *PermissionError
			switch {
			case errors.As(err, &perm):
				return nil, err
			case err != nil:
				inboundErr = err
			default:
				out = append(out, Policy{Name: a.ID + "-in", Namespace: src.Namespace, Role: RoleInbound, Selector: sel, Meta: meta})
			}
		}
		if len(out) == 0 {
			if inboundErr != nil {
				return nil, fmt.Errorf("cannot quarantine: %w", inboundErr)
			}
			return nil, errors.New("cannot quarantine: the source has no valid principal, IP or workload")
		}
		return out, nil
	}
	return nil, fmt.Errorf("action %q writes no policy", dec.Kind)
}

// ipBlocks are the addresses a policy denies for s: the record's IP
// only without a principal (the principal is the stronger claim), and
// the workload's pod IPs the cluster reports.
func ipBlocks(s source) []string {
	var out []string
	if s.Principal == "" && s.IPBlock != "" {
		out = append(out, s.IPBlock)
	}
	for _, b := range s.PodIPs {
		if !slices.Contains(out, b) {
			out = append(out, b)
		}
	}
	return out
}

// budgetAllows reports whether one more action fits in the rolling hour,
// and how many it holds: the budget, or for actions of unverified
// identities (which never spend it) their own allowance. It first counts
// the actions the backend holds that were created in the last hour, so a
// restart does not reset it.
func (r *Responder) budgetAllows(ctx context.Context, now time.Time, unverified bool) (int, bool) {
	if !r.budgetSeeded {
		ps, err := r.backend.List(ctx, r.cfg.Instance, "")
		r.seedBudget(ps, err, now)
	}
	prune := func(ts []time.Time) []time.Time {
		kept := ts[:0]
		for _, t := range ts {
			if now.Sub(t) < time.Hour {
				kept = append(kept, t)
			}
		}
		return kept
	}
	r.budget, r.unspent = prune(r.budget), prune(r.unspent)
	n := len(r.budget)
	if unverified {
		n = len(r.unspent)
	}
	return n, n < r.cfg.BudgetPerHour
}

// seedBudget counts, once, the actions in ps (the instance's policies)
// created in the last hour, so that a restart does not reset the budget.
// Callers hold r.mu.
func (r *Responder) seedBudget(ps []Policy, err error, now time.Time) {
	if r.budgetSeeded || err != nil {
		return
	}
	seen := map[string]bool{}
	for _, p := range ps {
		if !seen[p.Meta.ActionID] && now.Sub(p.Meta.CreatedAt) < time.Hour {
			seen[p.Meta.ActionID] = true
			if p.Meta.Unverified {
				r.unspent = append(r.unspent, p.Meta.CreatedAt)
			} else {
				r.budget = append(r.budget, p.Meta.CreatedAt)
			}
		}
	}
	r.budgetSeeded = true
}

// blastCheck previews what policies would have denied in the 24 hours
// before the detection's window, and returns why they may not be
// enforced, or "".
func (r *Responder) blastCheck(ctx context.Context, policies []Policy, windowStart, now time.Time) (storage.BlastRadius, string) {
	if r.cfg.BlastRadiusMaxRequests == 0 && r.blast == nil {
		return storage.BlastRadius{}, ""
	}
	if r.blast == nil {
		return storage.BlastRadius{}, "blast radius unknown (no flow store to ask)"
	}
	to := windowStart
	if to.IsZero() || to.After(now) {
		to = now
	}
	q := storage.BlastQuery{From: to.Add(-24 * time.Hour), To: to}
	for _, p := range policies {
		if p.SourcePrincipal != "" {
			q.SourcePrincipal = p.SourcePrincipal
		}
		if len(p.SourceIPBlocks) > 0 {
			q.SourceIP, _, _ = strings.Cut(p.SourceIPBlocks[0], "/")
		}
		switch p.Role {
		case RoleEdge:
			q.DestinationNamespace, q.DestinationWorkload, _ = strings.Cut(p.Meta.Destination, "/")
			if !strings.Contains(p.Meta.Destination, "/") {
				q.DestinationNamespace, q.DestinationWorkload = "", ""
			}
		case RoleInbound, RoleIsolate:
			q.Inbound = true
		}
		if p.Meta.SourceWorkload != "" {
			q.SourceNamespace, q.SourceWorkload, _ = strings.Cut(p.Meta.SourceWorkload, "/")
		}
	}
	if p := policies[0]; p.Role == RoleEdge && q.DestinationWorkload == "" {
		return storage.BlastRadius{}, "blast radius unknown (no destination recorded)"
	}
	b, err := r.blast.BlastRadius(ctx, q)
	if err != nil {
		r.log.Warn("respond: blast radius query failed", "err", err)
		return b, "blast radius unknown: " + err.Error()
	}
	if max := r.cfg.BlastRadiusMaxRequests; max > 0 && b.Requests > max {
		return b, fmt.Sprintf("blast radius: it would have denied %d requests from %d callers in the 24 h before the detection, above respond.blast_radius_max_requests=%d",
			b.Requests, b.Callers, max)
	}
	return b, ""
}

// extendExisting pushes the expiry of an existing action to now+TTL, but
// never past its creation plus respond.max_ttl: repeated (or replayed,
// or forged) detections cannot keep a policy forever.
func (r *Responder) extendExisting(ctx context.Context, a models.Action, d models.Detection, existing []Policy, now time.Time) error {
	exp := now.Add(r.cfg.TTL)
	why := "repeated detection extends the TTL"
	created := existing[0].Meta.CreatedAt
	for _, p := range existing {
		if p.Meta.CreatedAt.Before(created) {
			created = p.Meta.CreatedAt
		}
	}
	if limit := created.Add(r.cfg.MaxTTL); !created.IsZero() && exp.After(limit) {
		exp = limit
		why = "repeated detection; the TTL stays at respond.max_ttl from creation (" + limit.UTC().Format(time.RFC3339) + ")"
	}
	return r.setExpiry(ctx, a, d, existing, exp, why)
}

func (r *Responder) setExpiry(ctx context.Context, a models.Action, d models.Detection, existing []Policy, exp time.Time, why string) error {
	fill(&a, existing)
	for _, p := range existing {
		if !exp.After(p.Meta.ExpiresAt) {
			continue
		}
		p.Meta.ExpiresAt = exp
		if err := r.backend.Apply(ctx, p); err != nil {
			a.State, a.Reason = models.StateFailed, "extend: "+err.Error()
			r.record(ctx, a, d)
			return fmt.Errorf("respond %s: %w", a.ID, err)
		}
	}
	if exp.After(a.ExpiresAt) {
		a.ExpiresAt = exp
	}
	a.State, a.Reason = models.StateExtended, why+"; "+a.Reason
	r.record(ctx, a, d)
	return nil
}

// fill sets a's policy fields from the objects of its action.
func fill(a *models.Action, ps []Policy) {
	if len(ps) == 0 {
		return
	}
	sortPolicies(ps)
	p := ps[0]
	a.ID = p.Meta.ActionID
	a.Kind = p.Meta.Action
	a.Mode = models.ModeEnforce
	for _, q := range ps {
		if q.DryRun {
			a.Mode = models.ModeDryRun
		}
	}
	a.PolicyName, a.PolicyNamespace = p.Name, p.Namespace
	a.ExpiresAt = p.Meta.ExpiresAt
	a.Target = p.Meta.Target
	if a.DetectionID == "" {
		a.DetectionID = p.Meta.DetectionID
		a.Detection = p.Meta.DetectionKind
	}
	if a.Reason == "" {
		a.Reason = p.Meta.Reason
	}
}

// groups splits policies by action id, in id order.
func groups(ps []Policy) [][]Policy {
	by := map[string][]Policy{}
	var ids []string
	for _, p := range ps {
		if _, ok := by[p.Meta.ActionID]; !ok {
			ids = append(ids, p.Meta.ActionID)
		}
		by[p.Meta.ActionID] = append(by[p.Meta.ActionID], p)
	}
	sort.Strings(ids)
	out := make([][]Policy, 0, len(ids))
	for _, id := range ids {
		out = append(out, by[id])
	}
	return out
}

// detectionOf is the detection an action was about, as far as its
// objects remember it.
func detectionOf(ps []Policy) models.Detection {
	if len(ps) == 0 {
		return models.Detection{}
	}
	return models.Detection{ID: ps[0].Meta.DetectionID, Kind: ps[0].Meta.DetectionKind}
}

// record audits a and tells the sink.
func (r *Responder) record(ctx context.Context, a models.Action, d models.Detection) {
	if a.Actor == "" {
		a.Actor = actorMeshguard
	}
	// The audit outlives a cancelled caller: the decision was made.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if r.audit != nil {
		if err := r.audit.WriteAction(actx, storage.ActionToRow(a)); err != nil {
			r.auditFailures.Add(1)
			r.log.Error("respond: audit write failed", "action_id", a.ID, "state", a.State, "err", err)
		}
	}
	level := slog.LevelInfo
	if a.State == models.StateFailed {
		level = slog.LevelError
	}
	r.log.Log(ctx, level, "respond: "+string(a.State), "action_id", a.ID, "kind", a.Kind, "mode", a.Mode,
		"detection_id", a.DetectionID, "actor", a.Actor, "target", a.Target, "policy", a.PolicyNamespace+"/"+a.PolicyName,
		"expires_at", a.ExpiresAt, "reason", a.Reason)
	if r.sink != nil {
		if err := r.sink.HandleAction(actx, a, d); err != nil {
			r.log.Warn("respond: action sink", "action_id", a.ID, "err", err)
		}
	}
}
