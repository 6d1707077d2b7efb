package storage

import (
	"context"
	"testing"
	"time"

	"github.com/meshguard/meshguard/test/testenv"
)

func TestFlowColumns(t *testing.T) {
	flows := testFlows(5, time.Unix(0, 0))
	flows[1].TimestampMs = -1 // before 1970: floors to the second before
	flows[2].TimestampMs = 1999
	var c flowColumns
	c.fill(flows)
	if vals := c.values(0, 5); len(vals) != len(flowColumnNames) {
		t.Fatalf("%d values for %d columns", len(vals), len(flowColumnNames))
	}
	if c.ts[1] != -1 || c.ts[2] != 1 || c.tsMs[2] != 1999 {
		t.Errorf("ts %v ts_ms %v", c.ts, c.tsMs)
	}
	if string(c.flowID[3]) != string(flows[3].ID[:]) || string(c.traceID[3]) != string(flows[3].TraceID[:]) {
		t.Error("ids not copied")
	}
	if c.srcIP[4] != flows[4].Source.IP.String() || c.reporter[0] != flows[0].Reporter.String() || c.mtls[0] != 0 || c.mtls[1] != 1 {
		t.Errorf("ip %q reporter %q mtls %v", c.srcIP[4], c.reporter[0], c.mtls)
	}
	if part := c.values(2, 4); len(part[0].([]int64)) != 2 || part[7].([]string)[0] != c.srcIP[2] {
		t.Error("values(2, 4) is not rows 2 and 3")
	}
	// A smaller batch reuses the slices; reset lets go of the strings.
	c.fill(flows[:2])
	if len(c.srcWL) != 2 || cap(c.srcWL) < 5 {
		t.Errorf("refill: len %d cap %d", len(c.srcWL), cap(c.srcWL))
	}
	c.reset()
	if c.srcWL[0] != "" || c.path[1] != "" {
		t.Error("reset kept strings of the caller's flows")
	}
}

func TestConsumeFlowsManyBlocksOnePart(t *testing.T) {
	store, db := migratedStore(t)
	defer func(n int) { insertBlockRows = n }(insertBlockRows)
	insertBlockRows = 7
	ctx := context.Background()
	if err := store.ConsumeFlows(ctx, testFlows(100, testenv.Recent())); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"flows", "flows_by_source", "edge_minute"} {
		var parts, rows uint64
		if err := store.conn.QueryRow(ctx, "SELECT count(), sum(rows) FROM system.parts WHERE database = ? AND table = ? AND active", db, table).Scan(&parts, &rows); err != nil {
			t.Fatal(err)
		}
		if parts != 1 {
			t.Errorf("%s: 15 blocks became %d parts, want the server to squash them into 1", table, parts)
		}
	}
	if got := readFlows(t, store); len(got) != 100 {
		t.Errorf("%d flows stored, want 100", len(got))
	}
}
