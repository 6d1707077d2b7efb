package ingest

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/models"
)

// The stall rule on a timeline: lag growing is not a stall while
// messages arrive or for less than three session timeouts of quiet; it is
// one after; the next fetched message ends it at once.
func TestStallNeedsGrowingLagAndLongQuiet(t *testing.T) {
	k := DefaultKafkaConfig()
	k.Brokers = []string{"127.0.0.1:9"}
	k.SessionTimeout = 6 * time.Second
	c, err := NewConsumer(k, DefaultIngestConfig(), consumer.FlowsFunc(func(context.Context, []models.Flow) error { return nil }),
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	c.resetProgress()
	c.progress.sessionStart.Store(t0.UnixNano())
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	sample := func(d time.Duration, total int64) { c.observeLag(nil, total, at(d)) }
	stalled := func() bool { return c.stallError() != nil }

	// Never fetched: quiet counts from the session's start.
	sample(time.Second, 10)
	sample(17*time.Second, 50)
	if stalled() {
		t.Fatal("stalled after 17s of quiet; the rule is 3 × 6s")
	}
	sample(19*time.Second, 60)
	if !stalled() {
		t.Fatal("not stalled: lag 10 -> 60 over 19s with nothing fetched")
	}
	if err := c.stallError(); !strings.Contains(err.Error(), "from 10 to 60") || !strings.Contains(err.Error(), "no message fetched since this member joined") {
		t.Fatalf("stall error %q: want the lag and that nothing was fetched", err)
	}

	c.progress.lastFetch.Store(at(20 * time.Second).UnixNano())
	if stalled() {
		t.Fatal("still stalled after a message was fetched")
	}
	sample(21*time.Second, 70) // the new baseline
	sample(45*time.Second, 70)
	if stalled() {
		t.Fatal("stalled with the lag flat: an idle consumer with a steady backlog is a capacity question, not a stall")
	}
	sample(46*time.Second, 71)
	if err := c.stallError(); err == nil || !strings.Contains(err.Error(), "from 70 to 71") || !strings.Contains(err.Error(), "last message fetched at 2026-12-01T00:00:20Z") {
		t.Fatalf("stall error %v: want the growth and the last fetch", err)
	}
	c.resetProgress() // a new group generation starts over
	if stalled() {
		t.Fatal("a stall survived a new session")
	}
}

// assignedPartitions reads the shape of kafka-go's assignment map.
func TestAssignedPartitionsReadsTheSubscribedMap(t *testing.T) {
	type tp struct {
		topic     string
		partition int32
	}
	got := assignedPartitions(reflect.ValueOf(map[tp]int64{{"b", 0}: 5, {"a", 2}: 1, {"a", 0}: -2}))
	want := []topicPartition{{"a", 0}, {"a", 2}, {"b", 0}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("assignedPartitions = %v, want %v", got, want)
	}
	if got := assignedPartitions(reflect.ValueOf(map[string]int{"x": 1})); got != nil {
		t.Fatalf("a map of another shape gave %v, want nil", got)
	}
}
