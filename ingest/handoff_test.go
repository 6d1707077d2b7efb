package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/meshguard/meshguard/ingest"
	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/test/testenv"
)

// afterStage records what the AfterStore stage saw, and whether the store
// had every flow of a batch before it.
type afterStage struct {
	store *sink
	mu    sync.Mutex
	seen  map[models.FlowID]int
	early int // flows seen before the store had them
	// hold, when set, is called with each batch's number (from 1) before
	// the batch is counted.
	hold func(n int)
	n    int
}

func (a *afterStage) ConsumeFlows(_ context.Context, flows []models.Flow) error {
	a.mu.Lock()
	a.n++
	n := a.n
	a.mu.Unlock()
	if a.hold != nil {
		a.hold(n)
	}
	a.store.mu.Lock()
	early := 0
	for i := range flows {
		if a.store.seen[flows[i].ID] == 0 {
			early++
		}
	}
	a.store.mu.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.early += early
	for i := range flows {
		a.seen[flows[i].ID]++
	}
	return nil
}

func (a *afterStage) counts() (distinct, total, early int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, n := range a.seen {
		total += n
	}
	return len(a.seen), total, a.early
}

func startAfter(t *testing.T, k ingest.KafkaConfig, i ingest.IngestConfig, store *sink, after *afterStage) *running {
	t.Helper()
	return start(t, k, i, store, ingest.AfterStore(after))
}

// The stage after the store sees every flow once, and only once the
// store acknowledged it, however often the store failed first; the
// offsets are committed behind both.
func TestAfterStoreSeesEveryStoredFlowOnce(t *testing.T) {
	brokers := testenv.Kfake(t)
	topic := testenv.NewTopic(t, brokers, 3)
	records := produceScenario(t, brokers, topic, 9, 11)
	k, i := config(brokers, topic, topic+"-g")
	i.BatchSize = 1 // a batch per message: many hand-offs
	store := newSink()
	store.failures, store.failWith = 4, errors.New("clickhouse: connection reset")
	after := &afterStage{store: store, seen: map[models.FlowID]int{}}
	r := startAfter(t, k, i, store, after)
	waitFor(t, fmt.Sprintf("%d flows after the store", records), time.Minute, func() bool {
		d, _, _ := after.counts()
		return d >= records
	})
	r.stop(t)
	distinct, total, early := after.counts()
	if distinct != records || total != records {
		t.Fatalf("the stage saw %d distinct flows %d times, want each of %d once", distinct, total, records)
	}
	if early != 0 {
		t.Fatalf("the stage saw %d flows before the store acknowledged them", early)
	}
	if st := r.c.Stats(); st.Batches == 0 || st.StoreFailures < 4 || st.AfterStoreErrors != 0 {
		t.Fatalf("stats %+v: want batches committed, the 4 store failures counted, no stage errors", st)
	}

	// Committed: a new member of the group reads only what is new.
	more := produceScenario(t, brokers, topic, 1, 12)
	store2 := newSink()
	after2 := &afterStage{store: store2, seen: map[models.FlowID]int{}}
	r2 := startAfter(t, k, i, store2, after2)
	waitFor(t, "the new records", time.Minute, func() bool { d, _, _ := after2.counts(); return d >= more })
	r2.stop(t)
	if d, _, _ := after2.counts(); d != more || store2.distinct() != more {
		t.Fatalf("after restart the store got %d and the stage %d flows; only the %d new ones were uncommitted", store2.distinct(), d, more)
	}
}

// While the stage works on one batch, the store goes on with the next:
// ingest and detect overlap, and the store waiting on a busy stage is
// counted, never a drop.
func TestAfterStoreOverlapsTheStore(t *testing.T) {
	brokers := testenv.Kfake(t)
	topic := testenv.NewTopic(t, brokers, 1)
	records := produceScenario(t, brokers, topic, 4, 13)
	k, i := config(brokers, topic, topic+"-g")
	i.BatchSize = 1
	store := newSink()
	release := make(chan struct{})
	after := &afterStage{store: store, seen: map[models.FlowID]int{}}
	after.hold = func(n int) {
		if n == 1 {
			<-release
		}
	}
	r := startAfter(t, k, i, store, after)
	// The stage holds the first batch; the store must still take the
	// second, and then wait, counted, to hand it on.
	waitFor(t, "the store to take a second batch while the stage holds the first", time.Minute, func() bool {
		store.mu.Lock()
		defer store.mu.Unlock()
		return store.calls >= 2
	})
	waitFor(t, "the store's wait on the busy stage to be counted", time.Minute, func() bool {
		return r.c.Stats().AfterStoreWaits >= 1
	})
	if d, _, _ := after.counts(); d != 0 {
		t.Fatalf("the stage counted %d flows while held", d)
	}
	close(release)
	waitFor(t, "every flow after the stage", time.Minute, func() bool { d, _, _ := after.counts(); return d >= records })
	r.stop(t)
	if d, total, _ := after.counts(); d != records || total != records || store.distinct() != records {
		t.Fatalf("store %d, stage %d distinct (%d seen), want %d each once", store.distinct(), d, total, records)
	}
}
