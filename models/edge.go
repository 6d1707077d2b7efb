package models

import "net/netip"

// EndpointKind says what an EndpointID's Name is.
type EndpointKind uint8

const (
	// KindUnknown: nothing identifies this side (an empty EndpointID).
	KindUnknown EndpointKind = iota
	// KindWorkload: Name is a workload (Deployment, StatefulSet, ...).
	KindWorkload
	// KindServiceAccount: Name is the service account of the peer's
	// mTLS principal; used when the workload is not known.
	KindServiceAccount
	// KindService: Name is the short name of the destination service.
	KindService
	// KindIP: only an address is known (plaintext callers outside the mesh).
	KindIP
)

var kindNames = [...]string{"unknown", "workload", "serviceaccount", "service", "ip"}

func (k EndpointKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// EndpointID names one side of an edge by the most specific stable identity
// known. It is comparable, so Edge works as a map key without allocating.
type EndpointID struct {
	Kind      EndpointKind
	Namespace string
	Name      string
	IP        netip.Addr // set only for KindIP
}

// String renders "namespace/name", or the IP for KindIP, or "unknown".
// It allocates; keep it off the hot path.
func (e EndpointID) String() string {
	switch e.Kind {
	case KindIP:
		return e.IP.String()
	case KindUnknown:
		return "unknown"
	case KindServiceAccount:
		return e.Namespace + "/sa:" + e.Name
	}
	return e.Namespace + "/" + e.Name
}

// Edge is the key of a service-to-service edge: who called whom.
type Edge struct {
	Source      EndpointID
	Destination EndpointID
}

// String renders "src -> dst". It allocates; keep it off the hot path.
func (e Edge) String() string { return e.Source.String() + " -> " + e.Destination.String() }

func sourceEndpoint(s *Source) EndpointID {
	if s.Workload != "" {
		return EndpointID{Kind: KindWorkload, Namespace: s.Namespace, Name: s.Workload}
	}
	if p, ok := ParsePrincipal(s.Principal); ok {
		return EndpointID{Kind: KindServiceAccount, Namespace: p.Namespace, Name: p.ServiceAccount}
	}
	if s.IP.IsValid() {
		return EndpointID{Kind: KindIP, IP: s.IP}
	}
	return EndpointID{}
}

func destinationEndpoint(d *Destination) EndpointID {
	if d.Workload != "" {
		return EndpointID{Kind: KindWorkload, Namespace: d.Namespace, Name: d.Workload}
	}
	if name, ns, ok := ServiceName(d.Service); ok {
		return EndpointID{Kind: KindService, Namespace: ns, Name: name}
	}
	if p, ok := ParsePrincipal(d.Principal); ok {
		return EndpointID{Kind: KindServiceAccount, Namespace: p.Namespace, Name: p.ServiceAccount}
	}
	return EndpointID{}
}

// ServiceName splits a Kubernetes service FQDN "name.ns.svc[.domain]" into
// its name and namespace. Hosts outside the cluster's naming are not ok.
func ServiceName(fqdn string) (name, namespace string, ok bool) {
	i := indexByte(fqdn, '.')
	if i <= 0 {
		return "", "", false
	}
	rest := fqdn[i+1:]
	j := indexByte(rest, '.')
	if j <= 0 {
		return "", "", false
	}
	if tail := rest[j+1:]; tail != "svc" && (len(tail) < 4 || tail[:4] != "svc.") {
		return "", "", false
	}
	return fqdn[:i], rest[:j], true
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}
