package identity

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync/atomic"

	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/models"
)

// ErrNotSynced is returned while the informers have not listed the
// cluster yet: ingest keeps the batch and retries, rather than store
// flows unresolved that a moment later would resolve.
var ErrNotSynced = errors.New("identity: the cluster's pods, ReplicaSets, Jobs and Services are not listed yet (informers syncing; check meshguard's RBAC if this persists)")

// Stage fills what flows lack of their identities before next sees them.
type Stage struct {
	r      *Resolver
	next   consumer.Flows
	log    *slog.Logger
	warned atomic.Bool
}

// NewStage returns a consumer.Flows that resolves every batch with r and
// hands it to next; log (nil: discarded) hears of a trust domain unlike
// the mesh's.
func NewStage(r *Resolver, next consumer.Flows, log *slog.Logger) *Stage {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Stage{r: r, next: next, log: log}
}

// ConsumeFlows resolves flows in place and passes them on. A batch seen
// again after next failed resolves to the same result: filled fields are
// no longer missing, and agree with what filled them.
func (s *Stage) ConsumeFlows(ctx context.Context, flows []models.Flow) error {
	if !s.r.Synced() {
		return ErrNotSynced
	}
	s.r.Apply(flows)
	if p := s.r.otherTrustDomain.Load(); p != nil && s.warned.CompareAndSwap(false, true) {
		s.log.Warn("identity.trust_domain differs from the mesh's: a proxy reported a principal the cluster confirms under another trust domain; set identity.trust_domain to the mesh's (Istio meshConfig.trustDomain)",
			"trust_domain", s.r.cfg.TrustDomain, "reported", *p)
	}
	return s.next.ConsumeFlows(ctx, flows)
}

// Apply resolves each flow's identities at its event time: the source
// from the pod behind its IP, the destination from the Service behind its
// host. It only fills what a record lacks, and never changes what it
// claims: a claim the cluster contradicts (a workload, namespace or
// principal other than the IP's or Service's) is kept, the flow is
// marked IdentityConflict, and nothing else is filled on that side, but
// for the workload and namespace of a source claimed by principal alone,
// which come from the pod behind its address. An identity the destination
// proxy attested (a source principal on a destination-side mTLS record)
// is therefore never overridden.
func (r *Resolver) Apply(flows []models.Flow) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	// A batch holds runs of one pod's and one Service's flows: the last
	// answers are kept for the next flow.
	var (
		lastIP   netip.Addr
		lastSpan span
		lastHost string
		lastSvc  struct {
			workloads     []string
			ns, principal string
			ok            bool
		}
	)
	for i := range flows {
		f := &flows[i]
		if ip := f.Source.IP.Unmap(); ip.IsValid() {
			t := f.TimestampMs
			if ip != lastIP || t < lastSpan.from || t >= lastSpan.to {
				lastIP, lastSpan = ip, r.hist.lookupSpan(ip, t)
				if lastSpan.pod == nil {
					// No tenure: remember nothing, so that the next flow
					// of this IP looks again (its time may differ).
					lastIP = netip.Addr{}
				}
			}
			if p := lastSpan.pod; p != nil {
				applySource(f, Identity{Workload: p.group.workload, Namespace: p.group.ns, Principal: p.group.principal})
				if f.Source.Principal != "" && models.NormalizePrincipal(f.Source.Principal) != p.group.principal && !f.Resolved.Has(models.ResolvedSourcePrincipal) && !f.IdentityConflict {
					// The same account under another trust domain: the
					// principals meshguard fills would not match the ones
					// proxies report.
					if r.otherTrustDomain.Load() == nil {
						reported := models.NormalizePrincipal(f.Source.Principal)
						r.otherTrustDomain.CompareAndSwap(nil, &reported)
					}
				}
			}
		}
		if host := f.Destination.Service; host != "" {
			if host != lastHost {
				lastHost = host
				lastSvc.workloads, lastSvc.ns, lastSvc.principal, lastSvc.ok = r.resolveService(host)
			}
			if lastSvc.ok {
				applyDestination(f, lastSvc.workloads, lastSvc.ns, lastSvc.principal)
			}
		}
	}
}

func applySource(f *models.Flow, id Identity) {
	s := &f.Source
	if (s.Workload != "" && s.Workload != id.Workload) || (s.Namespace != "" && s.Namespace != id.Namespace) ||
		(s.Principal != "" && !samePrincipal(s.Principal, id.Principal)) {
		f.IdentityConflict = true
		if s.Workload == "" && s.Namespace == "" {
			// The record named its caller by certificate only (the label
			// form's server side): the pod behind the address is who
			// presented it. Both stay, so that detection sees a known
			// workload presenting another's principal, and respond sees
			// the disagreement.
			s.Workload, s.Namespace = id.Workload, id.Namespace
			f.Resolved |= models.ResolvedSourceWorkload | models.ResolvedSourceNamespace
		}
		return
	}
	if s.Workload == "" {
		s.Workload = id.Workload
		f.Resolved |= models.ResolvedSourceWorkload
	}
	if s.Namespace == "" {
		s.Namespace = id.Namespace
		f.Resolved |= models.ResolvedSourceNamespace
	}
	if s.Principal == "" {
		s.Principal = id.Principal
		f.Resolved |= models.ResolvedSourcePrincipal
	}
}

func applyDestination(f *models.Flow, workloads []string, ns, principal string) {
	d := &f.Destination
	if (d.Namespace != "" && d.Namespace != ns) ||
		(d.Workload != "" && len(workloads) > 0 && !contains(workloads, d.Workload)) ||
		(d.Principal != "" && principal != "" && !samePrincipal(d.Principal, principal)) {
		f.IdentityConflict = true
		return
	}
	if d.Namespace == "" {
		d.Namespace = ns
		f.Resolved |= models.ResolvedDestinationNamespace
	}
	// A Service over several workloads (versions, a canary) names none of
	// them alone.
	if d.Workload == "" && len(workloads) == 1 {
		d.Workload = workloads[0]
		f.Resolved |= models.ResolvedDestinationWorkload
	}
	if d.Principal == "" && principal != "" {
		d.Principal = principal
		f.Resolved |= models.ResolvedDestinationPrincipal
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// samePrincipal compares namespace and service account. The trust domain
// is left out: a mesh with trust-domain aliases, or identity.trust_domain
// set unlike the mesh's, would otherwise make every record a conflict,
// and a namespace and account the cluster confirms are the identity.
func samePrincipal(claimed, resolved string) bool {
	c, ok1 := models.ParsePrincipal(claimed)
	r, ok2 := models.ParsePrincipal(resolved)
	return ok1 && ok2 && c.Namespace == r.Namespace && c.ServiceAccount == r.ServiceAccount
}
