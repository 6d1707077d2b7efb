package respond

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/meshguard/meshguard/models"
)

// Labels and annotations meshguard puts on every object it writes.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "meshguard"
	LabelInstance  = "meshguard.io/instance"
	LabelActionID  = "meshguard.io/action-id"
	LabelRole      = "meshguard.io/role"

	AnnotationDetectionID   = "meshguard.io/detection-id"
	AnnotationDetectionKind = "meshguard.io/detection-kind"
	AnnotationAction        = "meshguard.io/action"
	AnnotationExpiresAt     = "meshguard.io/expires-at"
	AnnotationCreatedAt     = "meshguard.io/created-at"
	AnnotationPromoteAt     = "meshguard.io/promote-at"
	AnnotationReason        = "meshguard.io/reason"
	AnnotationTarget        = "meshguard.io/target"
	AnnotationSourceWL      = "meshguard.io/source-workload"
	AnnotationDestination   = "meshguard.io/destination"
	AnnotationDryRun        = "istio.io/dry-run"
	// AnnotationBudget is "none" on actions that spent no budget (their
	// identities were not confirmed, so they are dry-run only).
	AnnotationBudget = "meshguard.io/budget"

	// FieldManager owns every field meshguard applies (server-side apply).
	FieldManager = "meshguard"
)

// Role is the part one object plays in an action.
type Role string

const (
	// RoleEdge denies the source's calls to the selected destination.
	RoleEdge Role = "edge"
	// RoleOutbound, in the root namespace, denies everything the source
	// sends, mesh-wide.
	RoleOutbound Role = "outbound"
	// RoleInbound denies everything sent to the selected workload.
	RoleInbound Role = "inbound"
	// RoleIsolate (NetworkPolicy) isolates the selected pods both ways.
	RoleIsolate Role = "isolate"
)

// Meta is what every object of one action carries in its labels and
// annotations: the state respond reads back from the API server.
type Meta struct {
	ActionID      string
	Instance      string
	Action        models.ActionKind
	DetectionID   string
	DetectionKind models.DetectionKind
	Reason        string
	Target        string
	// SourceWorkload and Destination are "namespace/workload", or "".
	SourceWorkload string
	Destination    string
	CreatedAt      time.Time
	ExpiresAt      time.Time
	// PromoteAt is when a staged dry-run policy becomes enforced; zero
	// means never by itself.
	PromoteAt time.Time
	// Unverified: the action's identities were not confirmed by the
	// cluster; it spent no budget and is never promoted by itself.
	Unverified bool
}

// Policy is one object a backend writes: backend-neutral, built only
// from validated names.
type Policy struct {
	Name      string
	Namespace string
	Role      Role
	// Selector selects the pods the policy applies to; empty only for
	// RoleOutbound (everything in the mesh).
	Selector map[string]string
	// SourcePrincipal or SourceIPBlocks (or both: either matches) names
	// the denied caller for RoleEdge and RoleOutbound.
	SourcePrincipal string
	SourceIPBlocks  []string
	DryRun          bool
	Meta            Meta
}

// Mode is the policy's mode: dry-run or enforce.
func (p Policy) Mode() models.Mode {
	if p.DryRun {
		return models.ModeDryRun
	}
	return models.ModeEnforce
}

// source is a detection's source, validated. The principal's namespace
// and the workload's are kept apart: a record may claim one workload and
// another namespace's principal, and each is guarded on its own.
type source struct {
	Principal   string // "td/ns/NS/sa/SA"
	PrincipalNS string
	SA          string
	IPBlock     string // "1.2.3.4/32"
	Namespace   string // the workload's
	Workload    string
	// PodIPs are the IPs of the workload's running pods, as the cluster
	// reports them (never telemetry): what a policy names for a caller
	// without a principal (plaintext). Not part of the action's key.
	PodIPs []string
	// podIPsWhy says why PodIPs is empty when they were looked for.
	podIPsWhy string
}

// parseSource validates the attacker-influenced strings of p; fields
// that do not validate are left empty, so they never reach an object.
func parseSource(p models.Party) (source, []string) {
	var s source
	var problems []string
	if p.Principal != "" {
		if pr, ok := models.ParsePrincipal(p.Principal); ok && validPrincipal(pr) {
			s.Principal, s.PrincipalNS, s.SA = pr.String(), pr.Namespace, pr.ServiceAccount
		} else {
			problems = append(problems, fmt.Sprintf("source principal %q is not a valid principal", p.Principal))
		}
	}
	if p.IP != "" {
		if a, err := netip.ParseAddr(p.IP); err == nil && !a.IsUnspecified() && a.Zone() == "" {
			a = a.Unmap()
			s.IPBlock = netip.PrefixFrom(a, a.BitLen()).String()
		} else {
			problems = append(problems, fmt.Sprintf("source ip %q is not one address", p.IP))
		}
	}
	if p.Namespace != "" || p.Workload != "" {
		ns, wl, err := validWorkload(p.Namespace, p.Workload)
		if err != nil {
			problems = append(problems, "source "+err.Error())
		} else {
			s.Namespace, s.Workload = ns, wl
		}
	}
	return s, problems
}

func validPrincipal(p models.Principal) bool {
	return len(validation.IsDNS1123Subdomain(p.TrustDomain)) == 0 &&
		len(validation.IsDNS1123Label(p.Namespace)) == 0 &&
		len(validation.IsDNS1123Subdomain(p.ServiceAccount)) == 0
}

func validWorkload(ns, wl string) (string, string, error) {
	if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
		return "", "", fmt.Errorf("namespace %q is not a namespace name", ns)
	}
	if msgs := validation.IsDNS1123Subdomain(wl); len(msgs) > 0 {
		return "", "", fmt.Errorf("workload %q is not a workload name", wl)
	}
	return ns, wl, nil
}

// key names the source for the action id: the principal, else the IP,
// else the workload.
func (s source) key() string {
	switch {
	case s.Principal != "":
		return s.Principal
	case s.IPBlock != "":
		return s.IPBlock
	case s.Workload != "":
		return s.Namespace + "/" + s.Workload
	}
	return ""
}

// short is the readable part of the action id.
func (s source) short() string {
	switch {
	case s.Workload != "":
		return s.Workload
	case s.SA != "":
		return s.SA
	}
	a, _, _ := strings.Cut(s.IPBlock, "/")
	return a
}

// String is the source as people read it.
func (s source) String() string {
	if k := s.key(); k != "" {
		return k
	}
	return "unknown source"
}

// ActionID returns the id of the action of kind against source src and
// destination dst (keys, as source.key renders them; dst is empty for a
// quarantine): deterministic, so a repeated detection finds its action,
// DNS-1123 safe and at most 50 characters, so "-out" and "-in" still fit
// in an object name.
func ActionID(kind models.ActionKind, src, dst, readable string) string {
	sum := sha256.Sum256([]byte(string(kind) + "\x00" + src + "\x00" + dst))
	abbr := map[models.ActionKind]string{models.ActionBlockEdge: "block", models.ActionQuarantine: "quar"}[kind]
	if abbr == "" {
		abbr = "alert"
	}
	slug := dnsSlug(readable, 29)
	id := "mg-" + abbr + "-"
	if slug != "" {
		id += slug + "-"
	}
	return id + hex.EncodeToString(sum[:])[:12]
}

// dnsSlug keeps [a-z0-9-] of s, lowercased, at most n characters, with
// no leading, trailing or doubled dashes.
func dnsSlug(s string, n int) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9'
		if !ok {
			if b.Len() > 0 && !dash {
				b.WriteByte('-')
				dash = true
			}
			continue
		}
		b.WriteRune(r)
		dash = false
		if b.Len() >= n {
			break
		}
	}
	return strings.Trim(b.String(), "-")
}

// labels and annotations of p.
func (p Policy) labels() map[string]string {
	return map[string]string{
		LabelManagedBy: ManagedBy,
		LabelInstance:  p.Meta.Instance,
		LabelActionID:  p.Meta.ActionID,
		LabelRole:      string(p.Role),
	}
}

func (p Policy) annotations() map[string]string {
	m := p.Meta
	a := map[string]string{
		AnnotationDetectionID:   m.DetectionID,
		AnnotationDetectionKind: string(m.DetectionKind),
		AnnotationAction:        string(m.Action),
		AnnotationReason:        m.Reason,
		AnnotationTarget:        m.Target,
		AnnotationCreatedAt:     m.CreatedAt.UTC().Format(time.RFC3339),
		AnnotationExpiresAt:     m.ExpiresAt.UTC().Format(time.RFC3339),
	}
	if m.SourceWorkload != "" {
		a[AnnotationSourceWL] = m.SourceWorkload
	}
	if m.Destination != "" {
		a[AnnotationDestination] = m.Destination
	}
	if !m.PromoteAt.IsZero() {
		a[AnnotationPromoteAt] = m.PromoteAt.UTC().Format(time.RFC3339)
	}
	if p.DryRun {
		a[AnnotationDryRun] = "true"
	}
	if m.Unverified {
		a[AnnotationBudget] = "none"
	}
	return a
}

// metaFrom reads what labels and annotations say back.
func metaFrom(labels, ann map[string]string) (Meta, bool, error) {
	m := Meta{
		ActionID:       labels[LabelActionID],
		Instance:       labels[LabelInstance],
		Action:         models.ActionKind(ann[AnnotationAction]),
		DetectionID:    ann[AnnotationDetectionID],
		DetectionKind:  models.DetectionKind(ann[AnnotationDetectionKind]),
		Reason:         ann[AnnotationReason],
		Target:         ann[AnnotationTarget],
		SourceWorkload: ann[AnnotationSourceWL],
		Destination:    ann[AnnotationDestination],
		Unverified:     ann[AnnotationBudget] == "none",
	}
	var errs []error
	for key, dst := range map[string]*time.Time{AnnotationCreatedAt: &m.CreatedAt, AnnotationExpiresAt: &m.ExpiresAt, AnnotationPromoteAt: &m.PromoteAt} {
		v, ok := ann[key]
		if !ok {
			continue
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			errs = append(errs, fmt.Errorf("annotation %s: %w", key, err))
		}
		*dst = t
	}
	if m.ActionID == "" {
		errs = append(errs, fmt.Errorf("no %s label", LabelActionID))
	}
	return m, ann[AnnotationDryRun] == "true", errors.Join(errs...)
}

// AuthorizationPolicy API.
const (
	istioGroup      = "security.istio.io"
	istioAPIVersion = "security.istio.io/v1"
	istioKind       = "AuthorizationPolicy"
)

// istioObject renders p as an AuthorizationPolicy, as a tree of maps (no
// text is ever assembled, so no name or value can inject structure).
func (p Policy) istioObject() (*unstructured.Unstructured, error) {
	spec := map[string]any{"action": "DENY"}
	if len(p.Selector) > 0 {
		sel := map[string]any{}
		for k, v := range p.Selector {
			sel[k] = v
		}
		spec["selector"] = map[string]any{"matchLabels": sel}
	}
	from := func() ([]any, error) {
		// Entries of "from" are alternatives: the principal's mTLS calls
		// and the addresses' plaintext ones are each denied.
		var froms []any
		if p.SourcePrincipal != "" {
			froms = append(froms, map[string]any{"source": map[string]any{"principals": []any{p.SourcePrincipal}}})
		}
		if len(p.SourceIPBlocks) > 0 {
			ips := make([]any, len(p.SourceIPBlocks))
			for i, b := range p.SourceIPBlocks {
				ips[i] = b
			}
			froms = append(froms, map[string]any{"source": map[string]any{"ipBlocks": ips}})
		}
		if len(froms) == 0 {
			return nil, fmt.Errorf("policy %s: %s needs a source principal or ip", p.Name, p.Role)
		}
		return []any{map[string]any{"from": froms}}, nil
	}
	switch p.Role {
	case RoleEdge, RoleOutbound:
		if p.Role == RoleEdge && len(p.Selector) == 0 {
			return nil, fmt.Errorf("policy %s: an edge needs a destination selector", p.Name)
		}
		rules, err := from()
		if err != nil {
			return nil, err
		}
		spec["rules"] = rules
	case RoleInbound:
		if len(p.Selector) == 0 {
			return nil, fmt.Errorf("policy %s: inbound quarantine needs a selector", p.Name)
		}
		spec["rules"] = []any{map[string]any{}} // matches everything
	default:
		return nil, fmt.Errorf("policy %s: role %q is not an AuthorizationPolicy", p.Name, p.Role)
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": istioAPIVersion,
		"kind":       istioKind,
		"metadata":   map[string]any{"name": p.Name, "namespace": p.Namespace},
		"spec":       spec,
	}}
	u.SetLabels(p.labels())
	u.SetAnnotations(p.annotations())
	return u, nil
}

// policyFromIstio reads back an AuthorizationPolicy meshguard wrote.
func policyFromIstio(u *unstructured.Unstructured) (Policy, error) {
	meta, dry, err := metaFrom(u.GetLabels(), u.GetAnnotations())
	p := Policy{
		Name:      u.GetName(),
		Namespace: u.GetNamespace(),
		Role:      Role(u.GetLabels()[LabelRole]),
		DryRun:    dry,
		Meta:      meta,
	}
	if err != nil {
		return p, fmt.Errorf("%s/%s: %w", p.Namespace, p.Name, err)
	}
	sel, _, _ := unstructured.NestedStringMap(u.Object, "spec", "selector", "matchLabels")
	if len(sel) > 0 {
		p.Selector = sel
	}
	rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
	if len(rules) == 1 {
		if rule, ok := rules[0].(map[string]any); ok {
			from, _ := rule["from"].([]any)
			for _, e := range from {
				f, ok := e.(map[string]any)
				if !ok {
					continue
				}
				if ps, _, _ := unstructured.NestedStringSlice(f, "source", "principals"); len(ps) == 1 {
					p.SourcePrincipal = ps[0]
				}
				ips, _, _ := unstructured.NestedStringSlice(f, "source", "ipBlocks")
				p.SourceIPBlocks = append(p.SourceIPBlocks, ips...)
			}
		}
	}
	return p, nil
}

func cloneMap(m map[string]string) map[string]string { return maps.Clone(m) }

// Slug is the DNS-1123 slug respond builds object names from (at most n
// characters of [a-z0-9-]), for other writers of meshguard's objects.
func Slug(s string, n int) string { return dnsSlug(s, n) }
