package storage

import (
	"bytes"
	"context"
	"testing"
)

// Snapshots round-trip through the real server, the newest per partition
// wins, and binary state (gob) survives the String column intact.
func TestBaselinesRoundTrip(t *testing.T) {
	store, _ := migratedStore(t)
	ctx := context.Background()
	old := []byte{0, 1, 2, 255, 'o', 'l', 'd'}
	newer := bytes.Repeat([]byte{0xfe, 0x00, 'x'}, 100_000)
	for _, s := range []struct {
		p     int32
		state []byte
	}{{0, old}, {1, []byte("one")}, {0, newer}} {
		if err := store.SaveBaseline(ctx, s.p, s.state); err != nil {
			t.Fatal(err)
		}
	}
	got, err := store.LoadBaselines(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !bytes.Equal(got[0], newer) || string(got[1]) != "one" {
		t.Fatalf("loaded %d partitions; partition 0 is %d bytes (want %d), partition 1 %q", len(got), len(got[0]), len(newer), got[1])
	}
}

// A release is the newest snapshot until the next owner saves again: the
// flag the hand-off waits for travels with the row, and a periodic save
// after it clears it.
func TestBaselineReleaseIsNewestUntilTheNextSave(t *testing.T) {
	store, _ := migratedStore(t)
	ctx := context.Background()
	step := func(save func(context.Context, int32, []byte) error, p int32, state string, wantReleased bool) {
		t.Helper()
		if err := save(ctx, p, []byte(state)); err != nil {
			t.Fatal(err)
		}
		got, err := store.LatestBaselines(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if b := got[p]; string(b.State) != state || b.Released != wantReleased || b.SavedAt.IsZero() {
			t.Fatalf("partition %d after saving %q: %q released=%v saved_at=%v; want released=%v", p, state, b.State, b.Released, b.SavedAt, wantReleased)
		}
	}
	step(store.SaveBaseline, 3, "periodic", false)
	step(store.ReleaseBaseline, 3, "released", true)
	step(store.SaveBaseline, 3, "next owner", false)
	step(store.ReleaseBaseline, 4, "only a release", true)
}
