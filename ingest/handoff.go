package ingest

import (
	"context"
	"time"

	"github.com/meshguard/meshguard/consumer"
)

// Option changes how a Consumer is wired.
type Option func(*Consumer)

// AfterStore gives the consumer a stage that sees every batch once the
// next stage stored it (the detector), on a goroutine of its own: while
// it works on one batch, the next is stored and the one after that
// decoded, so adding it costs CPU rather than wall time.
//
// The hand-off between the store and this stage is bounded and never
// drops: when the stage is behind, the store waits for it (counted in
// Stats.AfterStoreWaits), then decoding waits for a free batch, then Kafka
// holds the backlog. A batch the store did not acknowledge never reaches
// the stage. Offsets are committed once the store acknowledged the batch
// and the stage returned, so a committed offset means stored and seen by
// this replica's detector; what was not committed comes again after a
// crash or rejoin, to both.
//
// The stage's errors are logged and counted (Stats.AfterStoreErrors), not
// retried: retrying would count a batch twice in a detector's windows. It
// must not keep the slice after it returns.
func AfterStore(stage consumer.Flows) Option {
	return func(c *Consumer) { c.after = stage }
}

// batchesInFlight is how many batches a consumer owns: one being decoded
// into, one being stored and, with an AfterStore stage, one being
// detected. Each is up to IngestConfig.BatchSize flows, so this and the
// batch size bound ingest's memory.
func (c *Consumer) batchesInFlight() int {
	if c.after != nil {
		return 3
	}
	return 2
}

// handOn gives b to the after-store stage over q, which is unbuffered:
// when the stage is still busy with the batch before, the store waits
// here, counted.
func (c *Consumer) handOn(q chan<- *batch, b *batch) {
	select {
	case q <- b:
		return
	default:
	}
	c.stats.afterWaits.Add(1)
	began := time.Now()
	q <- b
	c.stats.afterWaited.Add(int64(time.Since(began)))
}

// afterStore runs the stage on each batch put, commits it and returns it
// to free, until the queue is closed.
func (c *Consumer) afterStore(ctx context.Context, q <-chan *batch, free chan<- *batch) {
	for b := range q {
		if b.change != nil {
			tellOwner(ctx, c.owner, b.change)
		}
		// A batch of dead-lettered messages only has no flows, but it is
		// committed here all the same, in order with the ones before it.
		if len(b.flows) > 0 {
			if err := c.after.ConsumeFlows(ctx, b.flows); err != nil {
				c.stats.afterErrors.Add(1)
				c.log.Warn("the stage after the store failed a batch; it is not retried (that would count it twice)",
					"err", err, "flows", len(b.flows))
			}
		}
		c.commit(ctx, b)
		b.reset()
		free <- b
	}
}
