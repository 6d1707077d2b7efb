package posture

// Which ALLOW AuthorizationPolicies apply to a workload. Istio evaluates
// CUSTOM, then DENY, then ALLOW policies; a workload that no ALLOW policy
// selects allows every request no DENY matches (allow by default), and
// one that any ALLOW policy selects denies what none of them allows. A
// policy in the root namespace applies in every namespace, one in another
// namespace only there; without a selector to every workload of its
// scope. Policies with targetRef(s) attach to gateways and waypoints,
// not to sidecars, and are not counted; dry-run ones are listed apart,
// since Istio does not enforce them.

// Coverage is a workload's ALLOW policies.
type Coverage struct {
	// State is "covered", "uncovered" (allowed by default) or "unknown"
	// (its pod labels are not known and selector policies could apply).
	State string `json:"state"`
	// Policies are the enforced ALLOW policies that apply ("ns/name").
	Policies []string `json:"policies,omitempty"`
	// DryRun are ALLOW policies that apply in istio.io/dry-run only.
	DryRun []string `json:"dry_run,omitempty"`
}

// The coverage states.
const (
	Covered   = "covered"
	Uncovered = "uncovered"
	Unknown   = "unknown"
)

// allowIndex holds the ALLOW policies by namespace ("" for the root's).
type allowIndex struct {
	root string
	byNS map[string][]AuthorizationPolicy
}

func newAllowIndex(c *Cluster) *allowIndex {
	ix := &allowIndex{root: c.RootNamespace, byNS: map[string][]AuthorizationPolicy{}}
	for _, p := range c.AuthorizationPolicies {
		if p.Action != "ALLOW" || p.TargetRefs {
			continue
		}
		ix.byNS[p.Namespace] = append(ix.byNS[p.Namespace], p)
	}
	return ix
}

func (ix *allowIndex) coverage(ns string, labels map[string]string, known bool) Coverage {
	var c Coverage
	undecided := false
	scopes := [][]AuthorizationPolicy{ix.byNS[ix.root]}
	if ns != ix.root {
		scopes = append(scopes, ix.byNS[ns])
	}
	for _, ps := range scopes {
		for _, p := range ps {
			switch {
			case p.Selector != nil && !known:
				undecided = true
				continue
			case p.Selector != nil && !matches(p.Selector, labels):
				continue
			}
			name := p.Namespace + "/" + p.Name
			if p.DryRun {
				c.DryRun = append(c.DryRun, name)
			} else {
				c.Policies = append(c.Policies, name)
			}
		}
	}
	switch {
	case len(c.Policies) > 0:
		c.State = Covered
	case undecided:
		c.State = Unknown
	default:
		c.State = Uncovered
	}
	return c
}
