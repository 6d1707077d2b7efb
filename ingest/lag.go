package ingest

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
)

// stallSessions is how many session timeouts of growing lag without a
// fetched message make the consumer report a stall: one session timeout
// is what a rebalance may legitimately take, several are not.
const stallSessions = 3

// PartitionLag is how far the group's committed offset of one assigned
// partition is behind the partition's end.
type PartitionLag struct {
	Topic     string
	Partition int
	Lag       int64 // messages
}

// progress is what the consumer did lately, for the metrics and for the
// stall check: when it last received a message and last committed, the
// lag of its partitions, and whether that lag grew with nothing fetched.
type progress struct {
	lastFetch    atomic.Int64 // unix nanoseconds, 0 before the first message
	lastCommit   atomic.Int64 // unix nanoseconds, 0 before the first commit
	sessionStart atomic.Int64 // unix nanoseconds: a new member has nothing fetched yet
	onBatch      atomic.Pointer[func(time.Duration)]

	mu        sync.Mutex
	lag       []PartitionLag // of the last sample, nil when none (or a new assignment)
	baseFetch int64          // lastFetch when baseLag was sampled
	baseLag   int64          // total lag at the first sample after that fetch
	stalled   *stall         // non-nil while lag grows with no fetch
}

type stall struct {
	fetch int64 // lastFetch when the stall was seen: a later fetch ends it
	since time.Time
	lag   int64
	was   int64
}

func unixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// OnBatch registers f to receive, for every committed batch, the time
// from its first message's fetch to its commit (the delay ingest adds).
// Call it before Run; f must not block.
func (c *Consumer) OnBatch(f func(time.Duration)) { c.progress.onBatch.Store(&f) }

// Lag returns the lag of each partition assigned to this consumer at the
// last sample (taken every few seconds), nil before the first one.
func (c *Consumer) Lag() []PartitionLag {
	c.progress.mu.Lock()
	defer c.progress.mu.Unlock()
	return slices.Clone(c.progress.lag)
}

func (c *Consumer) resetProgress() {
	c.progress.sessionStart.Store(time.Now().UnixNano())
	c.progress.mu.Lock()
	c.progress.lag, c.progress.stalled = nil, nil
	c.progress.baseFetch, c.progress.baseLag = -1, 0
	c.progress.mu.Unlock()
}

// stallError is non-nil while the lag of this consumer's partitions grows
// and no message was fetched for stallSessions session timeouts.
func (c *Consumer) stallError() error {
	p := &c.progress
	p.mu.Lock()
	s := p.stalled
	p.mu.Unlock()
	if s == nil || p.lastFetch.Load() != s.fetch {
		return nil
	}
	last := "no message fetched since this member joined"
	if s.fetch != 0 {
		last = "last message fetched at " + unixNano(s.fetch).UTC().Format(time.RFC3339)
	}
	return fmt.Errorf("ingest stalled: the lag of the assigned partitions grew from %d to %d messages and %s (more than %d× kafka.session_timeout); "+
		"see the log for store failures or a blocked DLQ (meshguard_ingest_store_failures_total, meshguard_ingest_dlq_blocked)",
		s.was, s.lag, last, stallSessions)
}

// assignedPartitions reads the partitions of kafka-go's "subscribed" log
// argument, a map keyed by its unexported topicPartition{topic,
// partition}; nil when its shape is not that.
func assignedPartitions(v reflect.Value) []topicPartition {
	if v.Kind() != reflect.Map || v.Type().Key().Kind() != reflect.Struct {
		return nil
	}
	tf, ok1 := v.Type().Key().FieldByName("topic")
	pf, ok2 := v.Type().Key().FieldByName("partition")
	if !ok1 || !ok2 || tf.Type.Kind() != reflect.String || !pf.Type.ConvertibleTo(reflect.TypeFor[int64]()) {
		return nil
	}
	out := make([]topicPartition, 0, v.Len())
	for _, k := range v.MapKeys() {
		out = append(out, topicPartition{k.FieldByIndex(tf.Index).String(), int(k.FieldByIndex(pf.Index).Int())})
	}
	slices.SortFunc(out, func(a, b topicPartition) int {
		if a.topic != b.topic {
			if a.topic < b.topic {
				return -1
			}
			return 1
		}
		return a.partition - b.partition
	})
	return out
}

// sampleLag asks the brokers for the end offsets of the assigned
// partitions and the group's committed offsets, stores the lag and
// updates the stall state. A failed request keeps the previous sample.
func (c *Consumer) sampleLag(ctx context.Context) {
	parts := c.group.partitions.Load()
	if parts == nil || len(*parts) == 0 {
		c.progress.mu.Lock()
		c.progress.lag, c.progress.stalled = nil, nil
		c.progress.mu.Unlock()
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	byTopic := map[string][]int{}
	ends := map[string][]kafka.OffsetRequest{}
	for _, tp := range *parts {
		byTopic[tp.topic] = append(byTopic[tp.topic], tp.partition)
		ends[tp.topic] = append(ends[tp.topic], kafka.FirstOffsetOf(tp.partition), kafka.LastOffsetOf(tp.partition))
	}
	offs, err := c.topicClient.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: ends})
	if err != nil {
		return
	}
	committed, err := c.topicClient.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: c.kcfg.GroupID, Topics: byTopic})
	if err != nil || committed.Error != nil {
		return
	}
	type bounds struct{ first, last int64 }
	end := map[topicPartition]bounds{}
	for topic, ps := range offs.Topics {
		for _, p := range ps {
			if p.Error == nil {
				end[topicPartition{topic, p.Partition}] = bounds{p.FirstOffset, p.LastOffset}
			}
		}
	}
	lag := make([]PartitionLag, 0, len(*parts))
	var total int64
	for _, tp := range *parts {
		b, ok := end[tp]
		if !ok {
			return // a partition without an answer: no honest total
		}
		from := b.first // nothing committed: the group starts at the oldest
		for _, p := range committed.Topics[tp.topic] {
			if p.Partition == tp.partition && p.Error == nil && p.CommittedOffset >= 0 {
				from = max(p.CommittedOffset, b.first)
			}
		}
		l := max(b.last-from, 0)
		total += l
		lag = append(lag, PartitionLag{Topic: tp.topic, Partition: tp.partition, Lag: l})
	}
	c.observeLag(lag, total, time.Now())
}

// observeLag records a lag sample. The stall baseline is the first sample
// after the latest fetch; the lag growing past it while no message comes
// for stallSessions session timeouts is a stall.
func (c *Consumer) observeLag(lag []PartitionLag, total int64, now time.Time) {
	p := &c.progress
	fetched := p.lastFetch.Load()
	quietSince := unixNano(max(fetched, p.sessionStart.Load()))
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lag = lag
	if fetched != p.baseFetch {
		p.baseFetch, p.baseLag, p.stalled = fetched, total, nil
		return
	}
	if total > p.baseLag && now.Sub(quietSince) >= stallSessions*c.kcfg.SessionTimeout {
		if p.stalled == nil {
			c.log.Error("ingest stalled: lag grows and no message was fetched for several session timeouts",
				"lag", total, "was", p.baseLag, "quiet_since", quietSince.UTC().Format(time.RFC3339))
			p.stalled = &stall{fetch: fetched, since: now}
		}
		p.stalled.lag, p.stalled.was = total, p.baseLag
	}
}

// Stalled reports whether the lag grows with no message fetched for
// several session timeouts (ReadyError says more).
func (c *Consumer) Stalled() bool { return c.stallError() != nil }
