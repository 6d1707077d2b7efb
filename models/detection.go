package models

import (
	"fmt"
	"time"
)

// DetectionKind names what a detector saw. The names are a contract: they
// appear in the detections table, the API, Slack and the respond config.
type DetectionKind string

const (
	LateralMovement    DetectionKind = "lateral_movement"
	Scan               DetectionKind = "scan"
	RequestFlood       DetectionKind = "request_flood"
	CredentialStuffing DetectionKind = "credential_stuffing"
	ErrorSurge         DetectionKind = "error_surge"
	Exfiltration       DetectionKind = "exfiltration"
	MTLSDowngrade      DetectionKind = "mtls_downgrade"
	UnusualPath        DetectionKind = "unusual_path"

	// DestinationOutage is not an attack: a destination failing for many
	// of its callers at once (its own outage, retried by their proxies).
	// It is raised at low severity so that a reliability event reaches
	// the alert channel without any default action.
	DestinationOutage DetectionKind = "destination_outage"
)

// ReliabilityKinds are the kinds that report no attacker; they are not
// attack classes (scenario has no attack of these kinds).
var ReliabilityKinds = []DetectionKind{DestinationOutage}

// DetectionKinds lists every attack kind, in a stable order.
var DetectionKinds = []DetectionKind{
	LateralMovement, Scan, RequestFlood, CredentialStuffing,
	ErrorSurge, Exfiltration, MTLSDowngrade, UnusualPath,
}

// ParseDetectionKind accepts exactly the names above, attack and
// reliability kinds.
func ParseDetectionKind(s string) (DetectionKind, error) {
	for _, k := range DetectionKinds {
		if string(k) == s {
			return k, nil
		}
	}
	for _, k := range ReliabilityKinds {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown detection kind %q (one of %v or %v)", s, DetectionKinds, ReliabilityKinds)
}

// Severity orders detections; higher is worse. The zero value is invalid so
// that a forgotten severity is caught.
type Severity uint8

const (
	SeverityLow Severity = iota + 1
	SeverityMedium
	SeverityHigh
	SeverityCritical
)

var severityNames = [...]string{"", "low", "medium", "high", "critical"}

func (s Severity) String() string {
	if int(s) < len(severityNames) && s > 0 {
		return severityNames[s]
	}
	return "unknown"
}

// ParseSeverity accepts "low", "medium", "high" and "critical".
func ParseSeverity(s string) (Severity, error) {
	for i := 1; i < len(severityNames); i++ {
		if severityNames[i] == s {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("unknown severity %q (low, medium, high or critical)", s)
}

// MarshalText makes severities read as words in JSON and YAML.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText is the inverse of MarshalText.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Party is one side of a detection: who attacked, or what was attacked.
// Fields are empty when unknown (a plaintext caller has no principal).
type Party struct {
	Principal string `json:"principal,omitempty"`
	Workload  string `json:"workload,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	// Service is the destination's service FQDN, when known.
	Service string `json:"service,omitempty"`
	// IP is set for callers known only by address.
	IP string `json:"ip,omitempty"`
}

// String names the party as people read it: namespace/workload, else the
// IP, else namespace/* for a namespace-wide party, else *.
func (p Party) String() string {
	switch {
	case p.Workload != "":
		return p.Namespace + "/" + p.Workload
	case p.IP != "":
		return p.IP
	case p.Namespace != "":
		return p.Namespace + "/*"
	}
	return "*"
}

// FeatureEvidence explains one feature's part in a score: what the baseline
// expected for the window and what was observed.
type FeatureEvidence struct {
	Feature  string  `json:"feature"`
	Expected float64 `json:"expected"`
	Observed float64 `json:"observed"`
	// Score is the feature's surprise: -log10 of the tail probability of
	// the observation under the baseline (6 means one in a million).
	Score float64 `json:"score"`
	// Model names how Expected was obtained ("poisson", "negbin",
	// "robust_normal", "rule", "new").
	Model string `json:"model,omitempty"`
}

// Count is a value seen in a window and how often.
type Count struct {
	Value string `json:"value"`
	Count uint64 `json:"count"`
}

// Evidence is what a security engineer needs to trust a detection.
// All strings come from telemetry: they are attacker-controlled and must be
// escaped by whatever renders them (SQL, YAML, Slack, HTML).
type Evidence struct {
	Features         []FeatureEvidence `json:"features"`
	TopPaths         []Count           `json:"top_paths,omitempty"`
	TopCodes         []Count           `json:"top_codes,omitempty"`
	Destinations     []string          `json:"destinations,omitempty"`
	SampleRequestIDs []string          `json:"sample_request_ids,omitempty"`
	SampleTraceIDs   []string          `json:"sample_trace_ids,omitempty"`
	// Summary is one human sentence ("orders/checkout called
	// payments/ledger for the first time").
	Summary string `json:"summary"`
	// Parts, on an incident's head, lists the detections of its incident
	// as the head's shard last saw them (the detections table, grouped by
	// incident_id, is the whole record).
	Parts []IncidentPart `json:"parts,omitempty"`
	// Absorbed counts the first-seen edges a scan probed after its first
	// window, folded into it instead of raised one by one as
	// lateral_movement.
	Absorbed int `json:"absorbed,omitempty"`
}

// IncidentPart is one detection of an incident, as its head lists it.
type IncidentPart struct {
	DetectionID string        `json:"detection_id"`
	Kind        DetectionKind `json:"kind"`
	Destination string        `json:"destination"`
	FirstWindow time.Time     `json:"first_window"`
	Updates     uint32        `json:"updates"`
}

// Detection is an anomaly raised by a detector. An ongoing attack updates
// one detection (same ID, later WindowEnd, higher Updates) instead of
// raising one per window.
type Detection struct {
	ID string `json:"detection_id"`
	// IncidentID groups the detections of one attacker within
	// detect.hold: it is the ID of the incident's first detection (its
	// head), so a detection that heads its incident carries its own ID.
	// Respond acts once per incident and Slack posts once per incident.
	IncidentID string `json:"incident_id"`
	// DetectedAt is the wall-clock time of the first raise.
	DetectedAt time.Time `json:"detected_at"`
	// UpdatedAt is the wall-clock time of the latest update.
	UpdatedAt   time.Time     `json:"updated_at"`
	WindowStart time.Time     `json:"window_start"`
	WindowEnd   time.Time     `json:"window_end"`
	Kind        DetectionKind `json:"kind"`
	Severity    Severity      `json:"severity"`
	Score       float64       `json:"score"`
	Source      Party         `json:"source"`
	Destination Party         `json:"destination"`
	Evidence    Evidence      `json:"evidence"`
	// Updates counts the windows folded into this detection (1 when new).
	Updates uint32 `json:"updates"`
	// Partition is the Kafka partition whose flows raised it, -1 if none.
	Partition int32 `json:"partition"`
}
