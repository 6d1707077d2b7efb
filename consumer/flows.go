package consumer

import (
	"context"

	"github.com/meshguard/meshguard/models"
)

// Flows is the seam between stages that pass flows on: ingest hands each
// decoded batch to one (the ClickHouse writer, or a fan-out of it and
// taps), and each stored batch to another (the detector, ingest's
// AfterStore stage).
//
// ConsumeFlows returns nil only when the callee is done with every flow in
// the batch: for a store, durably stored (ClickHouse acknowledged the
// insert), so the caller may commit the Kafka offsets behind it. The callee
// must not keep the slice, or point into it, after it returns: the caller
// reuses it. An error is retryable (the caller keeps the batch, backs off
// and calls again) unless IsPermanent says otherwise.
type Flows interface {
	ConsumeFlows(ctx context.Context, flows []models.Flow) error
}

// FlowsFunc adapts a function to Flows.
type FlowsFunc func(ctx context.Context, flows []models.Flow) error

// ConsumeFlows calls f.
func (f FlowsFunc) ConsumeFlows(ctx context.Context, flows []models.Flow) error {
	return f(ctx, flows)
}

// FanoutFlows hands each batch to every consumer in order and stops at the
// first error, which the caller retries: consumers before the failing one
// then see the batch again, so each must tolerate redelivery (flow ids
// make that cheap). Put a consumer that never fails last.
func FanoutFlows(consumers ...Flows) Flows {
	return FlowsFunc(func(ctx context.Context, flows []models.Flow) error {
		for _, c := range consumers {
			if err := c.ConsumeFlows(ctx, flows); err != nil {
				return err
			}
		}
		return nil
	})
}
