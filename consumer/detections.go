package consumer

import (
	"context"
	"errors"

	"github.com/meshguard/meshguard/models"
)

// Detections receives detections in-process: the responder, the alerter
// and the detections table. HandleDetection is called for a new detection
// and again for every window that updates it (same ID, higher Updates). It
// is called from the detector's goroutine: implementations queue slow work
// instead of blocking. An error is logged and counted; the detector goes
// on.
type Detections interface {
	HandleDetection(ctx context.Context, d models.Detection) error
}

// DetectionsFunc adapts a function to Detections.
type DetectionsFunc func(ctx context.Context, d models.Detection) error

// HandleDetection calls f.
func (f DetectionsFunc) HandleDetection(ctx context.Context, d models.Detection) error {
	return f(ctx, d)
}

// FanoutDetections hands each detection to every consumer, even when one
// fails, and joins the errors: one sink's outage must not keep a detection
// from the others. Nil consumers are skipped.
func FanoutDetections(consumers ...Detections) Detections {
	return DetectionsFunc(func(ctx context.Context, d models.Detection) error {
		var errs []error
		for _, c := range consumers {
			if c == nil {
				continue
			}
			if err := c.HandleDetection(ctx, d); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
}
