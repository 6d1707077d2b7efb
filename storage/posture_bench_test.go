package storage

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/test/testenv"
)

// BenchmarkPostureEdges reads the posture of a mesh of 10k workloads and
// 1M edges (one flow each, a tenth plaintext, a fifth unknown) from the
// a private modern server: the GROUP BY over flows and the fold to one side per edge.
func BenchmarkPostureEdges(b *testing.B) {
	const workloads, fan = 10_000, 100
	// A server of its own: a million-row insert into the shared one, on a
	// loaded machine, has crashed it for everyone.
	own := testenv.OwnClickHouse(b)
	cfg := DefaultClickHouseConfig()
	cfg.Addr, cfg.Database = []string{own.Get("MESHGUARD_TEST_CLICKHOUSE_ADDR")}, "posture_bench"
	cfg.QueryTimeout = 10 * time.Minute
	store, err := NewClickHouse(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	if err := store.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	start := testenv.Recent()
	base := models.NewFlowIDBase("bench", 0, start.UnixNano())
	batch := make([]models.Flow, 0, benchBatch)
	began := time.Now()
	for i := range workloads * fan {
		src, dst := i/fan, (i/fan+1+i%fan*7)%workloads
		f := models.Flow{ID: base.ID(i), TimestampMs: start.UnixMilli() + int64(i%3_600_000), Reporter: models.ReporterDestination,
			Source:      models.Source{Workload: fmt.Sprintf("wl-%05d", src), Namespace: fmt.Sprintf("ns-%03d", src/100), IP: netip.AddrFrom4([4]byte{10, 1, byte(src >> 8), byte(src)})},
			Destination: models.Destination{Workload: fmt.Sprintf("wl-%05d", dst), Namespace: fmt.Sprintf("ns-%03d", dst/100), Port: 8080},
			TLS:         models.TLSMutual, Count: 1, RequestID: fmt.Sprintf("req-%d", i)}
		switch {
		case i%10 == 0:
			f.TLS = models.TLSPlaintext
		case i%5 == 0:
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
	b.Logf("stored %d flows in %v", workloads*fan, time.Since(began).Round(time.Millisecond))
	b.ResetTimer()
	for b.Loop() {
		edges, err := store.PostureEdges(ctx, start.Add(-time.Minute), start.Add(2*time.Hour))
		if err != nil {
			b.Fatal(err)
		}
		if len(edges) != workloads*fan {
			b.Fatalf("%d edges, want %d", len(edges), workloads*fan)
		}
	}
}
