package storage

import (
	"context"
	"errors"

	"github.com/meshguard/meshguard/models"
)

// FlowConsumer is the seam between stages that pass flows on: ingest hands
// each decoded batch to one (the ClickHouse writer, the detector, or a
// fan-out of both).
//
// ConsumeFlows returns nil only when the callee is done with every flow in
// the batch: for a store, durably stored (ClickHouse acknowledged the
// insert), so the caller may commit the Kafka offsets behind it. The callee
// must not keep the slice, or point into it, after it returns: the caller
// reuses it. An error is retryable (the caller keeps the batch, backs off
// and calls again) unless IsPermanent says otherwise.
type FlowConsumer interface {
	ConsumeFlows(ctx context.Context, flows []models.Flow) error
}

// ConsumeFlowsFunc adapts a function to FlowConsumer.
type ConsumeFlowsFunc func(ctx context.Context, flows []models.Flow) error

// ConsumeFlows calls f.
func (f ConsumeFlowsFunc) ConsumeFlows(ctx context.Context, flows []models.Flow) error {
	return f(ctx, flows)
}

// permanentError marks an error retrying cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent wraps err to say that retrying the same call cannot succeed
// (a batch the server rejects as malformed, a schema that does not match).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err, or any error it wraps, was marked
// Permanent. Everything else (timeouts, refused connections, a server
// restarting) is worth retrying.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// Fanout hands each batch to every consumer in order and stops at the
// first error, which the caller retries: consumers before the failing one
// then see the batch again, so each must tolerate redelivery (flow ids
// make that cheap).
func Fanout(consumers ...FlowConsumer) FlowConsumer {
	return ConsumeFlowsFunc(func(ctx context.Context, flows []models.Flow) error {
		for _, c := range consumers {
			if err := c.ConsumeFlows(ctx, flows); err != nil {
				return err
			}
		}
		return nil
	})
}
