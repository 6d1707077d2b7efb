package storage

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/test/testenv"
)

// BenchmarkPostureEdges reads the posture of a mesh of 10k workloads from
// a private modern server, as the query over flows the rollups replaced
// ("flows", referencePostureEdges) and from the rollups ("rollup"), on the
// same stored flows: 1M flows, one per edge, in one hour ("1M-edges", the
// rollups' worst case: as many rows as flows), and 1M flows on 100k edges,
// ten each, in one hour ("100k-edges"). A tenth of the flows plaintext, a
// fifth unknown. Besides ns/op it reports what the server logged of each
// read (system.query_log): rows read and CPU.
func BenchmarkPostureEdges(b *testing.B) {
	const workloads = 10_000
	// A server of its own: a million-row insert into the shared one, on a
	// loaded machine, has crashed it for everyone.
	own := testenv.OwnClickHouse(b)
	for _, shape := range []struct {
		name       string
		fan, times int // callees per workload, flows per edge
	}{{"1M-edges", 100, 1}, {"100k-edges", 10, 10}} {
		store := openBenchStore(b, own, "posture_"+fmt.Sprint(shape.fan))
		ctx := context.Background()
		start := testenv.Recent()
		base := models.NewFlowIDBase("bench", 0, start.UnixNano())
		batch := make([]models.Flow, 0, benchBatch)
		began := time.Now()
		edges := workloads * shape.fan
		for i := range edges * shape.times {
			e := i % edges
			src, dst := e/shape.fan, (e/shape.fan+1+e%shape.fan*7)%workloads
			f := models.Flow{ID: base.ID(i), TimestampMs: start.UnixMilli() + int64(i%3_600_000), Reporter: models.ReporterDestination,
				Source:      models.Source{Workload: fmt.Sprintf("wl-%05d", src), Namespace: fmt.Sprintf("ns-%03d", src/100), IP: netip.AddrFrom4([4]byte{10, 1, byte(src >> 8), byte(src)})},
				Destination: models.Destination{Workload: fmt.Sprintf("wl-%05d", dst), Namespace: fmt.Sprintf("ns-%03d", dst/100), Port: 8080},
				TLS:         models.TLSMutual, Count: 1, RequestID: fmt.Sprintf("req-%d", i)}
			switch {
			case e%10 == 0:
				f.TLS = models.TLSPlaintext
			case e%5 == 0:
				f.TLS = models.TLSUnknown
			default:
				f.Source.Principal = "cluster.local/ns/" + f.Source.Namespace + "/sa/" + f.Source.Workload
			}
			batch = append(batch, f)
			if len(batch) == cap(batch) {
				if err := store.ConsumeFlows(ctx, batch); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		if err := store.ConsumeFlows(ctx, batch); err != nil {
			b.Fatal(err)
		}
		b.Logf("%s: stored %d flows in %v", shape.name, edges*shape.times, time.Since(began).Round(time.Millisecond))
		from, to := start.Add(-time.Minute), start.Add(2*time.Hour)
		for _, read := range []struct {
			name  string
			since int64
			get   func(context.Context) ([]PostureEdge, error)
		}{
			{"flows", math.MaxInt64, func(ctx context.Context) ([]PostureEdge, error) { return referencePostureEdges(ctx, store, from, to) }},
			{"rollup", 0, func(ctx context.Context) ([]PostureEdge, error) { return store.PostureEdges(ctx, from, to) }},
		} {
			b.Run(shape.name+"/"+read.name, func(b *testing.B) {
				store.setRollupSince(read.since)
				ctx, comment := loggedContext(b)
				for b.Loop() {
					got, err := read.get(ctx)
					if err != nil {
						b.Fatal(err)
					}
					if len(got) != edges {
						b.Fatalf("%d edges, want %d", len(got), edges)
					}
				}
				reportServerCost(b, store, comment)
			})
		}
	}
}

// openBenchStore opens and migrates database db on own.
func openBenchStore(b *testing.B, own *testenv.OwnServer, db string) *ClickHouse {
	b.Helper()
	cfg := DefaultClickHouseConfig()
	cfg.Addr, cfg.Database = []string{own.Get("MESHGUARD_TEST_CLICKHOUSE_ADDR")}, db
	cfg.QueryTimeout = 20 * time.Minute
	store, err := NewClickHouse(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	if err := store.Migrate(context.Background()); err != nil {
		b.Fatal(err)
	}
	return store
}

// loggedContext tags the queries of b with a log_comment of its own.
func loggedContext(b *testing.B) (context.Context, string) {
	comment := fmt.Sprintf("%s-%d", b.Name(), time.Now().UnixNano())
	return clickhouse.Context(context.Background(), clickhouse.WithSettings(clickhouse.Settings{"log_comment": comment})), comment
}

// reportServerCost reports the server's own account of the queries tagged
// comment, per b.N: rows read and CPU (user + system). On a shared
// machine CPU says more than the wall clock, which measures the
// neighbours too. Nothing is reported when the server keeps no query log.
func reportServerCost(b *testing.B, store *ClickHouse, comment string) {
	ctx := context.Background()
	if err := store.conn.Exec(ctx, "SYSTEM FLUSH LOGS"); err != nil {
		b.Logf("no query log: %v", err)
		return
	}
	var n, rows, cpuUs, ms uint64
	err := store.conn.QueryRow(ctx, `SELECT count(), sum(read_rows),
    sum(ProfileEvents['UserTimeMicroseconds'] + ProfileEvents['SystemTimeMicroseconds']), sum(query_duration_ms)
FROM system.query_log WHERE type = 'QueryFinish' AND log_comment = ? AND query NOT LIKE '%system.query_log%'`, comment).Scan(&n, &rows, &cpuUs, &ms)
	if err != nil || n == 0 {
		b.Logf("no query log rows (%d): %v", n, err)
		return
	}
	per := float64(b.N)
	b.ReportMetric(float64(rows)/per, "rows-read/op")
	b.ReportMetric(float64(cpuUs)/1000/per, "server-cpu-ms/op")
	b.ReportMetric(float64(ms)/per, "server-ms/op")
	b.Logf("%d queries logged for %d reads", n, b.N)
}
