package identity

import (
	"net/netip"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The informers keep what the transform returns, not the objects the API
// sent: a Pod as listed is several kilobytes (spec, status, managed
// fields), of which resolution needs its IPs, owner and service account.
// Each kept object holds a bare ObjectMeta (name, namespace, UID,
// resourceVersion) so that the informer's store and key functions work.
// A pod's labels, service account and owner are the same for every pod of
// a ReplicaSet, so they live once in a shared group.

// ownerRef is an object's controller: kind and name.
type ownerRef struct{ kind, name string }

// podObj is what the pod informer keeps of a Pod.
type podObj struct {
	metav1.ObjectMeta
	group       *group
	created     int64 // Unix ms
	ips         []netip.Addr
	hostNetwork bool
	terminal    bool // Succeeded or Failed: the IP went back to the pool
}

// ownerObj is what the ReplicaSet and Job informers keep: the owner.
type ownerObj struct {
	metav1.ObjectMeta
	owner ownerRef
}

// serviceObj is what the Service informer keeps: the selector.
type serviceObj struct {
	metav1.ObjectMeta
	selector map[string]string
}

// group is the pods that share a namespace, controller, service account
// and labels: what a Service selects and what a workload is.
type group struct {
	key       string
	ns        string
	owner     ownerRef // the pod's controller; kind "" for a bare pod
	sa        string
	principal string
	workload  string // workloadOf
	labels    map[string]string
	pods      int // podRecs that point here
}

// bare keeps only what the store and key functions read.
func bare(m *metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion}
}

func controllerOf(refs []metav1.OwnerReference) ownerRef {
	for _, r := range refs {
		if r.Controller != nil && *r.Controller {
			return ownerRef{kind: r.Kind, name: r.Name}
		}
	}
	return ownerRef{}
}

// transform strips what the informers list and watch to what resolution
// reads. It is idempotent, as client-go requires: its own output (seen
// again on a resync) passes through.
func (r *Resolver) transform(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Pod:
		return r.stripPod(o), nil
	case *appsv1.ReplicaSet:
		return &ownerObj{ObjectMeta: bare(&o.ObjectMeta), owner: controllerOf(o.OwnerReferences)}, nil
	case *batchv1.Job:
		return &ownerObj{ObjectMeta: bare(&o.ObjectMeta), owner: controllerOf(o.OwnerReferences)}, nil
	case *corev1.Service:
		var sel map[string]string
		if len(o.Spec.Selector) > 0 {
			sel = o.Spec.Selector
		}
		return &serviceObj{ObjectMeta: bare(&o.ObjectMeta), selector: sel}, nil
	}
	return obj, nil
}

func (r *Resolver) stripPod(p *corev1.Pod) *podObj {
	out := &podObj{
		ObjectMeta:  bare(&p.ObjectMeta),
		created:     p.CreationTimestamp.UnixMilli(),
		hostNetwork: p.Spec.HostNetwork,
		terminal:    p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed,
	}
	for _, ip := range p.Status.PodIPs {
		if a, err := netip.ParseAddr(ip.IP); err == nil {
			out.ips = append(out.ips, a.Unmap())
		}
	}
	if len(out.ips) == 0 && p.Status.PodIP != "" {
		if a, err := netip.ParseAddr(p.Status.PodIP); err == nil {
			out.ips = []netip.Addr{a.Unmap()}
		}
	}
	owner := controllerOf(p.OwnerReferences)
	if owner.kind == "" {
		// A bare pod is its own workload, as Istio names it.
		owner = ownerRef{kind: "Pod", name: p.Name}
	}
	sa := p.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	r.mu.Lock()
	out.group = r.internGroup(p.Namespace, owner, sa, p.Labels)
	r.mu.Unlock()
	return out
}

// addGroup indexes g. Called with r.mu held.
func (r *Resolver) addGroup(g *group) {
	r.groups[g.key] = g
	m := r.nsGroups[g.ns]
	if m == nil {
		m = map[*group]struct{}{}
		r.nsGroups[g.ns] = m
	}
	m[g] = struct{}{}
}

// internGroup returns the group of pods with these attributes, creating
// it. Called with r.mu held.
func (r *Resolver) internGroup(ns string, owner ownerRef, sa string, labels map[string]string) *group {
	var b strings.Builder
	b.WriteString(ns)
	b.WriteByte(0)
	b.WriteString(owner.kind)
	b.WriteByte(0)
	b.WriteString(owner.name)
	b.WriteByte(0)
	b.WriteString(sa)
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteByte(0)
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(labels[k])
	}
	key := b.String()
	if g := r.groups[key]; g != nil {
		return g
	}
	g := &group{key: key, ns: ns, owner: owner, sa: sa, labels: labels,
		principal: r.cfg.TrustDomain + "/ns/" + ns + "/sa/" + sa}
	g.workload = r.workloadOf(g)
	r.addGroup(g)
	return g
}
