package main

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/models"
)

// handoff gives respond and alert the detections this replica raises as
// it raises them, instead of at the feed's next poll of the detections
// table (storage.Feed, every 2 s, which was most of the time from
// detection to policy). The feed still delivers every replica's
// detections; what the handoff already delivered, it skips. The
// detector never waits: a full queue drops the hand-off (counted) and
// the feed delivers that detection instead.
type handoff struct {
	next consumer.Detections
	// active, when set, gates the hand-off as it gates the feed: a
	// follower hands nothing on (the leader's feed has it).
	active  func() bool
	queue   chan models.Detection
	dropped prometheus.Counter

	mu   sync.Mutex
	seen map[string]delivered
}

// delivered is the newest version of a detection handed on.
type delivered struct {
	updates uint32
	at      time.Time // its UpdatedAt
	noted   time.Time // wall clock, for forgetting
}

const (
	handoffQueue = 256
	// handoffMemory is how long a delivery is remembered: far longer than
	// the feed takes to read the same row back.
	handoffMemory = 10 * time.Minute
)

func newHandoff(next consumer.Detections, reg prometheus.Registerer) *handoff {
	h := &handoff{next: next, queue: make(chan models.Detection, handoffQueue), seen: map[string]delivered{},
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshguard_respond_handoff_dropped_total",
			Help: "Detections not handed straight to respond and alert because the queue was full; the detections feed delivers them instead."})}
	if reg != nil {
		reg.MustRegister(h.dropped)
	}
	return h
}

// HandleDetection queues d for respond and alert; it never blocks.
func (h *handoff) HandleDetection(_ context.Context, d models.Detection) error {
	if h.active != nil && !h.active() {
		return nil
	}
	select {
	case h.queue <- d:
	default:
		h.dropped.Inc()
	}
	return nil
}

// Run hands queued detections on until ctx ends.
func (h *handoff) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case d := <-h.queue:
			_ = h.deliver(ctx, d)
		}
	}
}

// fromFeed is the feed's sink: what the hand-off delivered is skipped.
func (h *handoff) fromFeed() consumer.Detections {
	return consumer.DetectionsFunc(h.deliver)
}

// deliver hands d on unless a version as new was handed on already.
func (h *handoff) deliver(ctx context.Context, d models.Detection) error {
	now := time.Now()
	h.mu.Lock()
	if s, ok := h.seen[d.ID]; ok && s.updates >= d.Updates && !d.UpdatedAt.After(s.at) {
		h.mu.Unlock()
		return nil
	}
	h.seen[d.ID] = delivered{updates: d.Updates, at: d.UpdatedAt, noted: now}
	if len(h.seen) > 4*handoffQueue {
		for id, s := range h.seen {
			if now.Sub(s.noted) > handoffMemory {
				delete(h.seen, id)
			}
		}
	}
	h.mu.Unlock()
	return h.next.HandleDetection(ctx, d)
}
