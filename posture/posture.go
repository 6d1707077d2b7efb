// Package posture is meshguard's zero-trust posture: from the flows
// stored over a span, the share of requests over mTLS, in plaintext and
// of unknown transport (models.TLS), per namespace, workload and edge;
// the plaintext edges with when they were seen and sample request ids;
// the workloads with no mesh identity; and, from the cluster, the
// PeerAuthentication mode in force for each workload and port, the edges
// a namespace-wide STRICT would break, and the workloads no ALLOW
// AuthorizationPolicy covers.
//
// Telemetry is evidence: a share of unknown is reported as unknown, never
// folded into mTLS or plaintext, and a gap edge whose callers showed no
// TLS evidence is "unverified", not "breaks".
package posture

import (
	"cmp"
	"slices"
	"time"

	"github.com/meshguard/meshguard/storage"
)

// Shares are requests by TLS state and their shares of the total (0 to 1;
// all 0 without requests).
type Shares struct {
	Requests       uint64  `json:"requests"`
	MTLS           uint64  `json:"mtls"`
	Plaintext      uint64  `json:"plaintext"`
	Unknown        uint64  `json:"unknown"`
	MTLSShare      float64 `json:"mtls_share"`
	PlaintextShare float64 `json:"plaintext_share"`
	UnknownShare   float64 `json:"unknown_share"`
}

func (s *Shares) add(e *storage.PostureEdge) {
	s.MTLS += e.MTLS
	s.Plaintext += e.Plaintext
	s.Unknown += e.Unknown
}

// Finish computes Requests and the shares from the counts.
func (s *Shares) Finish() {
	s.Requests = s.MTLS + s.Plaintext + s.Unknown
	if s.Requests == 0 {
		return
	}
	n := float64(s.Requests)
	s.MTLSShare, s.PlaintextShare, s.UnknownShare = float64(s.MTLS)/n, float64(s.Plaintext)/n, float64(s.Unknown)/n
}

// Party is one side of an edge.
type Party struct {
	Principal string `json:"principal,omitempty"`
	Workload  string `json:"workload,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	IP        string `json:"ip,omitempty"`
}

// Name is how tables print the party.
func (p Party) Name() string {
	switch {
	case p.Workload != "":
		return p.Namespace + "/" + p.Workload
	case p.Principal != "":
		return p.Principal
	case p.IP != "":
		return p.IP
	}
	return "(unknown)"
}

// Edge is one observed edge (source to destination workload and port).
type Edge struct {
	Source      Party  `json:"source"`
	Destination Party  `json:"destination"`
	Port        uint16 `json:"port"`
	Shares
	FirstSeen          time.Time  `json:"first_seen"`
	LastSeen           time.Time  `json:"last_seen"`
	PlaintextFirstSeen *time.Time `json:"plaintext_first_seen,omitempty"`
	PlaintextLastSeen  *time.Time `json:"plaintext_last_seen,omitempty"`
	// SampleRequestIDs are ids of plaintext requests.
	SampleRequestIDs []string `json:"sample_request_ids,omitempty"`
	// Mode is the destination's mTLS mode on Port (nil without the
	// cluster).
	Mode *ModeInForce `json:"mode,omitempty"`
}

// Identity says whether a workload showed a mesh identity.
const (
	// IdentityMesh: some record carried a principal for it.
	IdentityMesh = "mesh"
	// IdentityNone: none did, and some of its requests were plaintext.
	IdentityNone = "none"
	// IdentityUnknown: none did, and no record showed plaintext either.
	IdentityUnknown = "unknown"
)

// Workload is one workload seen, as source or destination.
type Workload struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Inbound are the requests it received; Outbound those it sent.
	Inbound  Shares `json:"inbound"`
	Outbound Shares `json:"outbound"`
	// Principals are the mesh identities it showed.
	Principals []string `json:"principals,omitempty"`
	Identity   string   `json:"identity"`
	// Ports are the ports it was called on.
	Ports []uint16 `json:"ports,omitempty"`
	// Mode is its mTLS mode (nil without the cluster); PortModes the
	// ports whose mode differs from it.
	Mode      *ModeInForce           `json:"mode,omitempty"`
	PortModes map[uint16]ModeInForce `json:"port_modes,omitempty"`
	// Allow is its ALLOW AuthorizationPolicy coverage (nil without the
	// cluster).
	Allow *Coverage `json:"allow,omitempty"`
	// LabelsKnown: its pods' labels were found in the cluster.
	LabelsKnown bool `json:"labels_known"`
}

// Namespace is one namespace's inbound requests and mode.
type Namespace struct {
	Name string `json:"name"`
	Shares
	Workloads int `json:"workloads"`
	// Mode is the namespace-wide mode (mesh-wide when it has none), nil
	// without the cluster.
	Mode *ModeInForce `json:"mode,omitempty"`
}

// Gap is what a namespace-wide STRICT would do to a namespace's
// observed callers.
type Gap struct {
	Namespace string `json:"namespace"`
	// Breaks are edges with plaintext requests into workloads that
	// STRICT would cover: those requests would be refused.
	Breaks []Edge `json:"breaks"`
	// Unverified are edges whose requests carried no TLS evidence (and
	// none plaintext): they may break; the telemetry cannot say.
	Unverified []Edge `json:"unverified"`
	// Exempt are edges with plaintext into workloads whose own
	// workload- or port-level policy keeps them from the namespace's mode.
	Exempt []Edge `json:"exempt,omitempty"`
}

// Posture is the whole answer. Lists are sorted by namespace, then name.
type Posture struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// ClusterRead: the modes and coverage come from the cluster; without
	// it they are absent.
	ClusterRead   bool   `json:"cluster_read"`
	RootNamespace string `json:"root_namespace,omitempty"`

	Total      Shares      `json:"total"`
	Namespaces []Namespace `json:"namespaces"`
	Workloads  []Workload  `json:"workloads"`
	// Edges are the busiest edges, at most Options.MaxEdges; EdgeCount
	// is how many there were.
	Edges     []Edge `json:"edges"`
	EdgeCount int    `json:"edge_count"`
	// PlaintextEdges are every edge with plaintext requests.
	PlaintextEdges []Edge `json:"plaintext_edges"`
	// NoIdentity are workloads (and bare IPs) that showed no mesh identity
	// and sent or received plaintext.
	NoIdentity []Party `json:"no_identity"`
	// Gaps are per namespace with callers that are not all mTLS.
	Gaps []Gap `json:"strict_gaps"`
	// Uncovered are workloads no enforced ALLOW policy covers.
	Uncovered []Party `json:"uncovered"`
}

// Options tune Build.
type Options struct {
	// MaxEdges caps Posture.Edges (the busiest first); 0: DefaultMaxEdges.
	MaxEdges int
}

// DefaultMaxEdges keeps a posture of a million edges readable.
const DefaultMaxEdges = 1000

// Build computes the posture of edges (storage.PostureEdges over
// [from, to)). cluster may be nil: then no modes, gaps or coverage.
func Build(edges []storage.PostureEdge, cluster *Cluster, from, to time.Time, opt Options) *Posture {
	p := &Posture{From: from.UTC(), To: to.UTC(), ClusterRead: cluster != nil,
		Namespaces: []Namespace{}, Workloads: []Workload{}, Edges: []Edge{}, PlaintextEdges: []Edge{},
		NoIdentity: []Party{}, Gaps: []Gap{}, Uncovered: []Party{}}
	var peers *peerIndex
	var allow *allowIndex
	if cluster != nil {
		p.RootNamespace = cluster.RootNamespace
		peers, allow = newPeerIndex(cluster), newAllowIndex(cluster)
	}
	b := builder{cluster: cluster, peers: peers, workloads: map[workloadKey]*workloadAcc{}, namespaces: map[string]*Namespace{},
		bareIPs: map[string]*identityAcc{}, modes: map[modeKey]*ModeInForce{}}
	all := make([]Edge, 0, len(edges))
	for i := range edges {
		all = append(all, b.edge(&edges[i]))
	}
	b.finishWorkloads(p, allow)
	b.finishNamespaces(p)
	p.Total = b.total
	p.Total.Finish()
	p.EdgeCount = len(all)
	for i := range all {
		if all[i].Plaintext > 0 {
			p.PlaintextEdges = append(p.PlaintextEdges, all[i])
		}
	}
	if cluster != nil {
		p.Gaps = b.gaps(all)
	}
	p.Edges = append(p.Edges, busiest(all, cmp.Or(opt.MaxEdges, DefaultMaxEdges))...)
	return p
}

// busiest returns the n edges with the most requests, busiest first and
// in all's order among equals. A min-heap of n indices: a million edges
// are looked at once each, and only the n kept are ever sorted.
func busiest(all []Edge, n int) []Edge {
	// worse reports whether edge a ranks below edge b.
	worse := func(a, b int32) bool {
		if all[a].Requests != all[b].Requests {
			return all[a].Requests < all[b].Requests
		}
		return a > b
	}
	h := make([]int32, 0, min(n, len(all)))
	down := func(i int) {
		for {
			l, m := 2*i+1, i
			if l < len(h) && worse(h[l], h[m]) {
				m = l
			}
			if r := l + 1; r < len(h) && worse(h[r], h[m]) {
				m = r
			}
			if m == i {
				return
			}
			h[i], h[m] = h[m], h[i]
			i = m
		}
	}
	for i := range all {
		switch {
		case len(h) < n:
			h = append(h, int32(i))
			for j := len(h) - 1; j > 0 && worse(h[j], h[(j-1)/2]); j = (j - 1) / 2 {
				h[j], h[(j-1)/2] = h[(j-1)/2], h[j]
			}
		case n > 0 && worse(h[0], int32(i)):
			h[0] = int32(i)
			down(0)
		}
	}
	slices.SortFunc(h, func(a, b int32) int {
		if worse(a, b) {
			return 1
		}
		return -1
	})
	out := make([]Edge, len(h))
	for i, j := range h {
		out[i] = all[j]
	}
	return out
}

type identityAcc struct {
	principals map[string]struct{}
	plaintext  bool
}

func (a *identityAcc) saw(principal string, plaintext bool) {
	if principal != "" {
		if a.principals == nil {
			a.principals = map[string]struct{}{}
		}
		a.principals[principal] = struct{}{}
	}
	a.plaintext = a.plaintext || plaintext
}

func (a *identityAcc) state() string {
	switch {
	case len(a.principals) > 0:
		return IdentityMesh
	case a.plaintext:
		return IdentityNone
	}
	return IdentityUnknown
}

type workloadKey struct{ ns, name string }

type workloadAcc struct {
	w     Workload
	id    identityAcc
	ports map[uint16]struct{}
}

type builder struct {
	cluster    *Cluster
	peers      *peerIndex
	workloads  map[workloadKey]*workloadAcc
	namespaces map[string]*Namespace
	bareIPs    map[string]*identityAcc
	total      Shares
	// modes caches the mode on a destination's port: a million edges
	// share some ten thousand destinations.
	modes map[modeKey]*ModeInForce
}

type modeKey struct {
	ns, workload string
	port         uint16
}

// edgeMode is the destination's mode on port, computed once per
// destination and port and shared by its edges (read-only).
func (b *builder) edgeMode(ns, wl string, port uint16) *ModeInForce {
	k := modeKey{ns, wl, port}
	if m, ok := b.modes[k]; ok {
		return m
	}
	labels, known := b.cluster.labelsOf(ns, wl)
	m := b.peers.modeFor(ns, labels, known, port, false)
	b.modes[k] = &m
	return &m
}

func (b *builder) workload(ns, name string) *workloadAcc {
	k := workloadKey{ns, name}
	w := b.workloads[k]
	if w == nil {
		w = &workloadAcc{w: Workload{Namespace: ns, Name: name}, ports: map[uint16]struct{}{}}
		b.workloads[k] = w
	}
	return w
}

func (b *builder) namespace(ns string) *Namespace {
	n := b.namespaces[ns]
	if n == nil {
		n = &Namespace{Name: ns}
		b.namespaces[ns] = n
	}
	return n
}

// edge turns a stored edge into an Edge and counts it into its
// workloads and namespace.
func (b *builder) edge(s *storage.PostureEdge) Edge {
	e := Edge{
		Source:      Party{Principal: s.SourcePrincipal, Workload: s.SourceWorkload, Namespace: s.SourceNamespace, IP: s.SourceIP},
		Destination: Party{Principal: s.DestinationPrincipal, Workload: s.DestinationWorkload, Namespace: s.DestinationNamespace},
		Port:        s.DestinationPort, FirstSeen: s.FirstSeen, LastSeen: s.LastSeen, SampleRequestIDs: s.SampleRequestIDs,
	}
	e.add(s)
	e.Finish()
	b.total.add(s)
	if s.Plaintext > 0 {
		first, last := s.PlaintextFirstSeen, s.PlaintextLastSeen
		e.PlaintextFirstSeen, e.PlaintextLastSeen = &first, &last
	}
	plaintext := s.Plaintext > 0
	switch {
	case s.SourceWorkload != "":
		src := b.workload(s.SourceNamespace, s.SourceWorkload)
		src.w.Outbound.add(s)
		src.id.saw(s.SourcePrincipal, plaintext)
	case s.SourcePrincipal == "" && s.SourceIP != "":
		a := b.bareIPs[s.SourceIP]
		if a == nil {
			a = &identityAcc{}
			b.bareIPs[s.SourceIP] = a
		}
		a.saw("", plaintext)
	}
	if s.DestinationWorkload != "" {
		dst := b.workload(s.DestinationNamespace, s.DestinationWorkload)
		dst.w.Inbound.add(s)
		dst.id.saw(s.DestinationPrincipal, plaintext)
		dst.ports[s.DestinationPort] = struct{}{}
		if b.peers != nil {
			e.Mode = b.edgeMode(s.DestinationNamespace, s.DestinationWorkload, s.DestinationPort)
		}
	}
	if s.DestinationNamespace != "" {
		b.namespace(s.DestinationNamespace).add(s)
	}
	return e
}

func (b *builder) finishWorkloads(p *Posture, allow *allowIndex) {
	for _, acc := range b.workloads {
		w := &acc.w
		w.Inbound.Finish()
		w.Outbound.Finish()
		for pr := range acc.id.principals {
			w.Principals = append(w.Principals, pr)
		}
		slices.Sort(w.Principals)
		w.Identity = acc.id.state()
		for port := range acc.ports {
			w.Ports = append(w.Ports, port)
		}
		slices.Sort(w.Ports)
		if b.cluster != nil {
			labels, known := b.cluster.labelsOf(w.Namespace, w.Name)
			w.LabelsKnown = known
			m := b.peers.modeFor(w.Namespace, labels, known, 0, false)
			w.Mode = &m
			for _, port := range w.Ports {
				if pm := b.peers.modeFor(w.Namespace, labels, known, port, false); pm != m {
					if w.PortModes == nil {
						w.PortModes = map[uint16]ModeInForce{}
					}
					w.PortModes[port] = pm
				}
			}
			c := allow.coverage(w.Namespace, labels, known)
			w.Allow = &c
			if c.State == Uncovered {
				p.Uncovered = append(p.Uncovered, Party{Workload: w.Name, Namespace: w.Namespace})
			}
		}
		if w.Identity == IdentityNone {
			p.NoIdentity = append(p.NoIdentity, Party{Workload: w.Name, Namespace: w.Namespace})
		}
		b.namespace(w.Namespace).Workloads++
		p.Workloads = append(p.Workloads, *w)
	}
	for ip, a := range b.bareIPs {
		if a.state() == IdentityNone {
			p.NoIdentity = append(p.NoIdentity, Party{IP: ip})
		}
	}
	slices.SortFunc(p.Workloads, func(a, b Workload) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	sortParties(p.NoIdentity)
	sortParties(p.Uncovered)
}

func sortParties(ps []Party) {
	slices.SortFunc(ps, func(a, b Party) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Workload, b.Workload), cmp.Compare(a.IP, b.IP))
	})
}

func (b *builder) finishNamespaces(p *Posture) {
	for _, n := range b.namespaces {
		n.Finish()
		if b.peers != nil {
			m := b.peers.modeFor(n.Name, nil, false, 0, false)
			m.Uncertain = false // the namespace-wide mode, no workload's
			n.Mode = &m
		}
		p.Namespaces = append(p.Namespaces, *n)
	}
	slices.SortFunc(p.Namespaces, func(a, b Namespace) int { return cmp.Compare(a.Name, b.Name) })
}

// gaps: for each destination namespace, its edges that are not all mTLS,
// under a namespace-wide STRICT.
func (b *builder) gaps(edges []Edge) []Gap {
	at := map[string]int{}
	var out []Gap
	for i := range edges {
		e := &edges[i]
		if e.Destination.Namespace == "" || e.Plaintext+e.Unknown == 0 {
			continue
		}
		ns := e.Destination.Namespace
		j, ok := at[ns]
		if !ok {
			j = len(out)
			at[ns] = j
			out = append(out, Gap{Namespace: ns, Breaks: []Edge{}, Unverified: []Edge{}})
		}
		labels, known := b.cluster.labelsOf(ns, e.Destination.Workload)
		if e.Destination.Workload == "" {
			known = false
		}
		m := b.peers.modeFor(ns, labels, known, e.Port, true)
		g := &out[j]
		switch {
		case m.Mode != ModeStrict && e.Plaintext > 0:
			g.Exempt = append(g.Exempt, *e)
		case m.Mode != ModeStrict:
		case e.Plaintext > 0:
			g.Breaks = append(g.Breaks, *e)
		default:
			g.Unverified = append(g.Unverified, *e)
		}
	}
	slices.SortFunc(out, func(a, b Gap) int { return cmp.Compare(a.Namespace, b.Namespace) })
	return out
}
