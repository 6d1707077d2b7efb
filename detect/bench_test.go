package detect

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/meshguard/meshguard/models"
)

// benchFlows builds n flows spread over edges distinct edges, in one
// window, so that the benchmark measures feature extraction (and the close
// that scores the window) per flow.
func benchFlows(n, edges int, ts int64) []models.Flow {
	srcs := make([]string, 0, 64)
	for i := 0; i < 64; i++ {
		srcs = append(srcs, fmt.Sprintf("ns%d/app%d", i%8, i))
	}
	dsts := make([]string, 0, edges/64+1)
	for i := 0; i <= edges/64; i++ {
		dsts = append(dsts, fmt.Sprintf("ns%d/svc%d", i%8, i))
	}
	out := make([]models.Flow, n)
	for i := range out {
		e := i % edges
		out[i] = flow(ts+int64(i%10_000), srcs[e%64], dsts[e/64], "/api/{id}", 200)
	}
	return out
}

// BenchmarkConsumeFlows: flows per second through windowing, feature
// extraction and scoring, one core. 100k flows over 1,000 edges per
// window, windows closing as event time advances.
func BenchmarkConsumeFlows(b *testing.B) {
	d, _ := New(DefaultConfig(), nil, nil)
	ctx := context.Background()
	const per = 100_000
	base := int64(1_700_000_000_000)
	batches := make([][]models.Flow, 4)
	for i := range batches {
		batches[i] = benchFlows(per, 1000, base+int64(i)*10_000)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		batch := batches[i%len(batches)]
		shift := int64(i) * 10_000
		for j := range batch {
			batch[j].TimestampMs = base + shift + int64(j%10_000)
		}
		d.ConsumeFlows(ctx, batch)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)*per/b.Elapsed().Seconds(), "flows/s")
}

// BenchmarkEdgeMemory: heap bytes per tracked edge with 1M edges learned.
func BenchmarkEdgeMemory(b *testing.B) {
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		d, _ := New(DefaultConfig(), nil, nil)
		ctx := context.Background()
		const edges = 1_000_000
		base := int64(1_700_000_000_000)
		// Two windows so that every edge is learned, not just windowed.
		for w := int64(0); w < 3; w++ {
			d.ConsumeFlows(ctx, benchFlows(edges, edges, base+w*10_000))
		}
		d.Flush(ctx)
		runtime.GC()
		runtime.ReadMemStats(&after)
		if got := d.Stats().Edges; got != edges {
			b.Fatalf("tracked %d edges, want %d", got, edges)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/edges, "bytes/edge")
		runtime.KeepAlive(d)
	}
}
