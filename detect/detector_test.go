package detect

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/meshguard/meshguard/models"
)

// mini is a small mesh that emits flows window by window: enough to
// train baselines and to inject each attack on its own.
type mini struct {
	r     *rand.Rand
	start int64
	win   int64
	edges []miniEdge
}

type miniEdge struct {
	src, dst string // "ns/workload"
	rate     float64
	path     string
	both     bool // both proxies report
}

func newMini(seed uint64) *mini {
	return &mini{
		r:     rand.New(rand.NewPCG(seed, 7)),
		start: time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC).UnixMilli(),
		win:   10_000,
		edges: []miniEdge{
			{"shop/frontend", "shop/cart", 20, "/cart/{id}", true},
			{"shop/frontend", "shop/catalog", 10, "/products", false},
			{"shop/cart", "data/db", 15, "/query", false},
			{"shop/catalog", "data/db", 5, "/query", false},
			{"ops/report-job", "shop/catalog", 0.3, "/products", false},
			{"books/reviews-v1", "books/ratings", 5, "/ratings/{id}", false},
			{"books/reviews-v2", "books/ratings", 5, "/ratings/{id}", false},
		},
	}
}

func split(s string) (ns, name string) {
	for i := range s {
		if s[i] == '/' {
			return s[:i], s[i+1:]
		}
	}
	return "", s
}

func flow(ts int64, src, dst, path string, code uint16) models.Flow {
	sns, sw := split(src)
	dns, dw := split(dst)
	return models.Flow{
		TimestampMs: ts, Reporter: models.ReporterSource,
		Source:      models.Source{Workload: sw, Namespace: sns, Principal: "cluster.local/ns/" + sns + "/sa/" + sw},
		Destination: models.Destination{Workload: dw, Namespace: dns, Service: dw + "." + dns + ".svc.cluster.local", Port: 8080},
		Method:      "GET", Path: path, PathTemplate: path, ResponseCode: code,
		BytesSent: 2000, BytesReceived: 300, DurationMs: 12, TLS: models.TLSMutual, Count: 1,
		RequestID: fmt.Sprintf("req-%d", ts),
	}
}

// window returns the benign flows of window i.
func (m *mini) window(i int) []models.Flow {
	var out []models.Flow
	ws := m.start + int64(i)*m.win
	for _, e := range m.edges {
		n := poisson(m.r, e.rate)
		for k := 0; k < n; k++ {
			f := flow(ws+m.r.Int64N(m.win), e.src, e.dst, e.path, 200)
			if m.r.IntN(100) == 0 {
				f.ResponseCode = 503
			}
			out = append(out, f)
			if e.both {
				f.Reporter = models.ReporterDestination
				out = append(out, f)
			}
		}
	}
	return out
}

func poisson(r *rand.Rand, lambda float64) int {
	// Knuth's method: small rates only.
	l, k, p := expNeg(lambda), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

func expNeg(x float64) float64 { return math.Exp(-x) }

type collector struct{ got map[string]models.Detection }

func (c *collector) HandleDetection(_ context.Context, d models.Detection) error {
	if c.got == nil {
		c.got = map[string]models.Detection{}
	}
	c.got[d.ID] = d
	return nil
}

func (c *collector) kinds() map[models.DetectionKind]int {
	k := map[models.DetectionKind]int{}
	for _, d := range c.got {
		k[d.Kind]++
	}
	return k
}

// run trains for train windows, then plays attack (which may add flows to
// window i) for the following windows.
func run(t *testing.T, seed uint64, train, total int, attack func(m *mini, i int, ws int64) []models.Flow) *collector {
	t.Helper()
	c := &collector{}
	// A fixed wall clock after every event time: detected_at is the same
	// every run, and no flow is in the future.
	d, err := New(DefaultConfig(), c, nil, WithClock(func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }))
	if err != nil {
		t.Fatal(err)
	}
	m := newMini(seed)
	ctx := context.Background()
	for i := 0; i < total; i++ {
		fl := m.window(i)
		if i >= train && attack != nil {
			fl = append(fl, attack(m, i, m.start+int64(i)*m.win)...)
		}
		if err := d.ConsumeFlows(ctx, fl); err != nil {
			t.Fatal(err)
		}
	}
	d.Flush(ctx)
	return c
}

const trainWindows = 450 // 75 minutes: past the 1h learning period

func TestBenignMeshRaisesNothing(t *testing.T) {
	c := run(t, 1, trainWindows, 1200, func(m *mini, i int, ws int64) []models.Flow {
		// A new version deploys and calls what its peers call: not lateral.
		var out []models.Flow
		for k := 0; k < 5; k++ {
			out = append(out, flow(ws+int64(k), "books/reviews-v3", "books/ratings", "/ratings/{id}", 200))
		}
		return out
	})
	if len(c.got) != 0 {
		for _, d := range c.got {
			t.Errorf("false detection %s %s: %s", d.Kind, d.Severity, d.Evidence.Summary)
		}
	}
}

func TestEachAttackIsDetectedInItsWindow(t *testing.T) {
	cases := []struct {
		kind   models.DetectionKind
		attack func(ws int64) []models.Flow
	}{
		{models.LateralMovement, lateralFlows},
		{models.CredentialStuffing, stuffingFlows(80)},
		{models.ErrorSurge, func(ws int64) []models.Flow {
			var out []models.Flow
			for k := 0; k < 60; k++ {
				out = append(out, flow(ws+int64(k), "books/reviews-v1", "books/ratings", "/ratings/{id}", 500))
			}
			return out
		}},
		{models.RequestFlood, func(ws int64) []models.Flow {
			var out []models.Flow
			for k := 0; k < 500; k++ {
				out = append(out, flow(ws+int64(k), "shop/catalog", "data/db", "/query", 200))
			}
			return out
		}},
		{models.Exfiltration, exfilFlows},
		{models.MTLSDowngrade, func(ws int64) []models.Flow {
			f := flow(ws+1, "shop/cart", "data/db", "/query", 200)
			f.TLS = models.TLSPlaintext
			f.Source.Principal = ""
			return []models.Flow{f}
		}},
		{models.UnusualPath, func(ws int64) []models.Flow {
			return []models.Flow{flow(ws+1, "shop/frontend", "shop/catalog", "/admin/config", 200)}
		}},
		{models.Scan, scanFlows},
	}
	for _, tc := range cases {
		t.Run(string(tc.kind), func(t *testing.T) {
			attackAt := trainWindows + 30
			c := run(t, 2, trainWindows, attackAt+20, func(m *mini, i int, ws int64) []models.Flow {
				if i >= attackAt && i < attackAt+3 {
					return tc.attack(ws)
				}
				return nil
			})
			var hit *models.Detection
			for _, d := range c.got {
				if d.Kind == tc.kind {
					d := d
					hit = &d
				} else {
					t.Errorf("also raised %s: %s", d.Kind, d.Evidence.Summary)
				}
			}
			if hit == nil {
				t.Fatalf("no %s detection; got %v", tc.kind, c.kinds())
			}
			wantStart := time.UnixMilli(newMini(2).start + int64(attackAt)*10_000).UTC()
			if !hit.WindowStart.Equal(wantStart) {
				t.Errorf("detected in window %s, attack began in %s", hit.WindowStart, wantStart)
			}
			if hit.Updates < 2 && tc.kind != models.LateralMovement && tc.kind != models.UnusualPath {
				t.Errorf("a three-window attack updated its detection %d times, want one detection updated", hit.Updates)
			}
			if len(hit.Evidence.Features) == 0 || hit.Evidence.Summary == "" {
				t.Errorf("detection without evidence: %+v", hit.Evidence)
			}
			t.Logf("%s %s score %.1f: %s %+v", hit.Kind, hit.Severity, hit.Score, hit.Evidence.Summary, hit.Evidence.Features)
		})
	}
}

func TestBothReportersCountOnce(t *testing.T) {
	var a edgeAcc
	f := flow(1, "a/x", "b/y", "/", 200)
	a.add(&f)
	f.Reporter = models.ReporterDestination
	a.add(&f)
	if got := a.merge().requests; got != 1 {
		t.Fatalf("one request reported by both proxies counted %d times", got)
	}
}

func TestPlaintextDetectedFromFirstWindowInStrictNamespace(t *testing.T) {
	cfg := DefaultConfig()
	cfg.StrictMTLSNamespaces = []string{"data"}
	c := &collector{}
	d, err := New(cfg, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := flow(1_700_000_000_000, "shop/cart", "data/db", "/query", 200)
	f.TLS = models.TLSPlaintext
	f.Source.Principal = ""
	f.Source.Workload = ""
	f.Source.IP = netip.MustParseAddr("10.0.0.9")
	d.ConsumeFlows(context.Background(), []models.Flow{f})
	d.Flush(context.Background())
	if k := c.kinds(); k[models.MTLSDowngrade] != 1 {
		t.Fatalf("got %v, want one mtls_downgrade", k)
	}
}

func TestLateFlowsAreCountedNotWindowed(t *testing.T) {
	d, _ := New(DefaultConfig(), nil, nil)
	base := int64(1_700_000_000_000)
	d.ConsumeFlows(context.Background(), []models.Flow{flow(base+60_000, "a/x", "b/y", "/", 200)})
	d.ConsumeFlows(context.Background(), []models.Flow{flow(base, "a/x", "b/y", "/", 200)})
	if st := d.Stats(); st.Late != 1 || st.Flows != 1 {
		t.Fatalf("stats %+v, want one flow and one late", st)
	}
}

// A partition that goes quiet still closes its last windows once it has
// been idle for a window plus the allowed lateness of wall-clock time.
func TestTickClosesWindowsOfIdlePartitions(t *testing.T) {
	wall := time.Unix(1_800_000_000, 0)
	c := &collector{}
	d, _ := New(DefaultConfig(), c, nil, WithClock(func() time.Time { return wall }))
	cfg := DefaultConfig()
	cfg.StrictMTLSNamespaces = []string{"data"}
	d.cfg = cfg
	d.strict["data"] = true
	f := flow(1_700_000_000_000, "shop/cart", "data/db", "/q", 200)
	f.TLS = models.TLSPlaintext
	d.ConsumeFlows(context.Background(), []models.Flow{f})
	d.Tick(context.Background())
	if len(c.got) != 0 {
		t.Fatal("a window closed before the partition was idle")
	}
	wall = wall.Add(cfg.Window + cfg.AllowedLateness + time.Second)
	d.Tick(context.Background())
	if k := c.kinds(); k[models.MTLSDowngrade] != 1 {
		t.Fatalf("after the idle time: %v, want the window closed and its mtls_downgrade raised", k)
	}
}

// Records that carry no TLS evidence (Istio's text format on the client
// side) are neither mTLS nor plaintext: a mesh seen only through them
// raises no downgrade, and neither does later plaintext on an edge that
// never showed mTLS. The same plaintext after mTLS history is one.
func TestUnknownTLSIsNotADowngrade(t *testing.T) {
	unknown := func(fl []models.Flow) []models.Flow {
		for i := range fl {
			fl[i].TLS = models.TLSUnknown
		}
		return fl
	}
	plaintext := func(ws int64) models.Flow {
		f := flow(ws+1, "shop/cart", "data/db", "/query", 200)
		f.TLS, f.Source.Principal = models.TLSPlaintext, ""
		return f
	}
	for _, tt := range []struct {
		name     string
		history  func([]models.Flow) []models.Flow
		attack   bool
		wantDown int
	}{
		{"unknown only", unknown, false, 0},
		{"plaintext after unknown history", unknown, true, 0},
		{"plaintext after mTLS history", func(fl []models.Flow) []models.Flow { return fl }, true, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &collector{}
			d, err := New(DefaultConfig(), c, nil, WithClock(func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }))
			if err != nil {
				t.Fatal(err)
			}
			m := newMini(3)
			ctx := context.Background()
			for i := 0; i < trainWindows+30; i++ {
				fl := tt.history(m.window(i))
				if tt.attack && i == trainWindows+5 {
					fl = append(fl, plaintext(m.start+int64(i)*m.win))
				}
				d.ConsumeFlows(ctx, fl)
			}
			d.Flush(ctx)
			if got := c.kinds()[models.MTLSDowngrade]; got != tt.wantDown {
				t.Errorf("%d mtls_downgrade, want %d (all: %v)", got, tt.wantDown, c.kinds())
			}
		})
	}
}

// One record dated 2098 must not blind its partition: were it to move the
// watermark, every later real window would be closed already and its
// flows late.
func TestFlowFarInFutureDoesNotMoveTheWatermark(t *testing.T) {
	wall := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	c := &collector{}
	cfg := DefaultConfig()
	cfg.StrictMTLSNamespaces = []string{"data"}
	d, err := New(cfg, c, nil, WithClock(func() time.Time { return wall }))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	base := wall.Add(-time.Minute).UnixMilli()
	forged := flow(time.Date(2098, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), "shop/frontend", "shop/cart", "/", 200)
	// Just inside max_future still counts: a skewed proxy clock is not an attack.
	near := flow(wall.Add(cfg.MaxFuture-time.Second).UnixMilli(), "shop/frontend", "shop/cart", "/", 200)
	d.ConsumeFlows(ctx, []models.Flow{flow(base, "shop/frontend", "shop/cart", "/", 200), forged})
	plain := flow(base+1000, "shop/cart", "data/db", "/q", 200)
	plain.TLS = models.TLSPlaintext
	d.ConsumeFlows(ctx, []models.Flow{plain, near})
	st := d.Stats()
	if st.Future != 1 || st.Late != 0 || st.Flows != 3 {
		t.Fatalf("stats %+v, want the 2098 flow counted as future, nothing late, three flows windowed", st)
	}
	d.Flush(ctx)
	if k := c.kinds(); k[models.MTLSDowngrade] != 1 {
		t.Fatalf("got %v, want the real plaintext window closed and its mtls_downgrade raised", k)
	}
}

func TestMaxFutureMustBePositive(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxFuture = 0
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "detect.max_future") {
		t.Fatalf("Validate = %v, want an error naming detect.max_future", err)
	}
}

// scanFlows is shop/frontend probing 40 services on 7 ports in one window.
// stuffingFlows is n logins answered 401 from frontend to cart.
func stuffingFlows(n int) func(ws int64) []models.Flow {
	return func(ws int64) []models.Flow {
		var out []models.Flow
		for k := 0; k < n; k++ {
			out = append(out, flow(ws+int64(k), "shop/frontend", "shop/cart", "/login", 401))
		}
		return out
	}
}

func lateralFlows(ws int64) []models.Flow {
	return []models.Flow{flow(ws+5, "shop/cart", "shop/catalog", "/products", 200)}
}

func exfilFlows(ws int64) []models.Flow {
	f := flow(ws+1, "shop/catalog", "data/db", "/query", 200)
	f.BytesSent = 200 << 20
	return []models.Flow{f}
}

func scanFlows(ws int64) []models.Flow {
	var out []models.Flow
	for k := 0; k < 40; k++ {
		f := flow(ws+int64(k), "shop/frontend", fmt.Sprintf("ns%d/svc%d", k%5, k), "/", 404)
		f.Destination.Port = uint16(8000 + k%7)
		out = append(out, f)
	}
	return out
}
