package identity

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Identity is what an IP or a Service resolves to.
type Identity struct {
	Workload  string
	Namespace string
	// Principal in Istio's policy form, TRUST_DOMAIN/ns/NS/sa/SA; empty
	// when a Service's pods run as more than one service account.
	Principal string
}

// podRec is one pod as the history knows it; deleted pods stay until
// their last tenure is older than Config.Remember.
type podRec struct {
	name  string
	group *group
	ips   []netip.Addr // the IPs it holds now (open spans)
	spans int          // spans in the history that point here
	// deleted: gone from the cluster, kept for late records; its group
	// loses it when its last span is pruned.
	deleted bool
}

type objKey struct{ ns, name string }

type ownerEntry struct {
	owner     ownerRef
	deletedAt int64 // Unix ms; 0 while it exists
}

type service struct {
	selector map[string]string

	mu        sync.Mutex // guards the cache below, filled under r.mu's read lock
	gen       uint64     // the namespace generation the cache is of, plus one
	workloads []string
	principal string
}

// Resolver maps pod IPs (at a time) and Service hosts to workloads,
// namespaces and principals, from the cluster's informers. Safe for
// concurrent use: informers write, the flow stage reads.
type Resolver struct {
	cfg Config
	now func() time.Time

	mu       sync.RWMutex
	hist     *history
	pods     map[types.UID]*podRec
	groups   map[string]*group
	nsGroups map[string]map[*group]struct{} // r.groups by namespace, for Services
	rsets    map[objKey]ownerEntry
	jobs     map[objKey]ownerEntry
	services map[objKey]*service
	nsGen    map[string]uint64 // bumped when what a namespace's Services select may change

	synced atomic.Bool
	// otherTrustDomain is the first reported principal seen that agrees
	// with the cluster but for its trust domain.
	otherTrustDomain atomic.Pointer[string]
}

// New returns a resolver that knows nothing yet; Start feeds it from a
// cluster, or tests call its handlers.
func New(cfg Config) *Resolver {
	return &Resolver{
		cfg:      cfg,
		now:      time.Now,
		hist:     newHistory(),
		pods:     map[types.UID]*podRec{},
		groups:   map[string]*group{},
		nsGroups: map[string]map[*group]struct{}{},
		rsets:    map[objKey]ownerEntry{},
		jobs:     map[objKey]ownerEntry{},
		services: map[objKey]*service{},
		nsGen:    map[string]uint64{},
	}
}

// Synced reports whether the informers delivered their first full list:
// before that, an IP that resolves to nothing may only not be listed yet.
func (r *Resolver) Synced() bool { return r.synced.Load() }

// Start runs informers for pods, ReplicaSets, Jobs and Services (list and
// watch, cluster-wide) until ctx ends, and forgets old tenures every
// minute. It returns at once; Synced turns true after the first lists.
func (r *Resolver) Start(ctx context.Context, cs kubernetes.Interface, log *slog.Logger) error {
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithTransform(r.transform))
	handlers := []struct {
		inf cache.SharedIndexInformer
		on  func(obj any, deleted bool)
	}{
		{f.Core().V1().Pods().Informer(), r.onPod},
		{f.Apps().V1().ReplicaSets().Informer(), func(obj any, deleted bool) { r.onOwner(r.rsets, obj, deleted) }},
		{f.Batch().V1().Jobs().Informer(), func(obj any, deleted bool) { r.onOwner(r.jobs, obj, deleted) }},
		{f.Core().V1().Services().Informer(), r.onService},
	}
	var synced []cache.InformerSynced
	for _, h := range handlers {
		on := h.on
		reg, err := h.inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { on(obj, false) },
			UpdateFunc: func(_, obj any) { on(obj, false) },
			DeleteFunc: func(obj any) {
				if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
					obj = t.Obj
				}
				on(obj, true)
			},
		})
		if err != nil {
			return err
		}
		synced = append(synced, reg.HasSynced)
	}
	f.Start(ctx.Done())
	go func() {
		if cache.WaitForCacheSync(ctx.Done(), synced...) {
			r.synced.Store(true)
			r.mu.RLock()
			n := len(r.pods)
			r.mu.RUnlock()
			log.Info("identity: pods listed; resolving flows' identities from the cluster", "pods", n)
		}
		f.Shutdown()
	}()
	go func() {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				r.Prune()
			}
		}
	}()
	return nil
}

func (r *Resolver) onPod(obj any, deleted bool) {
	p, ok := obj.(*podObj)
	if !ok {
		return
	}
	now := r.now().UnixMilli()
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.pods[p.UID]
	if rec == nil {
		if deleted || p.hostNetwork || p.terminal {
			// Host-network pods share their node's IP: it names no pod.
			return
		}
		rec = &podRec{name: p.Name}
		r.pods[p.UID] = rec
	}
	if g := r.reintern(p.group); rec.group != g {
		if rec.group != nil {
			r.count(rec.group, -1)
		}
		r.count(g, 1)
		rec.group = g
	}
	want := p.ips
	if deleted || p.terminal || p.hostNetwork {
		want = nil
	}
	for _, ip := range rec.ips {
		if !slices.Contains(want, ip) {
			r.hist.release(ip, rec, now)
		}
	}
	for _, ip := range want {
		if slices.Contains(rec.ips, ip) {
			continue
		}
		// A pod first seen with its IP (the initial list, or created
		// with one) held it since it was created, as far as anyone can
		// tell; an IP an update adds was assigned about now.
		from := now
		if len(rec.ips) == 0 && rec.spans == 0 {
			from = min(p.created, now)
		}
		r.hist.assign(ip, rec, from)
		rec.spans++
	}
	rec.ips = slices.Clone(want)
	if deleted {
		delete(r.pods, p.UID)
		rec.deleted = true
		if rec.spans == 0 {
			r.count(rec.group, -1)
		}
	}
}

// count adds delta to g's pods. What Services select changes only when a
// group gains its first pod or loses its last: a pod more or less of a
// ReplicaSet leaves its Services' workloads as they were.
func (r *Resolver) count(g *group, delta int) {
	g.pods += delta
	if (delta > 0 && g.pods == delta) || (delta < 0 && g.pods <= 0) {
		r.nsGen[g.ns]++
	}
}

// reintern returns g, or the group that replaced it in the map after a
// prune dropped g between the transform and the handler.
func (r *Resolver) reintern(g *group) *group {
	if cur := r.groups[g.key]; cur != nil {
		return cur
	}
	r.addGroup(g)
	return g
}

// onOwner records a ReplicaSet's or Job's controller in m (r.rsets or
// r.jobs).
func (r *Resolver) onOwner(m map[objKey]ownerEntry, obj any, deleted bool) {
	o, ok := obj.(*ownerObj)
	if !ok {
		return
	}
	e := ownerEntry{owner: o.owner}
	if deleted {
		// Its pods are remembered for a while; so is it.
		e.deletedAt = r.now().UnixMilli()
	}
	k := objKey{o.Namespace, o.Name}
	r.mu.Lock()
	defer r.mu.Unlock()
	prev, had := m[k]
	m[k] = e
	if had && prev.owner == e.owner {
		// Status and scale updates, a delete: what its pods are named
		// by did not change.
		return
	}
	for g := range r.nsGroups[o.Namespace] {
		if g.owner.name == o.Name {
			g.workload = r.workloadOf(g)
		}
	}
	r.nsGen[o.Namespace]++
}

func (r *Resolver) onService(obj any, deleted bool) {
	s, ok := obj.(*serviceObj)
	if !ok {
		return
	}
	k := objKey{s.Namespace, s.Name}
	r.mu.Lock()
	defer r.mu.Unlock()
	if deleted {
		delete(r.services, k)
	} else {
		r.services[k] = &service{selector: s.selector}
	}
	r.nsGen[s.Namespace]++
}

// Prune forgets pods whose last tenure ended more than Config.Remember
// ago, and the groups and owners nothing points to any more.
func (r *Resolver) Prune() {
	before := r.now().Add(-r.cfg.Remember).UnixMilli()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hist.prune(before, func(p *podRec) {
		if p.deleted {
			r.count(p.group, -1)
		}
	})
	for k, g := range r.groups {
		if g.pods <= 0 {
			delete(r.groups, k)
			delete(r.nsGroups[g.ns], g)
			if len(r.nsGroups[g.ns]) == 0 {
				delete(r.nsGroups, g.ns)
			}
		}
	}
	for _, m := range []map[objKey]ownerEntry{r.rsets, r.jobs} {
		for k, e := range m {
			if e.deletedAt != 0 && e.deletedAt < before {
				delete(m, k)
			}
		}
	}
}

// workloadOf names a group's workload as Istio does: a Deployment's pods
// by the Deployment, a CronJob's by the CronJob, a StatefulSet's,
// DaemonSet's or Job's by it, a bare pod by itself. Called with r.mu held;
// kept in group.workload, and redone when its owner's owner changes.
func (r *Resolver) workloadOf(g *group) string {
	switch g.owner.kind {
	case "ReplicaSet":
		if e, ok := r.rsets[objKey{g.ns, g.owner.name}]; ok {
			if e.owner.kind == "Deployment" {
				return e.owner.name
			}
			return g.owner.name
		}
		// Not listed (yet): a Deployment's ReplicaSet is named for it
		// and the pod template's hash.
		if h := g.labels["pod-template-hash"]; h != "" {
			if name, ok := strings.CutSuffix(g.owner.name, "-"+h); ok {
				return name
			}
		}
	case "Job":
		if e, ok := r.jobs[objKey{g.ns, g.owner.name}]; ok && e.owner.kind == "CronJob" {
			return e.owner.name
		}
	}
	return g.owner.name
}

// ResolveIP returns the identity of the pod that held ip at t.
func (r *Resolver) ResolveIP(ip netip.Addr, t time.Time) (Identity, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.resolveIP(ip.Unmap(), t.UnixMilli())
}

func (r *Resolver) resolveIP(ip netip.Addr, ms int64) (Identity, bool) {
	p := r.hist.lookup(ip, ms)
	if p == nil {
		return Identity{}, false
	}
	return Identity{Workload: p.group.workload, Namespace: p.group.ns, Principal: p.group.principal}, true
}

// ResolveService returns the workloads the Service named by host
// ("NAME.NS.svc..." as Istio logs it) selects, its namespace, and the
// principal its pods share (or ""). ok is false for a host that names no
// Service the cluster has.
func (r *Resolver) ResolveService(host string) (workloads []string, ns, principal string, ok bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.resolveService(host)
}

func (r *Resolver) resolveService(host string) ([]string, string, string, bool) {
	name, rest, ok := strings.Cut(host, ".")
	if !ok {
		return nil, "", "", false
	}
	ns, rest, ok := strings.Cut(rest, ".")
	if !ok || !(rest == "svc" || strings.HasPrefix(rest, "svc.")) {
		return nil, "", "", false
	}
	s := r.services[objKey{ns, name}]
	if s == nil {
		return nil, "", "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen := r.nsGen[ns] + 1; s.gen != gen {
		s.gen, s.workloads, s.principal = gen, nil, ""
		sas := 0
		for g := range r.nsGroups[ns] {
			if g.pods <= 0 || !selects(s.selector, g.labels) {
				continue
			}
			if w := g.workload; !slices.Contains(s.workloads, w) {
				s.workloads = append(s.workloads, w)
			}
			if g.principal != s.principal {
				s.principal = g.principal
				sas++
			}
		}
		if sas != 1 {
			s.principal = ""
		}
		slices.Sort(s.workloads)
	}
	return s.workloads, ns, s.principal, true
}

// selects is a Service's selector semantics: every key matches, and an
// empty selector selects nothing (its endpoints are managed by hand).
func selects(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if lv, ok := labels[k]; !ok || lv != v {
			return false
		}
	}
	return true
}
