// Package report is meshguard's compliance report: one model (Report,
// which is also the JSON form) built from the stored flows, detections
// and audit log of a span and from the cluster's policies, with every
// finding mapped to the controls auditors use (NIST SP 800-207 and
// 800-204A/B, PCI DSS v4.0, SOC 2) and a pass or gap verdict on the
// evidence. Render writes it as JSON, Markdown, HTML or PDF.
//
// Telemetry is evidence: names, paths and ids in the report come from
// proxies and may be forged, so every renderer escapes them for its
// format.
package report

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/meshguard/meshguard/posture"
	"github.com/meshguard/meshguard/storage"
)

// Day is one UTC day's requests by TLS state.
type Day struct {
	Day string `json:"day"` // YYYY-MM-DD
	posture.Shares
}

// Identity is one workload's mesh identity.
type Identity struct {
	Namespace  string   `json:"namespace"`
	Workload   string   `json:"workload"`
	Identity   string   `json:"identity"`
	Principals []string `json:"principals,omitempty"`
}

// Policy is one PeerAuthentication or AuthorizationPolicy in force.
type Policy struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Setting is the mode (PeerAuthentication) or action
	// (AuthorizationPolicy), with " (dry-run)" when not enforced.
	Setting string `json:"setting"`
	// Scope is mesh, namespace, or the selector.
	Scope string `json:"scope"`
}

// Detection is one detection with its time to detect: from the start of
// the window its traffic was first seen in to when it was raised.
type Detection struct {
	ID                  string    `json:"detection_id"`
	IncidentID          string    `json:"incident_id"`
	Kind                string    `json:"kind"`
	Severity            string    `json:"severity"`
	Score               float64   `json:"score"`
	Source              string    `json:"source"`
	Destination         string    `json:"destination"`
	WindowStart         time.Time `json:"window_start"`
	DetectedAt          time.Time `json:"detected_at"`
	TimeToDetectSeconds float64   `json:"time_to_detect_seconds"`
}

// Incident is the detections of one attacker, with times to detect and
// to respond (the first action applied or alerted after detection).
type Incident struct {
	ID                   string     `json:"incident_id"`
	Kinds                []string   `json:"kinds"`
	Severity             string     `json:"severity"`
	Detections           int        `json:"detections"`
	Started              time.Time  `json:"started"`
	Detected             time.Time  `json:"detected"`
	Responded            *time.Time `json:"responded,omitempty"`
	TimeToDetectSeconds  float64    `json:"time_to_detect_seconds"`
	TimeToRespondSeconds *float64   `json:"time_to_respond_seconds,omitempty"`
}

// Action is one row of the audit log.
type Action struct {
	At          time.Time `json:"at"`
	ActionID    string    `json:"action_id"`
	DetectionID string    `json:"detection_id,omitempty"`
	Kind        string    `json:"kind"`
	Mode        string    `json:"mode"`
	State       string    `json:"state"`
	Actor       string    `json:"actor"`
	Target      string    `json:"target,omitempty"`
	Policy      string    `json:"policy,omitempty"`
	Reason      string    `json:"reason,omitempty"`
}

// Report is the compliance report of [From, To).
type Report struct {
	Title       string    `json:"title"`
	GeneratedAt time.Time `json:"generated_at"`
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	ClusterRead bool      `json:"cluster_read"`

	Coverage       posture.Shares  `json:"coverage"`
	Trend          []Day           `json:"trend"`
	PlaintextEdges []posture.Edge  `json:"plaintext_edges"`
	Identities     []Identity      `json:"identities"`
	NoIdentity     []posture.Party `json:"no_identity"`
	Policies       []Policy        `json:"policies"`
	Uncovered      []posture.Party `json:"uncovered"`
	// CoverageUnknown are workloads whose pod labels the cluster did not
	// show while selector policies could apply to them.
	CoverageUnknown []posture.Party `json:"coverage_unknown"`
	// NotStrict are workloads whose mTLS mode in force is not STRICT.
	NotStrict     []posture.Party `json:"not_strict"`
	Gaps          []posture.Gap   `json:"strict_gaps"`
	PolicyChanges []Action        `json:"policy_changes"`
	Detections    []Detection     `json:"detections"`
	Incidents     []Incident      `json:"incidents"`
	Actions       []Action        `json:"actions"`

	Controls []Control `json:"controls"`
	Passed   int       `json:"controls_passed"`
	Gapped   int       `json:"controls_gap"`
}

// Store is what the report reads; *storage.ClickHouse is one.
type Store interface {
	storage.PostureQuerier
	PostureTrend(ctx context.Context, from, to time.Time) ([]storage.PostureDay, error)
	DetectionsBetween(ctx context.Context, from, to time.Time) ([]storage.DetectionRow, error)
	ActionsBetween(ctx context.Context, from, to time.Time) ([]storage.ActionRow, error)
}

// Reader builds reports. Goroutine-safe.
type Reader struct {
	Store Store
	// Posture reads the posture (and the cluster, when it has a config).
	Posture *posture.Reader
	// Now is the clock for GeneratedAt; nil: time.Now.
	Now func() time.Time
}

// Report reads [from, to) and builds its report.
func (r *Reader) Report(ctx context.Context, from, to time.Time) (*Report, error) {
	p, cluster, err := r.Posture.PostureAndCluster(ctx, from, to)
	if err != nil {
		return nil, err
	}
	days, err := r.Store.PostureTrend(ctx, from, to)
	if err != nil {
		return nil, err
	}
	dets, err := r.Store.DetectionsBetween(ctx, from, to)
	if err != nil {
		return nil, err
	}
	acts, err := r.Store.ActionsBetween(ctx, from, to)
	if err != nil {
		return nil, err
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	return Build(p, cluster, days, dets, acts, now()), nil
}

// Build assembles the report from its parts and judges the controls.
func Build(p *posture.Posture, cluster *posture.Cluster, days []storage.PostureDay, dets []storage.DetectionRow,
	acts []storage.ActionRow, now time.Time) *Report {
	r := &Report{Title: "meshguard zero-trust compliance report", GeneratedAt: now.UTC(), From: p.From, To: p.To,
		ClusterRead: p.ClusterRead, Coverage: p.Total, PlaintextEdges: p.PlaintextEdges, NoIdentity: p.NoIdentity,
		Uncovered: p.Uncovered, Gaps: p.Gaps,
		Trend: []Day{}, Identities: []Identity{}, Policies: []Policy{}, NotStrict: []posture.Party{}, CoverageUnknown: []posture.Party{},
		PolicyChanges: []Action{}, Detections: []Detection{}, Incidents: []Incident{}, Actions: []Action{}}
	for _, d := range days {
		s := posture.Shares{MTLS: d.MTLS, Plaintext: d.Plaintext, Unknown: d.Unknown}
		s.Finish()
		r.Trend = append(r.Trend, Day{Day: d.Day.Format(time.DateOnly), Shares: s})
	}
	for _, w := range p.Workloads {
		r.Identities = append(r.Identities, Identity{Namespace: w.Namespace, Workload: w.Name, Identity: w.Identity, Principals: w.Principals})
		if w.Allow != nil && w.Allow.State == posture.Unknown {
			r.CoverageUnknown = append(r.CoverageUnknown, posture.Party{Namespace: w.Namespace, Workload: w.Name})
		}
		if w.Mode != nil && (w.Mode.Mode != posture.ModeStrict || w.Mode.Uncertain) {
			r.NotStrict = append(r.NotStrict, posture.Party{Namespace: w.Namespace, Workload: w.Name})
		}
	}
	if cluster != nil {
		r.Policies = policiesOf(cluster)
	}
	for _, a := range acts {
		ra := actionOf(a)
		r.Actions = append(r.Actions, ra)
		if a.PolicyName != "" {
			r.PolicyChanges = append(r.PolicyChanges, ra)
		}
	}
	r.Detections, r.Incidents = detectionsOf(dets, acts)
	r.Controls = judge(r)
	for _, c := range r.Controls {
		if c.Verdict == Pass {
			r.Passed++
		} else {
			r.Gapped++
		}
	}
	return r
}

func actionOf(a storage.ActionRow) Action {
	ra := Action{At: a.At, ActionID: a.ActionID, DetectionID: a.DetectionID, Kind: a.Kind, Mode: a.Mode, State: a.State,
		Actor: a.Actor, Target: a.Target, Reason: a.Reason}
	if a.PolicyName != "" {
		ra.Policy = a.PolicyNamespace + "/" + a.PolicyName
	}
	return ra
}

func scopeOf(root, ns string, sel map[string]string) string {
	if sel == nil {
		if ns == root {
			return "mesh"
		}
		return "namespace"
	}
	keys := make([]string, 0, len(sel))
	for k := range sel {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	s := ""
	for i, k := range keys {
		if i > 0 {
			s += ","
		}
		s += k + "=" + sel[k]
	}
	return s
}

func policiesOf(c *posture.Cluster) []Policy {
	var out []Policy
	for _, p := range c.PeerAuthentications {
		out = append(out, Policy{Kind: "PeerAuthentication", Namespace: p.Namespace, Name: p.Name,
			Setting: string(p.Mode), Scope: scopeOf(c.RootNamespace, p.Namespace, p.Selector)})
	}
	for _, p := range c.AuthorizationPolicies {
		set := p.Action
		if p.DryRun {
			set += " (dry-run)"
		}
		scope := scopeOf(c.RootNamespace, p.Namespace, p.Selector)
		if p.TargetRefs {
			scope = "targetRef"
		}
		out = append(out, Policy{Kind: "AuthorizationPolicy", Namespace: p.Namespace, Name: p.Name, Setting: set, Scope: scope})
	}
	slices.SortFunc(out, func(a, b Policy) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out
}

func party(principal, workload, namespace string) string {
	return posture.Party{Principal: principal, Workload: workload, Namespace: namespace}.Name()
}

// responded says whether an audit state is a response to a detection.
func responded(state string) bool {
	return state == "applied" || state == "alerted" || state == "promoted"
}

var severityRank = map[string]int{"low": 1, "medium": 2, "high": 3, "critical": 4}

// detectionsOf lists the detections and groups them into incidents with
// their first response.
func detectionsOf(dets []storage.DetectionRow, acts []storage.ActionRow) ([]Detection, []Incident) {
	firstResponse := map[string]time.Time{}
	for _, a := range acts {
		if t, ok := firstResponse[a.DetectionID]; responded(a.State) && (!ok || a.At.Before(t)) {
			firstResponse[a.DetectionID] = a.At
		}
	}
	out := []Detection{}
	at := map[string]int{}
	incidents := []Incident{}
	for _, d := range dets {
		inc := cmp.Or(d.IncidentID, d.DetectionID)
		det := Detection{ID: d.DetectionID, IncidentID: inc, Kind: d.Kind, Severity: d.Severity, Score: d.Score,
			Source:      party(d.SourcePrincipal, d.SourceWorkload, d.SourceNamespace),
			Destination: party("", d.DestinationWorkload, d.DestinationNamespace),
			WindowStart: d.WindowStart, DetectedAt: d.DetectedAt,
			TimeToDetectSeconds: max(0, d.DetectedAt.Sub(d.WindowStart).Seconds())}
		out = append(out, det)
		i, ok := at[inc]
		if !ok {
			i = len(incidents)
			at[inc] = i
			incidents = append(incidents, Incident{ID: inc, Started: d.WindowStart, Detected: d.DetectedAt, Severity: d.Severity})
		}
		x := &incidents[i]
		x.Detections++
		if !slices.Contains(x.Kinds, d.Kind) {
			x.Kinds = append(x.Kinds, d.Kind)
		}
		if severityRank[d.Severity] > severityRank[x.Severity] {
			x.Severity = d.Severity
		}
		if d.WindowStart.Before(x.Started) {
			x.Started = d.WindowStart
		}
		if d.DetectedAt.Before(x.Detected) {
			x.Detected = d.DetectedAt
		}
		if t, ok := firstResponse[d.DetectionID]; ok && (x.Responded == nil || t.Before(*x.Responded)) {
			x.Responded = &t
		}
	}
	for i := range incidents {
		x := &incidents[i]
		x.TimeToDetectSeconds = max(0, x.Detected.Sub(x.Started).Seconds())
		if x.Responded != nil {
			s := max(0, x.Responded.Sub(x.Detected).Seconds())
			x.TimeToRespondSeconds = &s
		}
	}
	return out, incidents
}
