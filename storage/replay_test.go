package storage

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/test/testenv"
)

// Flows read back for a replay are the flows stored, field for field, in
// event-time order.
func TestReadFlowsRoundTrip(t *testing.T) {
	store, _ := migratedStore(t)
	ctx := context.Background()
	start := testenv.Last(time.Monday, 9)
	in := testFlows(3000, start)
	if err := store.ConsumeFlows(ctx, in); err != nil {
		t.Fatal(err)
	}
	byID := map[models.FlowID]models.Flow{}
	for _, f := range in {
		byID[f.ID] = f
	}
	var got []models.Flow
	err := store.ReadFlows(ctx, start, start.Add(2*time.Minute), 20*time.Second, func(b []models.Flow) error {
		got = append(got, b...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(in) {
		t.Fatalf("read %d flows, stored %d", len(got), len(in))
	}
	for i, f := range got {
		if i > 0 && f.TimestampMs < got[i-1].TimestampMs {
			t.Fatalf("flow %d is older than the one before", i)
		}
		if want := byID[f.ID]; !reflect.DeepEqual(f, want) {
			t.Fatalf("flow read back differs:\n got %+v\nwant %+v", f, want)
		}
	}
}
