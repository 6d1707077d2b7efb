package ingest

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"

	"github.com/segmentio/kafka-go"
)

// groupState is what the current reader's group membership achieved:
// whether a generation assigned it partitions and whether a fetch from
// them succeeded. kafka-go's Reader exposes neither, so both are read
// from what it reports: the assignment from its "subscribed" log line
// (whose argument is the map of assigned partitions), fetches from its
// Stats. A kafka-go upgrade that changes either fails
// TestConsumerReportsAssignedPartitions.
type groupState struct {
	joined   atomic.Bool  // a generation assigned this member its partitions (maybe none)
	assigned atomic.Int64 // partitions in that assignment
	fetched  atomic.Bool  // a message arrived, or a fetch round completed
	inits    atomic.Int64 // partition readers (re)started
	fetches  atomic.Int64 // fetch requests started

	partitions atomic.Pointer[[]topicPartition] // the assignment, for the lag (lag.go)
	gen        atomic.Pointer[generation]       // the assignment with its offsets, for a consumer.Partitions stage (assign.go)
}

func (g *groupState) reset() {
	g.joined.Store(false)
	g.assigned.Store(0)
	g.fetched.Store(false)
	g.inits.Store(0)
	g.fetches.Store(0)
	g.partitions.Store(nil)
	if old := g.gen.Swap(newGeneration(nil)); old != nil {
		close(old.replaced)
	}
}

// observe is the reader's info Logger: it reads the assignment and the
// partition readers' starts, and prints nothing (kafka-go's info lines
// are per partition and per fetch).
func (g *groupState) observe(msg string, args ...any) {
	switch {
	case strings.HasPrefix(msg, "subscribed to topics and partitions"):
		if len(args) == 1 {
			if v := reflect.ValueOf(args[0]); v.Kind() == reflect.Map {
				parts := assignedPartitions(v)
				g.partitions.Store(&parts)
				g.noteGeneration(v)
				g.assigned.Store(int64(v.Len()))
				g.joined.Store(true)
			}
		}
	case strings.HasPrefix(msg, "initializing kafka reader for partition"):
		g.inits.Add(1)
	}
}

// poll accumulates the reader's fetch count (Stats resets its counters,
// and nothing else reads them). Each partition reader starts one fetch
// after it initialized and another only after the previous one returned
// without needing a new connection: more fetches than initializations
// means some fetch round trip succeeded, even on a topic with no data.
func (g *groupState) poll(r *kafka.Reader) {
	n := g.fetches.Add(r.Stats().Fetches)
	if n > g.inits.Load() && g.assigned.Load() > 0 {
		g.fetched.Store(true)
	}
}

// AssignedPartitions returns how many partitions the group gave this
// consumer in the current generation (0 before it joined).
func (c *Consumer) AssignedPartitions() int64 { return c.group.assigned.Load() }

// ReadyError says why the consumer does not ingest yet, nil when it
// does: Kafka reached, at least one topic exists, a group generation
// assigned this consumer its partitions, and (when it has any) a fetch
// from them succeeded. A member given no partition (more replicas than
// partitions) is ready once it joined: it stands by for a rebalance.
func (c *Consumer) ReadyError() error {
	if err := c.ConnectError(); err != nil {
		return err
	}
	if !c.connected.Load() {
		return errors.New("connecting to kafka")
	}
	status := c.Topics()
	if status == nil {
		return errors.New("listing the kafka topics")
	}
	usable := 0
	var missing []string
	for _, s := range status {
		if s.Err == nil {
			if s.Key != "kafka.dlq_topic" {
				usable++
			}
			continue
		}
		missing = append(missing, fmt.Sprintf("%s %q: %s", s.Key, s.Topic, topicProblem(s)))
	}
	if usable == 0 {
		return fmt.Errorf("no configured kafka topic is usable: %s", strings.Join(missing, "; "))
	}
	if err := c.authError(); err != nil {
		return err
	}
	if !c.group.joined.Load() {
		return fmt.Errorf("joining consumer group %q: no partitions assigned yet", c.kcfg.GroupID)
	}
	if c.dlq.blocked.Load() {
		return fmt.Errorf("ingest waits: kafka.dlq_topic %q refuses an undecodable message for good (see the log; kafka.dlq_required: true)", c.kcfg.DLQTopic)
	}
	if c.group.assigned.Load() > 0 && !c.group.fetched.Load() {
		return fmt.Errorf("consumer group %q assigned %d partitions; no fetch from them has succeeded yet",
			c.kcfg.GroupID, c.group.assigned.Load())
	}
	return c.stallError()
}
