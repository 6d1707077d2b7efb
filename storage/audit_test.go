package storage

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/meshguard/meshguard/test/testenv"
)

// testAuditSummary: thirty identical skips are one row; the filters are
// parameters (a quote in one matches nothing, breaks nothing).
func testAuditSummary(t *testing.T, s dashboardStore) {
	ctx := context.Background()
	t0 := testenv.Recent()
	skipped := ActionRow{ActionID: "a-1", DetectionID: "d-1", Kind: "block_edge", Mode: "alert", State: "skipped",
		Actor: "meshguard", Reason: "protected workload; <b>scan</b>", Target: "shop/cart"}
	var rows []ActionRow
	for i := range 30 { // every 10 s for five minutes
		r := skipped
		r.At = t0.Add(time.Duration(i) * 10 * time.Second)
		rows = append(rows, r)
	}
	for i := range 3 { // extended at each update, the reason quoting the newest evidence
		rows = append(rows, ActionRow{ActionID: "a-3", At: t0.Add(time.Duration(i) * time.Minute), DetectionID: "d-3", Kind: "block_edge",
			Mode: "dry-run", State: "extended", Actor: "meshguard", Reason: fmt.Sprintf("ongoing; %d plaintext requests", 10+i),
			Target: "shop/ledger", ExpiresAt: t0.Add(time.Duration(60+i) * time.Minute)})
	}
	rows = append(rows,
		ActionRow{ActionID: "a-2", At: t0.Add(time.Minute), DetectionID: "d-2", Kind: "block_edge", Mode: "dry-run", State: "applied",
			Actor: "meshguard", Target: "shop/pay", ExpiresAt: t0.Add(time.Hour)},
		ActionRow{ActionID: "a-2", At: t0.Add(6 * time.Minute), DetectionID: "d-2", Kind: "block_edge", Mode: "enforce", State: "promoted",
			Actor: "otto", Reason: "api approve by otto", Target: "shop/pay", ExpiresAt: t0.Add(time.Hour)},
	)
	for _, r := range rows {
		if err := s.WriteAction(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.AuditSummary(ctx, AuditFilter{Since: t0})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("AuditSummary: %d groups, want 4: %+v", len(got), got)
	}
	if g := got[0]; g.Row.State != "promoted" || g.Count != 1 || g.Row.Actor != "otto" || !g.Row.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("newest group %+v; want otto's promotion", g)
	}
	if g := got[2]; g.Row.ActionID != "a-3" || g.Count != 3 || g.Row.Reason != "ongoing; 12 plaintext requests" ||
		!g.Row.ExpiresAt.Equal(t0.Add(62*time.Minute)) || !g.First.Equal(t0) || !g.Last.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("the extensions: %+v; want one group of 3 with the newest reason and expiry", g)
	}
	if g := got[1]; g.Row.ActionID != "a-1" || g.Count != 30 || !g.First.Equal(t0) || !g.Last.Equal(t0.Add(290*time.Second)) ||
		g.Row.Reason != skipped.Reason || !g.Row.At.Equal(g.Last) {
		t.Errorf("the repeated skip: %+v; want one group of 30 from t0 to t0+4m50s", g)
	}
	for _, c := range []struct {
		f    AuditFilter
		want int
	}{
		{AuditFilter{Actor: "otto"}, 1},
		{AuditFilter{Action: "skipped"}, 1},
		{AuditFilter{Action: "a-2"}, 2},
		{AuditFilter{Action: "block_edge", Actor: "meshguard"}, 3},
		{AuditFilter{Actor: "' OR 1=1 --"}, 0},
		{AuditFilter{Since: t0.Add(5 * time.Minute)}, 1},
		{AuditFilter{Limit: 2}, 2},
	} {
		got, err := s.AuditSummary(ctx, c.f)
		if err != nil || len(got) != c.want {
			t.Errorf("AuditSummary(%+v) = %d groups, %v; want %d", c.f, len(got), err, c.want)
		}
	}
}
