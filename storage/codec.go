package storage

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/meshguard/meshguard/models"
)

// The row codec: the one place that turns models' detections and actions
// into the rows of the detections and actions tables and back. Every
// writer goes through it, so a column added here reaches every table
// writer at once.

// rowEvidence is the evidence column: the evidence itself, plus what the
// table's columns lack for a reader to rebuild the detection (the parties'
// services and IPs, the update count, the partition).
type rowEvidence struct {
	models.Evidence
	Source      models.Party `json:"source"`
	Destination models.Party `json:"destination"`
	Updates     uint32       `json:"updates"`
	Partition   int32        `json:"partition"`
	UpdatedAt   time.Time    `json:"updated_at"`
}

// DetectionToRow converts a detection to its row in the detections table.
func DetectionToRow(d models.Detection) (DetectionRow, error) {
	ev, err := json.Marshal(rowEvidence{d.Evidence, d.Source, d.Destination, d.Updates, d.Partition, d.UpdatedAt})
	if err != nil {
		return DetectionRow{}, fmt.Errorf("detection %s evidence: %w", d.ID, err)
	}
	return DetectionRow{
		DetectionID:          d.ID,
		DetectedAt:           d.DetectedAt,
		WindowStart:          d.WindowStart,
		WindowEnd:            d.WindowEnd,
		Kind:                 string(d.Kind),
		Severity:             d.Severity.String(),
		Score:                d.Score,
		SourcePrincipal:      d.Source.Principal,
		SourceWorkload:       d.Source.Workload,
		SourceNamespace:      d.Source.Namespace,
		DestinationWorkload:  d.Destination.Workload,
		DestinationNamespace: d.Destination.Namespace,
		Evidence:             string(ev),
		IncidentID:           d.IncidentID,
	}, nil
}

// DetectionFromRow rebuilds a detection from its row (the inverse of
// DetectionToRow).
func DetectionFromRow(r DetectionRow) (models.Detection, error) {
	kind, err := models.ParseDetectionKind(r.Kind)
	if err != nil {
		return models.Detection{}, fmt.Errorf("detection %s: %w", r.DetectionID, err)
	}
	sev, err := models.ParseSeverity(r.Severity)
	if err != nil {
		return models.Detection{}, fmt.Errorf("detection %s: %w", r.DetectionID, err)
	}
	var ev rowEvidence
	if err := json.Unmarshal([]byte(r.Evidence), &ev); err != nil {
		return models.Detection{}, fmt.Errorf("detection %s evidence: %w", r.DetectionID, err)
	}
	d := models.Detection{
		ID: r.DetectionID, DetectedAt: r.DetectedAt, UpdatedAt: ev.UpdatedAt, WindowStart: r.WindowStart, WindowEnd: r.WindowEnd,
		Kind: kind, Severity: sev, Score: r.Score, Source: ev.Source, Destination: ev.Destination,
		Evidence: ev.Evidence, Updates: ev.Updates, Partition: ev.Partition, IncidentID: r.IncidentID,
	}
	// The columns are authoritative where both exist.
	d.Source.Principal, d.Source.Workload, d.Source.Namespace = r.SourcePrincipal, r.SourceWorkload, r.SourceNamespace
	d.Destination.Workload, d.Destination.Namespace = r.DestinationWorkload, r.DestinationNamespace
	return d, nil
}

// ActionToRow converts an action to its row in the actions audit log.
func ActionToRow(a models.Action) ActionRow {
	return ActionRow{
		ActionID: a.ID, At: a.At, DetectionID: a.DetectionID, Kind: string(a.Kind), Mode: string(a.Mode),
		State: string(a.State), Actor: a.Actor, Reason: a.Reason, Target: a.Target,
		PolicyName: a.PolicyName, PolicyNamespace: a.PolicyNamespace, ExpiresAt: a.ExpiresAt,
	}
}
