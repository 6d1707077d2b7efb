package detect

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/storage"
)

// fixedClock keeps detected_at and early firing the same in every run.
var fixedClock = WithClock(func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) })

// handoffBatches is a partition's stream, one batch per window:
// training, then a lateral movement, a credential stuffing in the window
// before handAt (still open when the partition moves there), and a
// lateral movement after.
func handoffBatches() [][]models.Flow {
	m := newMini(11)
	var out [][]models.Flow
	for i := 0; i < trainWindows+40; i++ {
		fl := m.window(i)
		ws := m.start + int64(i)*m.win
		switch i {
		case trainWindows + 20, trainWindows + 35:
			fl = append(fl, lateralFlows(ws)...)
		case handAt - 1:
			fl = append(fl, stuffingFlows(400)(ws)...)
		}
		out = append(out, fl)
	}
	return out
}

const handAt = trainWindows + 31

func part(id int32, position string, handedOver bool) []consumer.Partition {
	return []consumer.Partition{{ID: id, Position: position, HandedOver: handedOver}}
}

// ids are the detections' ids with the end of their last window, their
// updates and whether they stand as raised early from an open window, the
// newest version of each (cs in the order they wrote).
func ids(cs ...*collector) []string {
	newest := map[string]models.Detection{}
	for _, c := range cs {
		for id, d := range c.got {
			if !d.WindowEnd.Before(newest[id].WindowEnd) { // the later owner's write wins, as in the table
				newest[id] = d
			}
		}
	}
	var out []string
	for id, d := range newest {
		open := strings.HasPrefix(d.Evidence.Summary, "window still open: ") // raised early, never confirmed
		out = append(out, fmt.Sprintf("%s@%s×%d open=%v", id, d.WindowEnd.Format(time.TimeOnly), d.Updates, open))
	}
	slices.Sort(out)
	return out
}

// A partition handed from one detector to another mid-stream raises the
// detections one detector reading it whole raises, ids included. The new
// owner resumes from the released baselines and watermark and either
// reads again from a committed offset behind the old owner (four batches
// back, as ingest's at-least-once redelivery does when catching up),
// recounting the windows left open and dropping as late what the old
// owner closed; or, when it starts exactly where the old owner stopped (a
// clean leave), takes the open windows with it. Taking them anywhere else
// would count records twice, and not taking them on a clean leave loses
// the attack in them; without the hand-off the new owner relearns, and
// the attack after it is missed.
func TestHandoffKeepsTheDetectionsOfOneOwner(t *testing.T) {
	ctx := context.Background()
	batches := handoffBatches()
	// The wall clock a second past each batch's window: early firing
	// scores every open window, as live.
	var wall time.Time
	clock := WithClock(func() time.Time { return wall })
	feed := func(d *Detector, i int) {
		wall = time.UnixMilli(newMini(0).start).Add(time.Duration(i+1)*10*time.Second + time.Second)
		d.ConsumeFlows(ctx, slices.Clone(batches[i]))
	}
	one := &collector{}
	d, _ := New(DefaultConfig(), one, nil, clock)
	for i := range batches {
		feed(d, i)
	}
	d.Flush(ctx)
	want := ids(one)
	if k := one.kinds(); k[models.LateralMovement] == 0 || k[models.CredentialStuffing] == 0 || d.Stats().Early == 0 {
		t.Fatalf("one detector raised %v (%d early): the comparison would prove little", k, d.Stats().Early)
	}

	stopped := "logs:" + strconv.Itoa(handAt)
	for _, c := range []struct {
		name           string
		handoff        bool
		from           int // the batch the new owner reads from
		startsAt       string
		equal          bool
		lateralMissing bool
	}{
		{"re-read from the committed offset", true, handAt - 4, "logs:" + strconv.Itoa(handAt-4), true, false},
		{"clean leave", true, handAt, stopped, true, false},
		{"clean leave, open windows left behind", true, handAt, "elsewhere", false, false},
		{"no hand-off", false, handAt - 4, "", false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			store := storage.NewMemory(1)
			opts := []Option{clock}
			if c.handoff {
				opts = append(opts, WithHandoff(store, time.Second))
			}
			ca, cb := &collector{}, &collector{}
			a, _ := New(DefaultConfig(), ca, nil, opts...)
			b, _ := New(DefaultConfig(), cb, nil, opts...)
			a.PartitionsAssigned(ctx, part(0, "", false))
			for i := range handAt {
				feed(a, i)
			}
			a.PartitionsRevoked(ctx, part(0, stopped, false))
			b.PartitionsAssigned(ctx, part(0, c.startsAt, true))
			restored := b.Stats().Edges
			for i := c.from; i < len(batches); i++ {
				feed(b, i)
			}
			b.Flush(ctx)
			got := ids(ca, cb)
			if equal := slices.Equal(got, want); equal != c.equal {
				t.Errorf("equal=%v, want %v: %d detections, one owner %d\nonly one owner: %v\nonly handed over: %v",
					equal, c.equal, len(got), len(want), minus(want, got), minus(got, want))
			}
			if missed := cb.kinds()[models.LateralMovement] == 0; missed != c.lateralMissing {
				t.Errorf("the new owner missed the lateral movement: %v, want %v", missed, c.lateralMissing)
			}
			if !c.handoff {
				return
			}
			if s := b.Stats(); s.HandedOver != 1 || s.HandoffTimeouts != 0 || restored != releasedEdges(t, store) || restored == 0 ||
				(c.from < handAt) != (s.Late > 0) {
				t.Errorf("new owner restored %d edges; stats %+v (want the re-read of closed windows late, and only that)", restored, s)
			}
		})
	}
}

// releasedEdges is the number of edges in partition 0's release.
func releasedEdges(t *testing.T, store storage.BaselineStore) int64 {
	t.Helper()
	all, _ := store.LatestBaselines(context.Background())
	in, ok, err := decodeShard(0, all[0].State)
	if err != nil || !ok || !all[0].Released {
		t.Fatalf("partition 0's release: ok=%v released=%v err=%v", ok, all[0].Released, err)
	}
	return int64(len(in.Edges))
}

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// The new owner waits for the previous owner's release when it comes
// after the assignment (the old owner still drains its batches), and
// stops waiting after the hand-off wait when none comes, resuming from
// the newest save. Its own earlier release does not count as the release
// of the owner in between.
func TestHandoffWaitsForTheRelease(t *testing.T) {
	ctx := context.Background()
	batches := handoffBatches()[:60]
	store := storage.NewMemory(1)
	a, _ := New(DefaultConfig(), nil, nil, fixedClock, WithHandoff(store, 10*time.Second))
	b, _ := New(DefaultConfig(), nil, nil, fixedClock, WithHandoff(store, 10*time.Second))
	a.PartitionsAssigned(ctx, part(0, "", false))
	for _, fl := range batches {
		a.ConsumeFlows(ctx, fl)
	}
	edges := a.Stats().Edges
	go func() {
		time.Sleep(300 * time.Millisecond)
		a.PartitionsRevoked(ctx, part(0, "", false))
	}()
	b.PartitionsAssigned(ctx, part(0, "", true))
	s := b.Stats()
	if s.HandedOver != 1 || s.HandoffTimeouts != 0 || s.Edges != edges || s.HandoffWaited < 200*time.Millisecond {
		t.Fatalf("after a release that came later: %+v, want 1 handed over with %d edges after a wait", s, edges)
	}

	// b gives the partition back and takes it again while the owner in
	// between (a, told it was handed over) released nothing.
	b.PartitionsRevoked(ctx, part(0, "", false))
	quick, _ := New(DefaultConfig(), nil, nil, fixedClock, WithHandoff(store, 300*time.Millisecond))
	quick.PartitionsAssigned(ctx, part(0, "", true)) // b's release: fresh to quick
	if s := quick.Stats(); s.HandedOver != 1 || s.HandoffTimeouts != 0 {
		t.Fatalf("another replica's release not taken at once: %+v", s)
	}
	b.handoff.wait = 300 * time.Millisecond
	b.PartitionsAssigned(ctx, part(0, "", true))
	if s := b.Stats(); s.HandedOver != 1 || s.HandoffTimeouts != 1 || s.Edges != edges {
		t.Fatalf("its own release taken for the next owner's: %+v", s)
	}
}
