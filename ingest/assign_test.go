package ingest_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/ingest"
	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/scenario"
	"github.com/meshguard/meshguard/test/testenv"
)

// produceSpread writes n messages of generated access logs in one call,
// round-robin over the topic's partitions, and returns the records.
func produceSpread(t *testing.T, brokers []string, topic string, n int, seed uint64) int {
	t.Helper()
	gen := scenario.New(scenario.DefaultMesh(), time.Date(2026, 11, 18, 3, 0, 0, 0, time.UTC), seed)
	records := 0
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		ld := gen.Next(time.Second)
		records += ld.LogRecordCount()
		v, err := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
		if err != nil {
			t.Fatal(err)
		}
		msgs[i].Value = v
	}
	write(t, brokers, topic, 0, msgs...)
	return records
}

// ownerLog is an AfterStore stage that keeps per-partition state: it
// records, in the order the consumer calls it, every rebalance and the
// partitions of every batch.
type ownerLog struct {
	mu     sync.Mutex
	events []string
	held   map[int32]bool
	flows  map[int32]int
	bad    []string // flows of a partition not held
	// positions are the Position of every event, in order.
	positions []string
}

func newOwnerLog() *ownerLog { return &ownerLog{held: map[int32]bool{}, flows: map[int32]int{}} }

func (o *ownerLog) ConsumeFlows(_ context.Context, flows []models.Flow) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := range flows {
		p := flows[i].Partition
		if !o.held[p] {
			o.bad = append(o.bad, fmt.Sprintf("a flow of partition %d after %v", p, o.events))
		}
		o.flows[p]++
	}
	return nil
}

func (o *ownerLog) PartitionsRevoked(_ context.Context, partitions []consumer.Partition) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, p := range partitions {
		o.events = append(o.events, fmt.Sprintf("revoked %d", p.ID))
		if !o.held[p.ID] {
			o.bad = append(o.bad, fmt.Sprintf("partition %d revoked, not held", p.ID))
		}
		delete(o.held, p.ID)
		o.positions = append(o.positions, p.Position)
	}
}

func (o *ownerLog) PartitionsAssigned(_ context.Context, partitions []consumer.Partition) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, p := range partitions {
		o.events = append(o.events, fmt.Sprintf("assigned %d handed=%v", p.ID, p.HandedOver))
		if o.held[p.ID] {
			o.bad = append(o.bad, fmt.Sprintf("partition %d assigned twice", p.ID))
		}
		o.held[p.ID] = true
		o.positions = append(o.positions, p.Position)
	}
}

func (o *ownerLog) snapshot() (events []string, held []int32, flows int, bad []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for p := range o.held {
		held = append(held, p)
	}
	slices.Sort(held)
	for _, n := range o.flows {
		flows += n
	}
	return slices.Clone(o.events), held, flows, slices.Clone(o.bad)
}

func (o *ownerLog) lastPosition() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.positions) == 0 {
		return ""
	}
	return o.positions[len(o.positions)-1]
}

func (o *ownerLog) holds(want ...int32) func() bool {
	return func() bool {
		_, held, _, _ := o.snapshot()
		return slices.Equal(held, want)
	}
}

// A second consumer joining the group and leaving it again moves a
// partition each way; the stage after the store hears of each move in
// order with the flows: no flow of a partition it does not hold, a
// revocation after the last flow of it and an assignment before the
// first. A partition the other member committed is handed over; one no
// member ever committed is not. A member leaving cleanly stops at the
// position its successor starts from.
func TestConsumerTellsOwnerOfRebalances(t *testing.T) {
	brokerKinds(t, func(t *testing.T, brokers []string) {
		topic := testenv.NewTopic(t, brokers, 2)
		k, i := config(brokers, topic, "owner-"+topic)
		s1, s2 := newSink(), newSink()
		o1, o2 := newOwnerLog(), newOwnerLog()
		c1 := start(t, k, i, s1, ingest.AfterStore(o1))
		waitFor(t, "the first consumer holding both partitions", time.Minute, o1.holds(0, 1))
		if ev, _, _, _ := o1.snapshot(); !slices.Equal(ev, []string{"assigned 0 handed=false", "assigned 1 handed=false"}) {
			t.Fatalf("first assignment of a new group: %v, want both partitions, neither handed over", ev)
		}
		first := produceSpread(t, brokers, topic, 20, 1)
		waitFor(t, "the first records stored", time.Minute, func() bool { return s1.distinct() == first })

		c2 := start(t, k, i, s2, ingest.AfterStore(o2))
		waitFor(t, "the group split", time.Minute, func() bool {
			_, h1, _, _ := o1.snapshot()
			_, h2, _, _ := o2.snapshot()
			return len(h1) == 1 && len(h2) == 1 && h1[0] != h2[0]
		})
		_, moved, _, _ := o2.snapshot()
		if ev, _, _, _ := o2.snapshot(); !slices.Equal(ev, []string{fmt.Sprintf("assigned %d handed=true", moved[0])}) {
			t.Errorf("joining member's events %v: want partition %d handed over (the first member committed it)", ev, moved[0])
		}
		second := produceSpread(t, brokers, topic, 20, 2)
		defer func() {
			if t.Failed() {
				ev1, h1, f1, b1 := o1.snapshot()
				ev2, h2, f2, b2 := o2.snapshot()
				t.Logf("first: %v holds %v, %d flows, %v, %+v\nsecond: %v holds %v, %d flows, %v, %+v", ev1, h1, f1, b1, c1.c.Stats(), ev2, h2, f2, b2, c2.c.Stats())
			}
		}()
		waitFor(t, "the second records stored", time.Minute, func() bool {
			_, _, f1, _ := o1.snapshot()
			_, _, f2, _ := o2.snapshot()
			return f2 > 0 && s2.distinct() > 0 && f1+f2 >= first+second
		})

		c2.stop(t)
		waitFor(t, "the first consumer holding both partitions again", time.Minute, o1.holds(0, 1))
		ev1, _, _, bad1 := o1.snapshot()
		ev2, _, _, bad2 := o2.snapshot()
		want1 := []string{"assigned 0 handed=false", "assigned 1 handed=false", fmt.Sprintf("revoked %d", moved[0]), fmt.Sprintf("assigned %d handed=true", moved[0])}
		if !slices.Equal(ev1, want1) {
			t.Errorf("first member's events %v, want %v", ev1, want1)
		}
		if want2 := []string{fmt.Sprintf("assigned %d handed=true", moved[0]), fmt.Sprintf("revoked %d", moved[0])}; !slices.Equal(ev2, want2) {
			t.Errorf("second member's events %v, want %v", ev2, want2)
		}
		// The second member left cleanly, committing all it handed on:
		// the first starts exactly where it stopped.
		if left, resumed := o2.lastPosition(), o1.lastPosition(); left != resumed || left == "" {
			t.Errorf("the leaving member stopped at %q, the next owner starts at %q", left, resumed)
		}
		if bad := append(bad1, bad2...); len(bad) > 0 {
			t.Errorf("out of order: %v", bad)
		}
		c1.stop(t)
		if ev, _, _, _ := o1.snapshot(); ev[len(ev)-1] != "revoked 1" || ev[len(ev)-2] != "revoked 0" {
			t.Errorf("a consumer leaving the group gives up its partitions: events end %v", ev[len(ev)-2:])
		}
	})
}
