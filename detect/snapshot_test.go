package detect

import (
	"context"
	"testing"
	"time"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/storage"
)

func lateralAttack(ws int64) []models.Flow {
	return []models.Flow{flow(ws+5, "shop/cart", "shop/catalog", "/products", 200)}
}

// A restarted detector that restores its snapshot still knows the
// profiles: the attack right after the restart is caught; a detector that
// starts empty cannot know (no source has a profile yet).
func TestRestartRestoresBaselines(t *testing.T) {
	ctx := context.Background()
	m := newMini(5)
	a, _ := New(DefaultConfig(), nil, nil)
	for i := 0; i < trainWindows; i++ {
		a.ConsumeFlows(ctx, m.window(i))
	}
	store := storage.NewMemory(1)
	if err := a.Save(ctx, store); err != nil {
		t.Fatal(err)
	}
	for _, restore := range []bool{true, false} {
		c := &collector{}
		b, _ := New(DefaultConfig(), c, nil)
		if restore {
			n, err := b.Restore(ctx, store)
			if err != nil || int64(n) != a.Stats().Edges {
				t.Fatalf("restored %d edges (err %v), saved %d", n, err, a.Stats().Edges)
			}
		}
		m2 := *m
		for i := trainWindows; i < trainWindows+5; i++ {
			fl := m2.window(i)
			if i == trainWindows+2 {
				fl = append(fl, lateralAttack(m.start+int64(i)*m.win)...)
			}
			b.ConsumeFlows(ctx, fl)
		}
		b.Flush(ctx)
		if got := c.kinds()[models.LateralMovement]; (got == 1) != restore {
			t.Errorf("restore=%v: %d lateral_movement detections (%v)", restore, got, c.kinds())
		}
	}
}

// Warm start from edge_minute rows: a detector with no saved state learns
// the profiles from history and catches lateral movement at once.
func TestWarmStartFromEdgeMinutes(t *testing.T) {
	ctx := context.Background()
	m := newMini(6)
	// Two hours of history, as edge_minute would hold it (one reporter).
	var rows []storage.EdgeMinute
	byMinute := map[[2]string]map[int64]uint64{}
	for i := 0; i < 720; i++ {
		for _, f := range m.window(i) {
			if f.Reporter != models.ReporterSource {
				continue
			}
			k := [2]string{f.Source.Namespace + "/" + f.Source.Workload, f.Destination.Namespace + "/" + f.Destination.Workload}
			if byMinute[k] == nil {
				byMinute[k] = map[int64]uint64{}
			}
			byMinute[k][f.TimestampMs-f.TimestampMs%60_000]++
		}
	}
	for k, mins := range byMinute {
		sns, sw := split(k[0])
		dns, dw := split(k[1])
		for min, n := range mins {
			rows = append(rows, storage.EdgeMinute{Minute: time.UnixMilli(min).UTC(), Reporter: "source",
				SourceWorkload: sw, SourceNamespace: sns, SourcePrincipal: "cluster.local/ns/" + sns + "/sa/" + sw,
				DestinationWorkload: dw, DestinationNamespace: dns,
				EdgeCounts: storage.EdgeCounts{Requests: n, BytesSent: 2000 * n, BytesReceived: 300 * n}})
		}
	}
	c := &collector{}
	d, _ := New(DefaultConfig(), c, nil)
	if n := d.WarmStart(rows); n != len(byMinute) {
		t.Fatalf("warm-started %d edges, history has %d", n, len(byMinute))
	}
	for i := 720; i < 726; i++ {
		fl := m.window(i)
		if i == 722 {
			fl = append(fl, lateralAttack(m.start+int64(i)*m.win)...)
		}
		d.ConsumeFlows(ctx, fl)
	}
	d.Flush(ctx)
	if k := c.kinds(); k[models.LateralMovement] != 1 || len(k) != 1 {
		t.Fatalf("got %v, want exactly one lateral_movement", k)
	}
}

// A snapshot saved by a detector whose watermark a 2098 flow had moved
// must not blind the partition after the restart.
func TestRestoredFutureWatermarkStartsOver(t *testing.T) {
	ctx := context.Background()
	wall := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	a, _ := New(DefaultConfig(), nil, nil, WithClock(func() time.Time { return wall }))
	a.shard(0).maxTs = time.Date(2098, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	a.shard(0).closedTo = a.shard(0).maxTs
	store := storage.NewMemory(1)
	if err := a.Save(ctx, store); err != nil {
		t.Fatal(err)
	}
	b, _ := New(DefaultConfig(), nil, nil, WithClock(func() time.Time { return wall }))
	if _, err := b.Restore(ctx, store); err != nil {
		t.Fatal(err)
	}
	b.ConsumeFlows(ctx, []models.Flow{flow(wall.Add(-time.Minute).UnixMilli(), "shop/cart", "data/db", "/q", 200)})
	if st := b.Stats(); st.Late != 0 || st.Flows != 1 {
		t.Fatalf("stats %+v: a real flow after restoring a 2098 watermark is late", st)
	}
}

// A run of surprising windows whose peak is not learned yet survives a
// snapshot: a hand-off or restart in the middle of a batch job's burst
// must still learn that burst as the edge's peak when the run ends.
func TestSnapshotKeepsAnUnlearnedRun(t *testing.T) {
	a, _ := New(DefaultConfig(), nil, nil)
	e := models.Edge{Source: models.EndpointID{Namespace: "shop", Name: "search-indexer"}, Destination: models.EndpointID{Namespace: "shop", Name: "catalog"}}
	a.shard(0).edges[e] = &edgeState{firstMs: 1, lastMs: 2, peak: 10, runPeak: 42, runWindows: 3}
	b, _ := New(DefaultConfig(), nil, nil)
	b.shard(0).restore(a.shard(0).snapshot())
	got := b.shard(0).edges[e]
	if got == nil || got.runPeak != 42 || got.runWindows != 3 || got.peak != 10 {
		t.Fatalf("restored %+v, want the run (peak 42 over 3 windows) and the learned peak 10", got)
	}
}
