package storage

import (
	"context"
	"testing"
	"time"

	"github.com/meshguard/meshguard/test/testenv"
)

func TestDetectionsSince(t *testing.T) {
	ch, _ := migratedStore(t)
	ctx := context.Background()
	at := testenv.Last(time.Monday, 9)
	for _, s := range []feedStore{ch, NewMemory(1)} {
		for i, id := range []string{"a", "b", "a"} {
			if err := s.WriteDetection(ctx, DetectionRow{DetectionID: id, Version: uint64(100 + i), DetectedAt: at, Kind: "scan", Severity: "high", Evidence: `{"n":` + string(rune('0'+i)) + `}`}); err != nil {
				t.Fatal(err)
			}
		}
		all, err := s.DetectionsSince(ctx, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 2 || all[0].DetectionID != "b" || all[1].DetectionID != "a" || all[1].Evidence != `{"n":2}` {
			t.Fatalf("%T: since 0: %+v", s, all)
		}
		later, _ := s.DetectionsSince(ctx, 101, 10)
		if len(later) != 1 || later[0].Version != 102 {
			t.Fatalf("%T: since 101: %+v", s, later)
		}
	}
}

// feedStore is what the feed test needs of both stores.
type feedStore interface {
	DetectionWriter
	DetectionFeed
}
