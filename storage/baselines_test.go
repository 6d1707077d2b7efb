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
