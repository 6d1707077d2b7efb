package detect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

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

// Row converts a detection to its row in the detections table.
func Row(d models.Detection) (storage.DetectionRow, error) {
	ev, err := json.Marshal(d.Evidence)
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
