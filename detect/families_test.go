package detect

import (
	"testing"
	"time"

	"github.com/meshguard/meshguard/models"
)

// fixture is one shard with one window of flows, to open for closing and
// run a single detector family on, with the state it needs set by hand
// instead of learned window by window.
type fixture struct {
	t  *testing.T
	s  *shard
	w  *window
	ws int64
}

const fixtureHistory = 2 * time.Hour // past the default 1h learning period

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	d, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ws := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC).UnixMilli()
	return &fixture{t: t, s: d.shard(0), w: newWindow(ws), ws: ws}
}

// add counts n flows from src to dst (as flow builds them, then edit)
// into the window.
func (fx *fixture) add(n int, src, dst, path string, code uint16, edit func(*models.Flow)) {
	for i := 0; i < n; i++ {
		f := flow(fx.ws+int64(i%10_000), src, dst, path, code)
		if edit != nil {
			edit(&f)
		}
		e := f.Edge()
		a := fx.w.edges[e]
		if a == nil {
			a = &edgeAcc{}
			fx.w.edges[e] = a
		}
		a.add(&f)
	}
}

func edgeOf(src, dst string) models.Edge {
	f := flow(0, src, dst, "/", 200)
	return f.Edge()
}

// source gives src a source profile seen for fixtureHistory, calling dsts.
func (fx *fixture) source(src string, dsts ...string) *nodeState {
	e := edgeOf(src, src)
	n := fx.s.node(fx.s.sources, e.Source, fx.ws-fixtureHistory.Milliseconds())
	n.principal = "cluster.local/ns/" + e.Source.Namespace + "/sa/" + e.Source.Name
	for _, d := range dsts {
		n.calls[peerGroup(edgeOf(src, d).Destination)] = struct{}{}
	}
	return n
}

// dest gives dst a destination profile seen for fixtureHistory, with
// perWindow requests learned.
func (fx *fixture) dest(dst string, perWindow float64) *nodeState {
	n := fx.s.node(fx.s.dests, edgeOf(dst, dst).Destination, fx.ws-fixtureHistory.Milliseconds())
	learnSeries(fx.s.det.model, &n.base[models.FeatRequests], perWindow)
	return n
}

// knownEdge gives src -> dst a baseline of perWindow mTLS GETs of path
// answered 200 with flow's sizes, learned for fixtureHistory, and the
// profiles of both ends.
func (fx *fixture) knownEdge(src, dst, path string, perWindow float64) *edgeState {
	m := fx.s.det.model
	st := &edgeState{firstMs: fx.ws - fixtureHistory.Milliseconds(), lastMs: fx.ws - fx.s.det.windowMs, mtlsSeen: true, peak: float32(perWindow + 3)}
	x := merged{requests: uint64(perWindow), bytesOut: 300 * uint64(perWindow), bytesIn: 2000 * uint64(perWindow), mtls: uint64(perWindow), latencyP95: 15}.features()
	for f, v := range x {
		learnSeries(m, &st.base[f], v)
	}
	st.addPath(pathHash(path))
	st.methods = methodBit("GET")
	fx.s.edges[edgeOf(src, dst)] = st
	fx.source(src, dst)
	dn := fx.dest(dst, perWindow)
	dn.callers[peerGroup(edgeOf(src, dst).Source)] = struct{}{}
	dn.paths[pathHash(path)] = struct{}{}
	return st
}

// learnSeries learns x, give or take 10%, for two hours of windows.
func learnSeries(m Model, s *models.Series, x float64) {
	for i := 0; i < 720; i++ {
		m.Learn(s, x*(1+0.1*float64(i%3-1)))
	}
}

func (fx *fixture) open() *closingWindow { return fx.s.openWindow(fx.w) }

// edgeWinOf returns the closing window's edge src -> dst.
func (cw *closingWindow) edgeWinOf(t *testing.T, src, dst string) *edgeWin {
	t.Helper()
	e := edgeOf(src, dst)
	for i := range cw.edges {
		if cw.edges[i].e == e {
			return &cw.edges[i]
		}
	}
	t.Fatalf("no edge %s in the window", e)
	return nil
}

func findingKinds(fs []finding) []models.DetectionKind {
	var out []models.DetectionKind
	for _, f := range fs {
		out = append(out, f.kind)
	}
	return out
}

func wantFindings(t *testing.T, cw *closingWindow, want ...models.DetectionKind) {
	t.Helper()
	got := findingKinds(cw.findings)
	if len(got) != len(want) {
		t.Fatalf("findings %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("findings %v, want %v", got, want)
		}
	}
}

func TestScanFamily(t *testing.T) {
	for _, tc := range []struct {
		name string
		code uint16
		want []models.DetectionKind
	}{{"failing probes", 404, []models.DetectionKind{models.Scan}}, {"successful fan-out", 200, nil}} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t, DefaultConfig())
			node := fx.source("shop/frontend")
			for i := 0; i < 12; i++ {
				fx.add(3, "shop/frontend", "ns"+string(rune('a'+i))+"/svc", "/", tc.code, nil)
			}
			cw := fx.open()
			src := edgeOf("shop/frontend", "x/y").Source
			cw.scan(src, cw.srcs[src], node)
			wantFindings(t, cw, tc.want...)
			if cw.scanning[src] != (len(tc.want) > 0) {
				t.Errorf("scanning = %v", cw.scanning[src])
			}
		})
	}
}

func TestPrincipalChangeFamily(t *testing.T) {
	fx := newFixture(t, DefaultConfig())
	node := fx.source("shop/frontend")
	fx.add(5, "shop/frontend", "shop/cart", "/cart", 200, func(f *models.Flow) { f.Source.Principal = "cluster.local/ns/kube-system/sa/admin" })
	cw := fx.open()
	src := edgeOf("shop/frontend", "x/y").Source
	cw.principalChange(src, cw.srcs[src], node)
	wantFindings(t, cw, models.MTLSDowngrade)
	if ew := cw.edgeWinOf(t, "shop/frontend", "shop/cart"); !ew.silent {
		t.Error("the edge is learned from")
	}

	fx = newFixture(t, DefaultConfig())
	node = fx.source("shop/frontend")
	fx.add(5, "shop/frontend", "shop/cart", "/cart", 200, nil)
	cw = fx.open()
	cw.principalChange(src, cw.srcs[src], node)
	wantFindings(t, cw)
}

func TestStrictPlaintextFamily(t *testing.T) {
	cfg := DefaultConfig()
	cfg.StrictMTLSNamespaces = []string{"data"}
	for _, tc := range []struct {
		tls  models.TLS
		want []models.DetectionKind
	}{{models.TLSPlaintext, []models.DetectionKind{models.MTLSDowngrade}}, {models.TLSUnknown, nil}, {models.TLSMutual, nil}} {
		fx := newFixture(t, cfg)
		fx.add(3, "shop/cart", "data/db", "/query", 200, func(f *models.Flow) { f.TLS = tc.tls })
		cw := fx.open()
		ew := cw.edgeWinOf(t, "shop/cart", "data/db")
		cw.strictPlaintext(ew)
		wantFindings(t, cw, tc.want...)
		if len(tc.want) > 0 && (cw.findings[0].severity != models.SeverityCritical || !ew.fired[models.FeatPlaintext]) {
			t.Errorf("TLS %v: severity %v, plaintext fired %v", tc.tls, cw.findings[0].severity, ew.fired[models.FeatPlaintext])
		}
	}
}

func TestDowngradeFamily(t *testing.T) {
	for _, mtlsSeen := range []bool{true, false} {
		fx := newFixture(t, DefaultConfig())
		fx.knownEdge("shop/cart", "data/db", "/query", 10).mtlsSeen = mtlsSeen
		fx.add(10, "shop/cart", "data/db", "/query", 200, func(f *models.Flow) { f.TLS = models.TLSPlaintext })
		cw := fx.open()
		ew := cw.edgeWinOf(t, "shop/cart", "data/db")
		cw.downgrade(ew, cw.scoreEdge(ew, 1))
		if mtlsSeen {
			wantFindings(t, cw, models.MTLSDowngrade)
		} else {
			wantFindings(t, cw) // no mTLS ever seen: nothing to fall from
		}
	}
}

func TestLateralFamily(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(fx *fixture)
		want  bool
	}{
		{"established source, known destination", func(fx *fixture) {}, true},
		{"a peer calls it", func(fx *fixture) {
			fx.s.dests[edgeOf("x/y", "data/db").Destination].callers[peerGroup(edgeOf("shop/cart-v2", "x/y").Source)] = struct{}{}
		}, false},
		{"new source", func(fx *fixture) { fx.s.sources[edgeOf("shop/cart", "x/y").Source].firstMs = fx.ws }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t, DefaultConfig())
			src := fx.source("shop/cart", "shop/catalog")
			dst := fx.dest("data/db", 10)
			tc.setup(fx)
			fx.add(4, "shop/cart", "data/db", "/query", 200, nil)
			cw := fx.open()
			ew := cw.edgeWinOf(t, "shop/cart", "data/db")
			if got := cw.lateral(ew, src, dst); got != tc.want {
				t.Fatalf("lateral = %v, want %v", got, tc.want)
			}
			if tc.want {
				wantFindings(t, cw, models.LateralMovement)
			} else {
				wantFindings(t, cw)
			}
		})
	}
}

func TestSurgeFamily(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		code uint16
		want []models.DetectionKind
	}{
		{"401s", 80, 401, []models.DetectionKind{models.CredentialStuffing}},
		{"500s", 80, 500, []models.DetectionKind{models.ErrorSurge}},
		{"requests", 400, 200, []models.DetectionKind{models.RequestFlood}},
		{"503s of a retry storm", 40, 503, nil},
		{"usual traffic", 0, 200, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t, DefaultConfig())
			fx.knownEdge("shop/frontend", "shop/cart", "/cart", 10)
			fx.add(10, "shop/frontend", "shop/cart", "/cart", 200, nil)
			fx.add(tc.n, "shop/frontend", "shop/cart", "/cart", tc.code, nil)
			cw := fx.open()
			ew := cw.edgeWinOf(t, "shop/frontend", "shop/cart")
			dw := cw.dsts[ew.e.Destination]
			cw.surge(ew, cw.scoreEdge(ew, 1), dw, nil)
			wantFindings(t, cw, tc.want...)
			if tc.code == 503 && len(dw.failing) != 1 {
				t.Errorf("the retry storm is not noted for outages: %v", dw.failing)
			}
		})
	}
}

func TestExfiltrationFamily(t *testing.T) {
	for _, tc := range []struct {
		bytes uint64
		want  []models.DetectionKind
	}{{4 << 20, []models.DetectionKind{models.Exfiltration}}, {2000, nil}} {
		fx := newFixture(t, DefaultConfig())
		fx.knownEdge("shop/frontend", "data/db", "/query", 10)
		fx.add(10, "shop/frontend", "data/db", "/query", 200, func(f *models.Flow) { f.BytesSent = tc.bytes })
		cw := fx.open()
		ew := cw.edgeWinOf(t, "shop/frontend", "data/db")
		cw.exfiltration(ew, cw.scoreEdge(ew, 1))
		wantFindings(t, cw, tc.want...)
	}
}

func TestUnusualPathFamily(t *testing.T) {
	for _, tc := range []struct {
		path, method string
		want         []models.DetectionKind
		sev          models.Severity
	}{
		{"/admin/.env", "GET", []models.DetectionKind{models.UnusualPath}, models.SeverityHigh}, // and a 200 answered it
		{"/cart", "DELETE", []models.DetectionKind{models.UnusualPath}, models.SeverityMedium},
		{"/cart/items", "GET", nil, 0}, // new but not sensitive
	} {
		fx := newFixture(t, DefaultConfig())
		fx.knownEdge("shop/frontend", "shop/cart", "/cart", 10)
		fx.add(3, "shop/frontend", "shop/cart", tc.path, 200, func(f *models.Flow) { f.Method = tc.method })
		cw := fx.open()
		ew := cw.edgeWinOf(t, "shop/frontend", "shop/cart")
		cw.unusualPath(ew, fx.s.dests[ew.e.Destination])
		wantFindings(t, cw, tc.want...)
		if len(tc.want) > 0 && (!ew.silent || cw.findings[0].severity != tc.sev) {
			t.Errorf("%s %s: silent %v, severity %v, want %v", tc.method, tc.path, ew.silent, cw.findings[0].severity, tc.sev)
		}
	}
}

func TestDestinationFloodFamily(t *testing.T) {
	for _, tc := range []struct {
		perCaller int
		want      []models.DetectionKind
	}{{40, []models.DetectionKind{models.RequestFlood}}, {3, nil}} {
		fx := newFixture(t, DefaultConfig())
		fx.dest("shop/cart", 30)
		for i := 0; i < 10; i++ {
			fx.add(tc.perCaller, "bots/bot-"+string(rune('a'+i)), "shop/cart", "/cart", 200, nil)
		}
		cw := fx.open()
		dep := edgeOf("x/y", "shop/cart").Destination
		cw.destinationFlood(dep, cw.dsts[dep])
		wantFindings(t, cw, tc.want...)
		if len(tc.want) > 0 && !cw.dsts[dep].flooded {
			t.Error("the destination's flood is learned from")
		}
	}
}

// Two callers' retry storms into one destination, explained away by the
// surge family, are one destination outage.
func TestOutageFamily(t *testing.T) {
	fx := newFixture(t, DefaultConfig())
	callers := []string{"shop/frontend", "shop/checkout"}
	for _, c := range callers {
		fx.knownEdge(c, "shop/cart", "/cart", 10)
		fx.add(10, c, "shop/cart", "/cart", 200, nil)
		fx.add(40, c, "shop/cart", "/cart", 503, nil)
	}
	cw := fx.open()
	dw := cw.dsts[edgeOf("x/y", "shop/cart").Destination]
	for _, c := range callers {
		ew := cw.edgeWinOf(t, c, "shop/cart")
		cw.surge(ew, cw.scoreEdge(ew, 1), dw, nil)
	}
	cw.findings = fx.s.outages(cw.findings, cw.dsts)
	wantFindings(t, cw, models.DestinationOutage)
	if cw.findings[0].severity != models.SeverityLow {
		t.Errorf("outage severity %v, want low", cw.findings[0].severity)
	}
}

// A new edge of a source with a clean history is scored against the
// priors from its first window.
func TestYoungEdgeFamily(t *testing.T) {
	for _, tc := range []struct {
		code uint16
		want []models.DetectionKind
	}{{500, []models.DetectionKind{models.ErrorSurge}}, {401, []models.DetectionKind{models.CredentialStuffing}}, {200, nil}} {
		fx := newFixture(t, DefaultConfig())
		src := fx.source("books/reviews-v3", "books/ratings")
		learnSeries(fx.s.det.model, &src.base[models.FeatRequests], 20)
		dst := fx.dest("books/ratings", 20)
		fx.add(60, "books/reviews-v3", "books/ratings", "/ratings/{id}", tc.code, nil)
		cw := fx.open()
		ew := cw.edgeWinOf(t, "books/reviews-v3", "books/ratings")
		cw.findings = fx.s.youngEdge(cw.findings, ew, cw.dsts[ew.e.Destination], src, dst, cw.ws, cw.learnMs, cw.thr)
		wantFindings(t, cw, tc.want...)
	}
}

// Requests marked identity_conflict (the cluster contradicts what they
// claim) are listed in the evidence of the detection they are part of,
// edge or source; without them the evidence does not mention it.
func TestIdentityConflictIsEvidence(t *testing.T) {
	conflict := func(f *models.Flow) { f.IdentityConflict = true }
	for _, tc := range []struct {
		name      string
		conflicts int
	}{{"three conflicting requests", 3}, {"none", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t, DefaultConfig())
			src := fx.source("shop/cart", "shop/catalog")
			dst := fx.dest("data/db", 10)
			fx.add(tc.conflicts, "shop/cart", "data/db", "/query", 200, conflict)
			fx.add(4, "shop/cart", "data/db", "/query", 200, nil)
			cw := fx.open()
			if !cw.lateral(cw.edgeWinOf(t, "shop/cart", "data/db"), src, dst) {
				t.Fatal("no lateral movement")
			}
			var got []models.FeatureEvidence
			for _, fe := range cw.findings[0].evidence.Features {
				if fe.Feature == "identity_conflict" {
					got = append(got, fe)
				}
			}
			switch {
			case tc.conflicts == 0 && len(got) != 0:
				t.Errorf("evidence lists identity_conflict without conflicting requests: %+v", got)
			case tc.conflicts > 0 && (len(got) != 1 || got[0].Observed != float64(tc.conflicts)):
				t.Errorf("identity_conflict evidence %+v, want one feature observing %d", got, tc.conflicts)
			}
			sw := cw.srcs[edgeOf("shop/cart", "data/db").Source]
			sf := fx.s.sourceFinding(models.Scan, models.SeverityMedium, 10, edgeOf("shop/cart", "data/db").Source, sw, nil)
			if n := len(sf.evidence.Features); n != min(tc.conflicts, 1) {
				t.Errorf("a source's finding lists %d features from %d conflicting requests: %+v", n, tc.conflicts, sf.evidence.Features)
			}
		})
	}
}
