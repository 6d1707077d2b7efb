package ingest

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/meshguard/meshguard/consumer"
)

// generation is one assignment of the group, as the reader reported it:
// the partitions with the offsets they start from (a committed offset, or
// kafka.FirstOffset when the group has none).
type generation struct {
	parts map[topicPartition]int64
	// replaced is closed once a newer generation was reported.
	replaced chan struct{}
}

func newGeneration(parts map[topicPartition]int64) *generation {
	return &generation{parts: parts, replaced: make(chan struct{})}
}

// noteGeneration records the assignment in kafka-go's "subscribed" log
// line: a map of topic partition (unexported fields topic, partition) to
// the offset it starts from. A change in that shape leaves the map empty,
// which TestConsumerTellsOwnerOfRebalances catches.
func (g *groupState) noteGeneration(v reflect.Value) {
	parts := map[topicPartition]int64{}
	if v.Kind() == reflect.Map && v.Type().Key().Kind() == reflect.Struct && v.Type().Elem().Kind() == reflect.Int64 {
		tf, ok1 := v.Type().Key().FieldByName("topic")
		pf, ok2 := v.Type().Key().FieldByName("partition")
		if ok1 && ok2 && tf.Type.Kind() == reflect.String && pf.Type.ConvertibleTo(reflect.TypeFor[int64]()) {
			for it := v.MapRange(); it.Next(); {
				k := it.Key()
				parts[topicPartition{k.FieldByIndex(tf.Index).String(), int(k.FieldByIndex(pf.Index).Int())}] = it.Value().Int()
			}
		}
	}
	if old := g.gen.Swap(newGeneration(parts)); old != nil {
		close(old.replaced)
	}
}

// partitionChange is a rebalance as the owner sees it, carried by an
// otherwise empty batch.
type partitionChange struct {
	revoked, assigned []consumer.Partition
}

// ownCommits remembers the offset this consumer last committed for each
// partition, to tell its own progress from another member's.
type ownCommits struct {
	mu  sync.Mutex
	off map[topicPartition]int64
}

func (o *ownCommits) note(msgs []kafka.Message) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.off == nil {
		o.off = map[topicPartition]int64{}
	}
	for _, m := range msgs {
		o.off[topicPartition{m.Topic, m.Partition}] = m.Offset + 1 // what kafka-go commits
	}
}

func (o *ownCommits) is(tp topicPartition, offset int64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	own, ok := o.off[tp]
	return ok && own == offset
}

// assignments follows the group's generations for the fetch loop, which
// alone uses it: which one the owner was last told of, and a context
// that ends when a newer one is reported, so that a fetch waiting on an
// idle partition wakes for the rebalance.
type assignments struct {
	group *groupState
	own   *ownCommits
	seen  *generation
	// next is, per partition held, the offset after the last message
	// handed on (where this consumer stopped).
	next   map[topicPartition]int64
	ctx    context.Context
	cancel context.CancelFunc
	parent context.Context
}

// newAssignments follows g from its current generation, the empty one of
// a reset: make it before the reader that reports to g starts, or its
// first generation could be taken as already told.
func newAssignments(ctx context.Context, g *groupState, own *ownCommits) *assignments {
	a := &assignments{group: g, own: own, parent: ctx, seen: g.gen.Load(), next: map[topicPartition]int64{}}
	a.watch()
	return a
}

// watch makes a.ctx end when a.seen is replaced (or the parent ends).
func (a *assignments) watch() {
	if a.cancel != nil {
		a.cancel()
	}
	a.ctx, a.cancel = context.WithCancel(a.parent)
	ctx, cancel, replaced := a.ctx, a.cancel, a.seen.replaced
	go func() {
		select {
		case <-replaced:
			cancel()
		case <-ctx.Done():
		}
	}()
}

func (a *assignments) close() { a.cancel() }

// behind: a newer generation than the one seen was reported.
func (a *assignments) behind() bool {
	return a.group.gen.Load() != a.seen
}

// before says whether the owner must hear of a rebalance before m: m
// comes from a newer generation. kafka-go starts a generation's fetches
// a moment before it logs the assignment, so a message of a partition
// not held waits briefly for that line.
func (a *assignments) before(m kafka.Message) bool {
	tp := topicPartition{m.Topic, m.Partition}
	if !a.behind() {
		if _, held := a.seen.parts[tp]; held {
			return false
		}
		select {
		case <-a.seen.replaced:
		case <-time.After(time.Second):
			return false
		}
	}
	// A message of a partition the new generation lacks is the old
	// one's last: it goes before the revocation.
	_, assigned := a.group.gen.Load().parts[tp]
	return assigned
}

// advance adopts the newest generation and returns what changed for the
// owner, nil when nothing did.
func (a *assignments) advance() *partitionChange {
	g := a.group.gen.Load()
	if g == a.seen {
		return nil
	}
	old := a.seen
	a.seen = g
	a.watch()
	return a.diff(old.parts, g.parts)
}

// revokeAll is the change of leaving the group: every partition held.
func (a *assignments) revokeAll() *partitionChange {
	ch := a.diff(a.seen.parts, nil)
	a.seen = newGeneration(nil)
	return ch
}

// handedBefore says whether m was already handed to the owner. kafka-go
// starts every partition of a new generation again from the group's
// committed offset, those this consumer keeps included, so what it
// handed on but had not committed yet comes a second time. The batch that
// holds it is being stored and commits it; handing it on again would
// count it twice in the detector's open windows.
func (a *assignments) handedBefore(m kafka.Message) bool {
	next, ok := a.next[topicPartition{m.Topic, m.Partition}]
	return ok && m.Offset < next
}

// handedOn notes m as given to the owner.
func (a *assignments) handedOn(m kafka.Message) {
	a.next[topicPartition{m.Topic, m.Partition}] = m.Offset + 1
}

// diff compares two assignments by partition number, and moves next on
// from the old one to the new.
func (a *assignments) diff(old, cur map[topicPartition]int64) *partitionChange {
	was, is := numbers(old), numbers(cur)
	ch := &partitionChange{}
	for p := range was {
		if _, ok := is[p]; !ok {
			ch.revoked = append(ch.revoked, consumer.Partition{ID: p, Position: position(p, old, a.next)})
		}
	}
	for p := range is {
		if _, ok := was[p]; ok {
			continue
		}
		part := consumer.Partition{ID: p, Position: position(p, cur, cur)}
		for tp, off := range cur {
			if int32(tp.partition) == p && off >= 0 && !a.own.is(tp, off) {
				part.HandedOver = true
			}
		}
		ch.assigned = append(ch.assigned, part)
	}
	for tp := range old {
		if _, ok := cur[tp]; !ok {
			delete(a.next, tp)
		}
	}
	for tp, off := range cur {
		if _, ok := old[tp]; !ok {
			a.next[tp] = off
		}
	}
	if len(ch.revoked)+len(ch.assigned) == 0 {
		return nil
	}
	byID := func(x, y consumer.Partition) int { return int(x.ID - y.ID) }
	slices.SortFunc(ch.revoked, byID)
	slices.SortFunc(ch.assigned, byID)
	return ch
}

// position is partition number p's token: the offsets of its topics in
// parts, each read from at (or the start offset when at lacks it).
func position(p int32, parts, at map[topicPartition]int64) string {
	var out []string
	for tp, start := range parts {
		if int32(tp.partition) != p {
			continue
		}
		off, ok := at[tp]
		if !ok {
			off = start
		}
		out = append(out, fmt.Sprintf("%s:%d", tp.topic, off))
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

func numbers(parts map[topicPartition]int64) map[int32]struct{} {
	out := make(map[int32]struct{}, len(parts))
	for tp := range parts {
		out[int32(tp.partition)] = struct{}{}
	}
	return out
}

// tellOwner hands a rebalance to the owner, revocations first: a swap
// releases before it waits, so two replicas trading partitions do not
// wait on each other.
func tellOwner(ctx context.Context, o consumer.Partitions, ch *partitionChange) {
	if len(ch.revoked) > 0 {
		o.PartitionsRevoked(ctx, ch.revoked)
	}
	if len(ch.assigned) > 0 {
		o.PartitionsAssigned(ctx, ch.assigned)
	}
}

// tellChange hands ch (if any) to the store in a batch of its own, for
// the owner after it.
func (c *Consumer) tellChange(ch *partitionChange, full chan<- *batch, free <-chan *batch) {
	if ch == nil {
		return
	}
	b := <-free
	b.change = ch
	full <- b
}
