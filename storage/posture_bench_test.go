package storage

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/test/testenv"
)

// BenchmarkPostureEdges reads the posture of a mesh of 10k workloads from
// a private modern server, as the query over flows the rollups replaced
// ("flows", referencePostureEdges) and from the rollups ("rollup"), on the
// same stored flows: 1M flows, one per edge, in one hour ("1M-edges", the
// rollups' worst case: as many rows as flows), and 1M flows on 100k edges,
// ten each, in one hour ("100k-edges"). A tenth of the flows plaintext, a
// fifth unknown. Besides ns/op it reports the server's CPU per read.
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
				measureServerCPU(b, store, func() {
					for b.Loop() {
						got, err := read.get(ctx)
						if err != nil {
							b.Fatal(err)
						}
						if len(got) != edges {
							b.Fatalf("%d edges, want %d", len(got), edges)
						}
					}
				})
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

// serverCPU is the CPU time (user + system) the chserver process serving
// addr has used so far, read from /proc: on a shared machine the
// server's CPU per read says more than the wall clock, which measures
// the neighbours too. ok is false when no such process is found.
func serverCPU(addr string) (cpu time.Duration, ok bool) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, false
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, false
	}
	for _, p := range procs {
		cmdline, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if filepath.Base(args[0]) != "chserver" || !slices.Contains(args, port) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", p.Name(), "stat"))
		if err != nil {
			return 0, false
		}
		// Fields after the command's closing parenthesis: state is the
		// first, utime and stime the 12th and 13th, in USER_HZ (100).
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 13 {
			return 0, false
		}
		user, err1 := strconv.ParseInt(f[11], 10, 64)
		sys, err2 := strconv.ParseInt(f[12], 10, 64)
		if err1 != nil || err2 != nil {
			return 0, false
		}
		return time.Duration(user+sys) * 10 * time.Millisecond, true
	}
	return 0, false
}

// measureServerCPU runs loop and reports the server's CPU per b.N.
func measureServerCPU(b *testing.B, store *ClickHouse, loop func()) {
	before, ok := serverCPU(store.addrs[0])
	loop()
	after, ok2 := serverCPU(store.addrs[0])
	if !ok || !ok2 {
		b.Log("server CPU not measured: no chserver process found for", store.addrs[0])
		return
	}
	b.ReportMetric(float64((after-before).Milliseconds())/float64(b.N), "server-cpu-ms/op")
}
