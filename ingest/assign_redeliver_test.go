package ingest

import (
	"context"
	"testing"

	"github.com/segmentio/kafka-go"
)

// A new generation that keeps a partition here restarts it from the
// committed offset: what this consumer handed on since is fetched again
// and must not reach the owner twice. A partition given up and assigned
// again starts afresh from its offset.
func TestRedeliveryOfAKeptPartitionIsNotHandedOnAgain(t *testing.T) {
	g := &groupState{}
	g.reset()
	a := newAssignments(context.Background(), g, &ownCommits{})
	defer a.close()
	setGen := func(parts map[topicPartition]int64) {
		if old := g.gen.Swap(newGeneration(parts)); old != nil {
			close(old.replaced)
		}
		a.advance()
	}
	msg := func(p int, off int64) kafka.Message { return kafka.Message{Topic: "logs", Partition: p, Offset: off} }
	p0, p1 := topicPartition{"logs", 0}, topicPartition{"logs", 1}

	setGen(map[topicPartition]int64{p0: 0, p1: 0})
	for off := int64(0); off < 10; off++ {
		if a.handedBefore(msg(0, off)) {
			t.Fatalf("offset %d of a first generation taken for a redelivery", off)
		}
		a.handedOn(msg(0, off))
	}
	a.handedOn(msg(1, 0))

	// Committed up to 5 on partition 0; partition 1 goes elsewhere.
	setGen(map[topicPartition]int64{p0: 5})
	for off := int64(5); off < 10; off++ {
		if !a.handedBefore(msg(0, off)) {
			t.Errorf("offset %d, handed on before the new generation, would be handed on again", off)
		}
	}
	if a.handedBefore(msg(0, 10)) {
		t.Error("offset 10, never fetched, taken for a redelivery")
	}

	// Partition 1 comes back from another member's commit at 0.
	setGen(map[topicPartition]int64{p0: 5, p1: 0})
	if a.handedBefore(msg(1, 0)) {
		t.Error("partition 1's offset 0, assigned again after another member held it, taken for a redelivery")
	}
}
