package main

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/models"
)

type detectionLog struct {
	mu   sync.Mutex
	seen []models.Detection
	got  chan struct{}
}

func (l *detectionLog) HandleDetection(_ context.Context, d models.Detection) error {
	l.mu.Lock()
	l.seen = append(l.seen, d)
	l.mu.Unlock()
	l.got <- struct{}{}
	return nil
}

// A detection handed straight on is not handed on again when the feed
// reads it back; a newer version of it is; a follower hands on nothing.
func TestHandoffDeliversOnceAndSkipsWhatTheFeedRereads(t *testing.T) {
	next := &detectionLog{got: make(chan struct{}, 16)}
	h := newHandoff(next, prometheus.NewRegistry())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = h.Run(ctx) }()

	t0 := time.Now()
	d := models.Detection{ID: "det-1", Kind: models.Scan, Updates: 1, UpdatedAt: t0}
	if err := h.HandleDetection(ctx, d); err != nil {
		t.Fatal(err)
	}
	<-next.got
	feed := h.fromFeed()
	if err := feed.HandleDetection(ctx, d); err != nil { // the same row, read back
		t.Fatal(err)
	}
	later := d
	later.UpdatedAt = t0.Add(time.Second) // the window's close confirms an early raise
	if err := feed.HandleDetection(ctx, later); err != nil {
		t.Fatal(err)
	}
	<-next.got
	next.mu.Lock()
	n := len(next.seen)
	next.mu.Unlock()
	if n != 2 {
		t.Errorf("handed on %d times, want 2 (the raise, then its newer version)", n)
	}

	h.active = func() bool { return false }
	_ = h.HandleDetection(ctx, models.Detection{ID: "det-2", Updates: 1})
	if len(h.queue) != 0 {
		t.Errorf("a follower queued a detection")
	}
}

// The detector never waits on a full queue: the drop is counted and the
// feed delivers the detection instead.
func TestHandoffFullQueueDropsAndCounts(t *testing.T) {
	h := newHandoff(consumer.FanoutDetections(), prometheus.NewRegistry())
	for i := range handoffQueue + 3 {
		_ = h.HandleDetection(context.Background(), models.Detection{ID: "det", Updates: uint32(i + 1)})
	}
	var m dto.Metric
	if err := h.dropped.Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetCounter().GetValue(); got != 3 {
		t.Errorf("dropped = %v, want 3", got)
	}
}
