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

// newStore returns a ClickHouse store on database db of the test server,
// closed when the test ends.
func newStore(t testing.TB, db string, retentionDays int) *ClickHouse {
	t.Helper()
	cfg := DefaultClickHouseConfig()
	cfg.Addr = []string{testenv.ClickHouseAddr(t)}
	cfg.Database = db
	cfg.RetentionDays = retentionDays
	store, err := NewClickHouse(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// migratedStore returns a store on a fresh, migrated database, and a
// connection to it for checking what was stored.
func migratedStore(t testing.TB) (*ClickHouse, string) {
	t.Helper()
	return migratedStoreKeeping(t, 30)
}

// migratedStoreKeeping is migratedStore with a retention of days (0:
// forever, no TTL). On a modern server a TTL drops rows older than that
// in the background, whenever it merges.
func migratedStoreKeeping(t testing.TB, days int) (*ClickHouse, string) {
	t.Helper()
	_, db := testenv.ClickHouse(t)
	store := newStore(t, db, days)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return store, db
}

// testFlows returns n flows of a small mesh spread over a minute from
// start: a few edges, mixed status codes, sizes and latencies.
func testFlows(n int, start time.Time) []models.Flow {
	workloads := []string{"productpage-v1", "reviews-v2", "ratings-v1", "details-v1", "cart", "payments"}
	codes := []uint16{200, 200, 200, 201, 204, 301, 404, 401, 403, 500, 503, 0}
	base := models.NewFlowIDBase("otlp_logs", 1, start.UnixNano())
	flows := make([]models.Flow, n)
	for i := range flows {
		src, dst := workloads[i%len(workloads)], workloads[(i/len(workloads)+1)%len(workloads)]
		flows[i] = models.Flow{
			ID:          base.ID(i),
			TimestampMs: start.UnixMilli() + int64(i*60_000/max(n, 1)),
			Reporter:    models.Reporter(1 + i%2),
			Source: models.Source{
				Principal: "cluster.local/ns/shop/sa/" + src,
				Workload:  src,
				Namespace: "shop",
				IP:        netip.AddrFrom4([4]byte{10, 44, byte(i >> 8), byte(i)}),
			},
			Destination: models.Destination{
				Principal: "cluster.local/ns/shop/sa/" + dst,
				Workload:  dst,
				Namespace: "shop",
				Service:   dst + ".shop.svc.cluster.local",
				Port:      9080,
			},
			Protocol:      "HTTP/1.1",
			Method:        []string{"GET", "POST", "PUT"}[i%3],
			Path:          fmt.Sprintf("/api/v1/items/%d?q=%d", i, i*7),
			PathTemplate:  "/api/v1/items/{id}",
			ResponseCode:  codes[i%len(codes)],
			ResponseFlags: "-",
			BytesSent:     uint64(100 + i%5000),
			BytesReceived: uint64(20 + i%300),
			DurationMs:    uint32(1 + i%250),
			TLS:           models.TLS(i % 3),
			TLSVersion:    "TLSv1.3",
			UserAgent:     "Mozilla/5.0 (X11; Linux x86_64) curl/8.5.0",
			RequestID:     fmt.Sprintf("84961386-6d84-929d-98bd-%012d", i),
			TraceID:       models.TraceID{byte(i), byte(i >> 8), 1, 2, 3},
			Count:         1,
		}
	}
	return flows
}
