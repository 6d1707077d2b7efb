package detect

import (
	"context"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/storage"
)

// A partition that changes hands in a rebalance carries its detector
// state with it: the replica giving it up saves the shard as released
// (storage.BaselineStore.ReleaseBaseline) once it has seen the last flows
// of it that it fetched, and drops it; the replica given it waits for that
// release, restores it, then detects. The consumer calls
// PartitionsRevoked and PartitionsAssigned in order with the flows
// (consumer.Partitions), so a release holds everything its owner
// counted.
//
// What is handed over is what a restart keeps (snapshot.go): baselines,
// watermark and measured lateness; and the open windows, which the new
// owner takes only when it starts reading where the old one stopped (a
// clean leave or shutdown committed everything; window_snapshot.go).
// Otherwise it reads again from the group's committed offset and
// recounts the open windows from there: whole when that offset is at or
// before their first record, as when catching up a backlog; without
// their first records when the old owner had committed past them, as
// with live traffic. Ongoing detections, early raises and open incidents
// go with the partition, so an attack under way updates the detection it
// raised.
type handoff struct {
	store storage.BaselineStore
	wait  time.Duration // how long an assigned partition waits for its release
	poll  time.Duration
	// released holds a hash of the state this replica last released per
	// partition: the partition coming back finds that row newest until
	// its owner in between releases, and must not take it for theirs.
	released map[int32]uint64
}

// WithHandoff makes the detector hand partitions over through store on
// rebalances, waiting up to wait (kafka.session_timeout: by then a
// silent previous owner is out of the group) for a release. Without it
// PartitionsRevoked and PartitionsAssigned do nothing.
func WithHandoff(store storage.BaselineStore, wait time.Duration) Option {
	return func(d *Detector) {
		d.handoff = &handoff{store: store, wait: wait, poll: 100 * time.Millisecond, released: map[int32]uint64{}}
	}
}

// PartitionsRevoked releases the state of partitions and drops it. The
// consumer calls it after the last flow of those partitions it fetched.
func (d *Detector) PartitionsRevoked(ctx context.Context, partitions []consumer.Partition) {
	h := d.handoff
	if h == nil {
		return
	}
	d.saveMu.Lock()
	defer d.saveMu.Unlock()
	for _, part := range partitions {
		p := part.ID
		d.mu.Lock()
		sh := d.shards[p]
		delete(d.shards, p)
		var state []byte
		var err error
		if sh != nil {
			state, err = encodeRelease(sh, part.Position)
		}
		d.mu.Unlock()
		if sh == nil {
			continue // never assigned here through the consumer: nothing learned
		}
		if err == nil {
			err = h.store.ReleaseBaseline(ctx, p, state)
		}
		if err != nil {
			d.stats.handoffErrors.Add(1)
			d.log.Warn("partition released without its state; its next owner waits detect's hand-off wait, then resumes from the last periodic save",
				"partition", p, "err", err)
			continue
		}
		h.released[p] = xxhash.Sum64(state)
		d.log.Info("partition released to its next owner", "partition", p, "edges", len(sh.edges), "open_windows", len(sh.windows),
			"event_time", time.UnixMilli(sh.maxTs).UTC(), "position", part.Position)
	}
}

// PartitionsAssigned restores partitions before their first flow. A
// partition handed over (another consumer read it since this one did)
// waits for its previous owner's release, up to the hand-off wait; any
// other resumes at once from its newest snapshot, or starts empty.
func (d *Detector) PartitionsAssigned(ctx context.Context, partitions []consumer.Partition) {
	h := d.handoff
	if h == nil {
		return
	}
	began := time.Now()
	latest, waited := h.awaitReleases(ctx, partitions)
	d.stats.handoffWaited.Add(int64(waited))
	d.mu.Lock()
	defer d.mu.Unlock()
	ids := make([]int32, len(partitions))
	for i, part := range partitions {
		b, found := latest[part.ID]
		d.shards[part.ID] = d.assignedShard(part, b, found, waited)
		delete(h.released, part.ID)
		ids[i] = part.ID
	}
	d.log.Info("partitions assigned", "partitions", ids, "took", time.Since(began))
}

// assignedShard is partition p's shard restored from b, its newest
// snapshot (found: there is one), counting the hand-off.
func (d *Detector) assignedShard(part consumer.Partition, b storage.Baseline, found bool, waited time.Duration) *shard {
	p, resumed := part.ID, part.HandedOver
	sh := d.newShard(p)
	if !found {
		if resumed {
			d.stats.handoffTimeouts.Add(1)
			d.log.Warn("partition assigned without saved state; its detector relearns", "partition", p, "waited", waited)
		}
		return sh
	}
	fresh := d.handoff.fresh(p, b)
	if resumed && !fresh {
		d.stats.handoffTimeouts.Add(1)
		d.log.Warn("previous owner released no state within detect's hand-off wait; resuming from its newest save",
			"partition", p, "saved_at", b.SavedAt, "waited", waited)
	}
	in, ok, err := decodeShard(p, b.State)
	switch {
	case err != nil:
		d.stats.handoffErrors.Add(1)
		d.log.Warn("saved state of an assigned partition is unreadable; its detector relearns", "partition", p, "err", err)
	case ok:
		sh.restore(in)
		sh.restoreOngoing(in)
		if in.Position != "" && in.Position == part.Position {
			sh.restoreWindows(in.Windows)
		}
		if fresh {
			d.stats.handedOver.Add(1)
		}
	}
	return sh
}

// fresh: b was released by another owner than this replica's last
// release of p.
func (h *handoff) fresh(p int32, b storage.Baseline) bool {
	if !b.Released {
		return false
	}
	own, ok := h.released[p]
	return !ok || own != xxhash.Sum64(b.State)
}

// awaitReleases reads the stored snapshots until every resumed partition
// has a fresh release, the wait is over or ctx ends, and returns the last
// read with how long it waited.
func (h *handoff) awaitReleases(ctx context.Context, partitions []consumer.Partition) (map[int32]storage.Baseline, time.Duration) {
	began := time.Now()
	deadline := began.Add(h.wait)
	var latest map[int32]storage.Baseline
	for {
		got, err := h.store.LatestBaselines(ctx)
		if err == nil {
			latest = got
		}
		if err == nil && h.allReleased(latest, partitions) {
			break
		}
		if !time.Now().Add(h.poll).Before(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return latest, time.Since(began)
		case <-time.After(h.poll):
		}
	}
	return latest, time.Since(began)
}

func (h *handoff) allReleased(latest map[int32]storage.Baseline, partitions []consumer.Partition) bool {
	for _, p := range partitions {
		if p.HandedOver && !h.fresh(p.ID, latest[p.ID]) {
			return false
		}
	}
	return true
}
