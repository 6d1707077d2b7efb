package storage

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/column"

	"github.com/meshguard/meshguard/models"
)

const benchBatch = 100_000

// BenchmarkClickHouseInsert inserts 100k-flow batches into the test
// server through ConsumeFlows: column building, the wire, and the server
// parsing, sorting and writing flows and both views. 18.16 runs an insert
// on one thread, so "parallel" (one stream per core, as ingest's partition
// consumers do) shows what the machine takes; "flows-only" drops the views
// to show their share, "without-tls-rollups" the edge rollups' views
// (migration 010) alone.
func BenchmarkClickHouseInsert(b *testing.B) {
	flows := testFlows(benchBatch, time.Now())
	b.Run("serial", func(b *testing.B) {
		store, _ := migratedStore(b)
		benchInsert(b, store, flows, false)
	})
	b.Run("parallel", func(b *testing.B) {
		store, _ := migratedStore(b)
		benchInsert(b, store, flows, true)
	})
	b.Run("without-tls-rollups", func(b *testing.B) {
		store, db := migratedStore(b)
		for _, view := range []string{"edge_tls_hour_mv", "edge_tls_minute_mv"} {
			if err := store.conn.Exec(context.Background(), "DROP TABLE "+db+"."+view); err != nil {
				b.Fatal(err)
			}
		}
		benchInsert(b, store, flows, false)
	})
	b.Run("flows-only", func(b *testing.B) {
		store, db := migratedStore(b)
		for _, view := range []string{"flows_by_source_mv", "edge_minute_mv", "edge_tls_hour_mv", "edge_tls_minute_mv"} {
			if err := store.conn.Exec(context.Background(), "DROP TABLE "+db+"."+view); err != nil {
				b.Fatal(err)
			}
		}
		benchInsert(b, store, flows, false)
	})
}

func benchInsert(b *testing.B, store *ClickHouse, flows []models.Flow, parallel bool) {
	ctx := context.Background()
	var batches atomic.Int64
	start := time.Now()
	if parallel {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := store.ConsumeFlows(ctx, flows); err != nil {
					b.Error(err)
					return
				}
				batches.Add(1)
			}
		})
	} else {
		for b.Loop() {
			if err := store.ConsumeFlows(ctx, flows); err != nil {
				b.Fatal(err)
			}
			batches.Add(1)
		}
	}
	b.ReportMetric(float64(batches.Load()*benchBatch)/time.Since(start).Seconds(), "flows/s")
}

// BenchmarkColumnBuild is the client's share without a server: turning
// 100k flows into columns and appending them, in blocks as ConsumeFlows
// does, to clickhouse-go columns of the flows table's types on 18.16.
func BenchmarkColumnBuild(b *testing.B) {
	flows := testFlows(benchBatch, time.Now())
	types := map[string]column.Type{
		"ts": "DateTime('UTC')", "ts_ms": "Int64", "flow_id": "FixedString(16)", "trace_id": "FixedString(16)",
		"destination_port": "UInt16", "response_code": "UInt16", "bytes_sent": "UInt64", "bytes_received": "UInt64",
		"duration_ms": "UInt32", "mtls": "UInt8", "count": "UInt32",
		"identity_resolved": "UInt8", "identity_conflict": "UInt8", "dry_run_allow": "UInt8",
	}
	cols := make([]column.Interface, len(flowColumnNames))
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		for i, name := range flowColumnNames {
			typ, ok := types[name]
			if !ok {
				typ = "String"
			}
			c, err := typ.Column(name, &column.ServerContext{})
			if err != nil {
				b.Fatal(err)
			}
			cols[i] = c
		}
		fc := flowColumnsPool.Get().(*flowColumns)
		fc.fill(flows)
		for off := 0; off < len(flows); off += insertBlockRows {
			for i, v := range fc.values(off, min(off+insertBlockRows, len(flows))) {
				if _, err := cols[i].Append(v); err != nil {
					b.Fatal(err)
				}
			}
			for _, c := range cols {
				c.Reset()
			}
		}
		fc.reset()
		flowColumnsPool.Put(fc)
	}
	b.ReportMetric(float64(b.N*benchBatch)/time.Since(start).Seconds(), "flows/s")
}
