package storage

import (
	"context"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/models"
)

func sampleDetection() models.Detection {
	t0 := time.Date(2026, 11, 16, 9, 0, 0, 0, time.UTC)
	return models.Detection{
		ID: "d1", DetectedAt: t0, UpdatedAt: t0.Add(time.Minute), WindowStart: t0, WindowEnd: t0.Add(20 * time.Second),
		Kind: models.MTLSDowngrade, Severity: models.SeverityHigh, Score: 10,
		Source:      models.Party{IP: "10.1.2.3", Namespace: ""},
		Destination: models.Party{Workload: "ledger-v1", Namespace: "billing", Service: "ledger.billing.svc.cluster.local"},
		Evidence: models.Evidence{Summary: "plaintext <!channel>", Features: []models.FeatureEvidence{{Feature: "plaintext", Observed: 3, Score: 10, Model: "rule"}},
			TopPaths: []models.Count{{Value: "/x", Count: 3}}},
		Updates: 2, Partition: 3,
	}
}

func TestRowRoundTrip(t *testing.T) {
	d := sampleDetection()
	r, err := DetectionToRow(d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DetectionFromRow(r)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, d) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, d)
	}
}

// The feed delivers what any replica wrote, once per version, and a
// follower (inactive) keeps its place without delivering.
func TestFeedDeliversStoredDetections(t *testing.T) {
	store := NewMemory(1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := DetectionSink(store).HandleDetection(ctx, sampleDetection()); err != nil {
		t.Fatal(err)
	}
	got := make(chan models.Detection, 10)
	f := &Feed{Store: store, Every: 10 * time.Millisecond, Log: discard(),
		Sink: consumer.DetectionsFunc(func(_ context.Context, d models.Detection) error { got <- d; return nil })}
	go f.Run(ctx, time.Minute)
	select {
	case d := <-got:
		if d.ID != "d1" || d.Source.IP != "10.1.2.3" {
			t.Fatalf("delivered %+v", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing delivered")
	}
	select {
	case d := <-got:
		t.Fatalf("delivered twice: %+v", d)
	case <-time.After(100 * time.Millisecond):
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
