package policy

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/respond"
)

// Labels and annotations of ALLOW policies, beside respond's.
const (
	// LabelAllowInstance is respond.instance for ALLOW policies: not
	// respond's meshguard.io/instance, so the responder's reconcile loop
	// (which expires what it lists) never lists them.
	LabelAllowInstance = "meshguard.io/allow-instance"
	RoleAllow          = "allow"

	AnnotationLearnedFrom   = "meshguard.io/learned-from"
	AnnotationLearnedTo     = "meshguard.io/learned-to"
	AnnotationRequests      = "meshguard.io/requests"
	AnnotationBlastRequests = "meshguard.io/blast-radius-requests"
	AnnotationBlastCallers  = "meshguard.io/blast-radius-callers"
	AnnotationNotAdmitted   = "meshguard.io/not-admitted"
	// AnnotationAppliedAt is when the policy was last applied in dry-run:
	// the soak that promotion checks starts there.
	AnnotationAppliedAt = "meshguard.io/dry-run-since"
)

// ruleAnnotation is rule i's evidence or confidence annotation.
func ruleAnnotation(i int, what string) string {
	return "meshguard.io/rule-" + strconv.Itoa(i) + "-" + what
}

// maxNotAdmittedListed bounds the callers listed in the not-admitted
// annotation (the JSON report lists them all).
const maxNotAdmittedListed = 20

// AuthorizationPolicy is security.istio.io/v1 AuthorizationPolicy, the
// part meshguard writes, as typed structs a YAML library renders.
type AuthorizationPolicy struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   ObjectMeta `json:"metadata"`
	Spec       APSpec     `json:"spec"`
}

// ObjectMeta is the metadata meshguard sets.
type ObjectMeta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// APSpec is AuthorizationPolicy.spec.
type APSpec struct {
	Selector *WorkloadSelector `json:"selector,omitempty"`
	Action   string            `json:"action"`
	Rules    []APRule          `json:"rules"`
}

// WorkloadSelector is spec.selector.
type WorkloadSelector struct {
	MatchLabels map[string]string `json:"matchLabels"`
}

// APRule is one spec.rules entry.
type APRule struct {
	From []APFrom `json:"from"`
	To   []APTo   `json:"to,omitempty"`
}

// APFrom is rule.from.
type APFrom struct {
	Source APSource `json:"source"`
}

// APSource is rule.from.source.
type APSource struct {
	Principals []string `json:"principals"`
}

// APTo is rule.to.
type APTo struct {
	Operation Operation `json:"operation"`
}

// ruleEvidence is what a rule's evidence annotation holds.
type ruleEvidence struct {
	Principal string    `json:"principal"`
	Requests  uint64    `json:"requests"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Open      []string  `json:"open,omitempty"`
}

// Object renders s as an AuthorizationPolicy of instance, in dry-run
// when dryRun. It refuses a suggestion without a selector (an ALLOW
// policy without one would apply to the whole namespace) or without
// rules (it would deny everything).
func (s Suggestion) Object(instance string, dryRun bool, now time.Time) (AuthorizationPolicy, error) {
	switch {
	case s.Skipped != "":
		return AuthorizationPolicy{}, fmt.Errorf("%s/%s: %s", s.Namespace, s.Workload, s.Skipped)
	case len(s.Selector) == 0:
		return AuthorizationPolicy{}, fmt.Errorf("%s/%s: no selector; an ALLOW policy without one applies to the whole namespace", s.Namespace, s.Workload)
	case len(validation.IsDNS1123Label(s.Namespace)) > 0 || len(validation.IsDNS1123Subdomain(s.Name)) > 0:
		return AuthorizationPolicy{}, fmt.Errorf("%q/%q is not a namespace and name", s.Namespace, s.Name)
	}
	ann := map[string]string{
		respond.AnnotationAction:      RoleAllow,
		respond.AnnotationTarget:      s.Namespace + "/" + s.Workload,
		respond.AnnotationDestination: s.Namespace + "/" + s.Workload,
		respond.AnnotationCreatedAt:   now.UTC().Format(time.RFC3339),
		respond.AnnotationReason: fmt.Sprintf("least privilege learned from %d requests between %s and %s",
			s.Requests, s.From.UTC().Format(time.RFC3339), s.To.UTC().Format(time.RFC3339)),
		AnnotationLearnedFrom:   s.From.UTC().Format(time.RFC3339),
		AnnotationLearnedTo:     s.To.UTC().Format(time.RFC3339),
		AnnotationRequests:      strconv.FormatUint(s.Requests, 10),
		AnnotationBlastRequests: strconv.FormatUint(s.BlastRequests, 10),
		AnnotationBlastCallers:  strconv.Itoa(s.BlastCallers),
	}
	if dryRun {
		ann[respond.AnnotationDryRun] = "true"
		ann[AnnotationAppliedAt] = now.UTC().Format(time.RFC3339)
	}
	if len(s.NotAdmitted) > 0 {
		listed := s.NotAdmitted[:min(len(s.NotAdmitted), maxNotAdmittedListed)]
		b, err := json.Marshal(listed)
		if err != nil {
			return AuthorizationPolicy{}, err
		}
		ann[AnnotationNotAdmitted] = string(b)
	}
	rules := make([]APRule, 0, len(s.Rules))
	for i, r := range s.Rules {
		b, err := json.Marshal(ruleEvidence{Principal: r.Principal, Requests: r.Requests,
			FirstSeen: r.FirstSeen.UTC(), LastSeen: r.LastSeen.UTC(), Open: r.Open})
		if err != nil {
			return AuthorizationPolicy{}, err
		}
		ann[ruleAnnotation(i, "evidence")] = string(b)
		ann[ruleAnnotation(i, "confidence")] = strconv.FormatFloat(r.Confidence, 'f', 2, 64)
		rule := APRule{From: []APFrom{{Source: APSource{Principals: []string{r.Principal}}}}}
		for _, op := range r.Operations {
			rule.To = append(rule.To, APTo{Operation: op})
		}
		rules = append(rules, rule)
	}
	return AuthorizationPolicy{
		APIVersion: "security.istio.io/v1",
		Kind:       "AuthorizationPolicy",
		Metadata: ObjectMeta{Name: s.Name, Namespace: s.Namespace, Annotations: ann, Labels: map[string]string{
			respond.LabelManagedBy: respond.ManagedBy,
			LabelAllowInstance:     instance,
			respond.LabelActionID:  s.Name,
			respond.LabelRole:      RoleAllow,
		}},
		Spec: APSpec{Selector: &WorkloadSelector{MatchLabels: s.Selector}, Action: "ALLOW", Rules: rules},
	}, nil
}

// YAML renders p.
func (p AuthorizationPolicy) YAML() ([]byte, error) { return yaml.Marshal(p) }

// Unstructured is p for the dynamic client.
func (p AuthorizationPolicy) Unstructured() (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&p)
	if err != nil {
		return nil, err
	}
	return &unstructured.Unstructured{Object: m}, nil
}

// validPrincipal: telemetry's principal is admitted only in the form
// Istio matches, with DNS names for its parts.
func validPrincipal(s string) bool {
	p, ok := models.ParsePrincipal(s)
	return ok && p.String() == s &&
		len(validation.IsDNS1123Subdomain(p.TrustDomain)) == 0 &&
		len(validation.IsDNS1123Label(p.Namespace)) == 0 &&
		len(validation.IsDNS1123Subdomain(p.ServiceAccount)) == 0
}

// validMethod: an HTTP token of upper-case letters, as methods are.
func validMethod(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for _, r := range s {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

// validPath: an absolute path of printable ASCII without spaces, quotes
// or wildcards of its own (a template's braces are cut before this).
func validPath(s string) bool {
	if !strings.HasPrefix(s, "/") || len(s) > 512 {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`"'\*{}`, r) {
			return false
		}
	}
	return true
}
