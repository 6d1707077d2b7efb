package storage

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/models"
)

var (
	_ consumer.Flows  = (*Memory)(nil)
	_ DetectionWriter = (*Memory)(nil)
	_ ActionWriter    = (*Memory)(nil)
	_ consumer.Flows  = (*ClickHouse)(nil)
	_ DetectionWriter = (*ClickHouse)(nil)
	_ ActionWriter    = (*ClickHouse)(nil)
)

func TestMemoryKeepsNewestFlows(t *testing.T) {
	ctx := context.Background()
	flows := testFlows(25, time.Now())
	for _, tt := range []struct {
		name     string
		capacity int
		batches  []int // batch sizes, consumed in order from flows
		keep     int   // the newest keep flows stay
	}{
		{"below capacity", 30, []int{10, 15}, 25},
		{"exactly full", 25, []int{25}, 25},
		{"wraps", 10, []int{4, 4, 4, 4, 4, 5}, 10},
		{"batch bigger than capacity", 7, []int{3, 20, 2}, 7},
		{"capacity 0 means 1", 0, []int{25}, 1},
	} {
		m := NewMemory(tt.capacity)
		off := 0
		for _, n := range tt.batches {
			if err := m.ConsumeFlows(ctx, flows[off:off+n]); err != nil {
				t.Fatal(err)
			}
			off += n
		}
		got := m.Flows()
		if len(got) != tt.keep || m.Len() != tt.keep || m.Dropped() != uint64(25-tt.keep) {
			t.Fatalf("%s: kept %d (Len %d), dropped %d; want %d and %d", tt.name, len(got), m.Len(), m.Dropped(), tt.keep, 25-tt.keep)
		}
		for i, f := range got {
			if f.ID != flows[25-tt.keep+i].ID {
				t.Fatalf("%s: flow %d is not the %dth newest, oldest first", tt.name, i, tt.keep-i)
			}
		}
	}
}

func TestMemoryQueries(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(1000)
	flows := testFlows(100, time.Now())
	// A redelivered batch: same ids, counted once by DistinctFlowIDs.
	for range 2 {
		if err := m.ConsumeFlows(ctx, flows); err != nil {
			t.Fatal(err)
		}
	}
	if m.Len() != 200 || m.DistinctFlowIDs() != 100 {
		t.Errorf("Len %d, DistinctFlowIDs %d; want 200 and 100", m.Len(), m.DistinctFlowIDs())
	}
	want := map[models.Edge]EdgeCounts{}
	for range 2 {
		for i := range flows {
			c := want[flows[i].Edge()]
			c.Add(&flows[i])
			want[flows[i].Edge()] = c
		}
	}
	got := m.EdgeTotals()
	if len(got) != len(want) {
		t.Fatalf("%d edges, want %d", len(got), len(want))
	}
	for e, c := range want {
		if got[e] != c {
			t.Errorf("%v: %+v, want %+v", e, got[e], c)
		}
	}
	// The caller reuses its slice after ConsumeFlows returned.
	flows[0].Path = "/changed"
	if m.Flows()[0].Path == "/changed" {
		t.Error("Memory kept the caller's slice")
	}
}

func TestMemoryDetectionsAndActions(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(1)
	for _, d := range []DetectionRow{
		{DetectionID: "d", Version: 2, Severity: "high"},
		{DetectionID: "d", Version: 1, Severity: "stale"},
	} {
		if err := m.WriteDetection(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if d, ok, _ := m.Detection(ctx, "d"); !ok || d.Severity != "high" || d.Evidence != "{}" {
		t.Errorf("Detection = %+v, %v; want version 2 with evidence {}", d, ok)
	}
	if _, ok, _ := m.Detection(ctx, "x"); ok {
		t.Error("unknown detection found")
	}
	if err := m.WriteDetection(ctx, DetectionRow{DetectionID: "e", Evidence: "nope"}); !consumer.IsPermanent(err) {
		t.Errorf("invalid evidence: %v, want permanent", err)
	}
	if err := m.WriteAction(ctx, ActionRow{}); !consumer.IsPermanent(err) {
		t.Errorf("action without id: %v, want permanent", err)
	}
	if err := m.WriteAction(ctx, ActionRow{ActionID: "a"}); err != nil || len(m.Actions()) != 1 {
		t.Errorf("WriteAction: %v, %d actions", err, len(m.Actions()))
	}
}

func TestMemoryConcurrent(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(500)
	flows := testFlows(50, time.Now())
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				_ = m.ConsumeFlows(ctx, flows)
				_ = m.EdgeTotals()
				_ = m.WriteDetection(ctx, DetectionRow{DetectionID: "d", Version: uint64(g + 1)})
			}
		}()
	}
	wg.Wait()
	if m.Len() != 500 || m.Dropped() != 8*20*50-500 {
		t.Errorf("Len %d, Dropped %d", m.Len(), m.Dropped())
	}
	if d, _, _ := m.Detection(ctx, "d"); d.Version != 8 {
		t.Errorf("detection version %d, want the highest, 8", d.Version)
	}
}
