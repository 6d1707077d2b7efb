package detect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/storage"
)

// Sink receives detections in-process: the responder, the alerter and the
// detections table. HandleDetection is called for a new detection and again
// for every window that updates it (same ID, higher Updates). It is called
// from the detector's goroutine: implementations queue slow work instead of
// blocking. An error is logged and counted; the detector goes on.
type Sink interface {
	HandleDetection(ctx context.Context, d models.Detection) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, d models.Detection) error

// HandleDetection calls f.
func (f SinkFunc) HandleDetection(ctx context.Context, d models.Detection) error { return f(ctx, d) }

// Sinks hands each detection to every sink, even when one fails, and joins
// the errors.
func Sinks(sinks ...Sink) Sink {
	return SinkFunc(func(ctx context.Context, d models.Detection) error {
		var errs []error
		for _, s := range sinks {
			if s == nil {
				continue
			}
			if err := s.HandleDetection(ctx, d); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
}

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

// Row converts a detection to its row in the detections table.
func Row(d models.Detection) (storage.DetectionRow, error) {
	ev, err := json.Marshal(rowEvidence{d.Evidence, d.Source, d.Destination, d.Updates, d.Partition, d.UpdatedAt})
	if err != nil {
		return storage.DetectionRow{}, fmt.Errorf("detection %s evidence: %w", d.ID, err)
	}
	return storage.DetectionRow{
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
	}, nil
}

// FromRow rebuilds a detection from its row (the inverse of Row).
func FromRow(r storage.DetectionRow) (models.Detection, error) {
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
		Evidence: ev.Evidence, Updates: ev.Updates, Partition: ev.Partition,
	}
	// The columns are authoritative where both exist.
	d.Source.Principal, d.Source.Workload, d.Source.Namespace = r.SourcePrincipal, r.SourceWorkload, r.SourceNamespace
	d.Destination.Workload, d.Destination.Namespace = r.DestinationWorkload, r.DestinationNamespace
	return d, nil
}

// Feed hands detections written to the store, by any replica, to a sink:
// respond and alert replicas act on every partition's detections while
// detect replicas each see only theirs. Detections are delivered at least
// once, in write order; sinks are idempotent per detection id.
type Feed struct {
	Store storage.DetectionFeed
	Sink  Sink
	// Active, when set, gates delivery: a follower replica keeps its
	// place in the feed but hands nothing on.
	Active func() bool
	Every  time.Duration
	Log    *slog.Logger
}

// Run polls until ctx ends, starting with detections written in the
// lookback before now, so that a restart does not miss what was raised
// while it was down.
func (f *Feed) Run(ctx context.Context, lookback time.Duration) error {
	after := uint64(time.Now().Add(-lookback).UnixNano())
	every := f.Every
	if every <= 0 {
		every = 2 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		rows, err := f.Store.DetectionsSince(ctx, after, 1000)
		if err != nil && ctx.Err() == nil {
			f.Log.Warn("reading new detections failed; retrying", "err", err)
		}
		for _, r := range rows {
			after = max(after, r.Version)
			if f.Active != nil && !f.Active() {
				continue
			}
			d, err := FromRow(r)
			if err != nil {
				f.Log.Warn("unreadable detection skipped", "detection_id", r.DetectionID, "err", err)
				continue
			}
			if err := f.Sink.HandleDetection(ctx, d); err != nil {
				f.Log.Warn("detection not handled", "detection_id", d.ID, "err", err)
			}
		}
		if len(rows) == 1000 {
			continue // more waiting
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// StorageSink writes each detection (and each update, which replaces the
// row of the same id) to the detections table.
func StorageSink(w storage.DetectionWriter) Sink {
	return SinkFunc(func(ctx context.Context, d models.Detection) error {
		row, err := Row(d)
		if err != nil {
			return err
		}
		return w.WriteDetection(ctx, row)
	})
}
