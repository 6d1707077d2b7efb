package storage

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/test/testenv"
)

// BenchmarkGraphReads: the dashboard graph's two reads (GraphEdges and
// ServiceWorkloads, as GET /api/v1/graph makes them) over the last 15
// minutes and the last hour of a 100-workload mesh with 500 edges, each
// logged by both sides, 200k and 2M flows in the hour before a time that
// is not on a minute (about 3 and 33 flows per edge, side and minute);
// from the queries over flows the rollups replaced ("flows") and from the
// rollups ("rollup"), on the same data, a private server.
func BenchmarkGraphReads(b *testing.B) {
	const workloads, edges = 100, 500
	own := testenv.OwnClickHouse(b)
	for _, flows := range []int{200_000, 2_000_000} {
		benchGraphReads(b, own, workloads, edges, flows)
	}
}

func benchGraphReads(b *testing.B, own *testenv.OwnServer, workloads, edges, flows int) {
	store := openBenchStore(b, own, fmt.Sprintf("graph_bench_%d", flows))
	ctx := context.Background()
	end := testenv.Recent().Add(37*time.Minute + 13*time.Second)
	base := models.NewFlowIDBase("bench", 0, end.UnixNano())
	batch := make([]models.Flow, 0, benchBatch)
	hosts := map[string]bool{}
	began := time.Now()
	for i := range flows {
		e := i % edges
		src, dst := e/5, (e/5+1+e%5*13)%workloads
		host := fmt.Sprintf("wl-%03d.ns-%d.svc.cluster.local", dst, dst/13)
		f := models.Flow{ID: base.ID(i), TimestampMs: end.Add(-time.Hour).UnixMilli() + int64(i)*3_600_000/int64(flows),
			Reporter: models.Reporter(1 + i/edges%2), Count: 1, ResponseCode: []uint16{200, 200, 200, 404, 503}[i%5],
			Source:      models.Source{Workload: fmt.Sprintf("wl-%03d", src), Namespace: fmt.Sprintf("ns-%d", src/13), IP: netip.AddrFrom4([4]byte{10, 2, 0, byte(src)})},
			Destination: models.Destination{Workload: fmt.Sprintf("wl-%03d", dst), Namespace: fmt.Sprintf("ns-%d", dst/13), Service: host, Port: 8080},
			TLS:         models.TLS(e % 3)}
		hosts[host] = true
		if f.Reporter == models.ReporterSource {
			f.Destination.Workload, f.Destination.Namespace = "", "" // the host only, as a client's proxy logs it
		}
		batch = append(batch, f)
		if len(batch) == cap(batch) || i == flows-1 {
			if err := store.ConsumeFlows(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	b.Logf("stored %d flows in %v", flows, time.Since(began).Round(time.Millisecond))
	type reads struct {
		graph func(context.Context, time.Time) ([]GraphEdge, error)
		svcs  func(context.Context, time.Time) ([]ServiceWorkload, error)
	}
	for _, since := range []time.Duration{15 * time.Minute, time.Hour} {
		for _, read := range []struct {
			name  string
			since int64
			reads
		}{
			{"flows", math.MaxInt64, reads{
				func(ctx context.Context, from time.Time) ([]GraphEdge, error) {
					return referenceGraph(ctx, store, from, end)
				},
				func(ctx context.Context, from time.Time) ([]ServiceWorkload, error) {
					return referenceServices(ctx, store, from, end)
				}}},
			{"rollup", 0, reads{
				func(ctx context.Context, from time.Time) ([]GraphEdge, error) {
					return store.GraphEdges(ctx, from, end)
				},
				func(ctx context.Context, from time.Time) ([]ServiceWorkload, error) {
					return store.ServiceWorkloads(ctx, from, end)
				}}},
		} {
			b.Run(fmt.Sprintf("%dk-flows/since=%v/%s", flows/1000, since, read.name), func(b *testing.B) {
				store.setRollupSince(read.since)
				measureServerCPU(b, store, func() {
					for b.Loop() {
						g, err := read.graph(ctx, end.Add(-since))
						if err != nil {
							b.Fatal(err)
						}
						s, err := read.svcs(ctx, end.Add(-since))
						if err != nil {
							b.Fatal(err)
						}
						if len(g) != 2*edges || len(s) != len(hosts) {
							b.Fatalf("%d graph rows and %d Service hosts, want %d and %d", len(g), len(s), 2*edges, len(hosts))
						}
					}
				})
			})
		}
	}
}
