package posture

// Istio's PeerAuthentication precedence (istio.io, docs/reference/config/
// security/peer_authentication and concepts/security "Peer authentication"):
// a workload-specific policy (spec.selector, in the workload's namespace)
// overrides the namespace-wide one (no selector), which overrides the
// mesh-wide one (no selector, in the root namespace); selector policies in
// the root namespace are ignored. UNSET inherits the parent's mode; with
// nothing set the mode is PERMISSIVE. Port-level modes (portLevelMtls)
// override the workload's mode on that port. Among several policies of
// one level, the oldest applies.

// Level says where the mode in force comes from.
type Level string

// The levels, most specific first.
const (
	LevelPort      Level = "port"
	LevelWorkload  Level = "workload"
	LevelNamespace Level = "namespace"
	LevelMesh      Level = "mesh"
	LevelDefault   Level = "default"
	// LevelHypothetical: the namespace-wide STRICT of a gap analysis.
	LevelHypothetical Level = "hypothetical"
)

// ModeInForce is the mTLS mode for one workload's port and why.
type ModeInForce struct {
	Mode  Mode  `json:"mode"`
	Level Level `json:"level"`
	// Policy is the PeerAuthentication ("namespace/name"), empty at
	// LevelDefault.
	Policy string `json:"policy,omitempty"`
	// Uncertain: the workload's pod labels are not known and its namespace
	// has selector policies, so a workload-level policy may apply.
	Uncertain bool `json:"uncertain,omitempty"`
}

// peerIndex holds the PeerAuthentications by level, oldest first.
type peerIndex struct {
	mesh      *PeerAuthentication
	namespace map[string]*PeerAuthentication
	selectors map[string][]PeerAuthentication
}

func newPeerIndex(c *Cluster) *peerIndex {
	ps := append([]PeerAuthentication(nil), c.PeerAuthentications...)
	oldestFirst(ps)
	ix := &peerIndex{namespace: map[string]*PeerAuthentication{}, selectors: map[string][]PeerAuthentication{}}
	for i := range ps {
		p := &ps[i]
		switch {
		case p.Selector == nil && p.Namespace == c.RootNamespace:
			if ix.mesh == nil {
				ix.mesh = p
			}
		case p.Selector == nil:
			if ix.namespace[p.Namespace] == nil {
				ix.namespace[p.Namespace] = p
			}
		case p.Namespace != c.RootNamespace:
			ix.selectors[p.Namespace] = append(ix.selectors[p.Namespace], *p)
		}
	}
	return ix
}

// modeFor resolves the mode on a workload's port. strictNamespace, when
// true, stands a namespace-wide STRICT in for the namespace's own policy
// (the gap analysis: what if this namespace went STRICT).
func (ix *peerIndex) modeFor(ns string, labels map[string]string, known bool, port uint16, strictNamespace bool) ModeInForce {
	m := ModeInForce{Mode: ModePermissive, Level: LevelDefault}
	set := func(mode Mode, level Level, p *PeerAuthentication) {
		if mode == ModeUnset {
			return
		}
		m.Mode, m.Level, m.Policy = mode, level, ""
		if p != nil {
			m.Policy = p.Namespace + "/" + p.Name
		}
	}
	if ix.mesh != nil {
		set(ix.mesh.Mode, LevelMesh, ix.mesh)
	}
	if strictNamespace {
		set(ModeStrict, LevelHypothetical, nil)
	} else if p := ix.namespace[ns]; p != nil {
		set(p.Mode, LevelNamespace, p)
	}
	sels := ix.selectors[ns]
	if !known {
		m.Uncertain = len(sels) > 0
		return m
	}
	for i := range sels {
		p := &sels[i]
		if !matches(p.Selector, labels) {
			continue
		}
		set(p.Mode, LevelWorkload, p)
		if pm, ok := p.PortModes[port]; ok {
			set(pm, LevelPort, p)
		}
		break // the oldest matching one applies
	}
	return m
}
