package scenario

import (
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/meshguard/meshguard/ingest"
	"github.com/meshguard/meshguard/models"
)

var wednesday = time.Date(2026, 11, 18, 10, 0, 0, 0, time.UTC)

// decode runs ld through ingest's decoder, the path the service takes.
func decode(t *testing.T, ld plog.Logs) []models.Flow {
	t.Helper()
	v, err := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	if err != nil {
		t.Fatal(err)
	}
	flows, err := ingest.NewDecoder(ingest.DecoderConfig{}).Decode(ingest.SignalLogs, v, models.FlowIDBase{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(flows) != ld.LogRecordCount() {
		t.Fatalf("decoded %d flows of %d records", len(flows), ld.LogRecordCount())
	}
	return flows
}

// play returns the decoded flows of [at, at+d) of a realistic generator.
func play(t *testing.T, at, d time.Duration, o Options) []models.Flow {
	t.Helper()
	o.Dynamics = true
	g, err := NewWith(RealisticMesh(), wednesday, 1, o)
	if err != nil {
		t.Fatal(err)
	}
	g.Skip(at)
	var flows []models.Flow
	for g.Now().Before(wednesday.Add(at + d)) {
		flows = append(flows, decode(t, g.Next(10*time.Second))...)
	}
	return flows
}

type edgeKey struct{ from, to string }

// byEdge counts destination-side flows per workload edge.
func byEdge(flows []models.Flow) map[edgeKey]int {
	out := map[edgeKey]int{}
	for _, f := range flows {
		if f.Reporter == models.ReporterDestination {
			out[edgeKey{f.Source.Workload, f.Destination.Workload}]++
		}
	}
	return out
}

func TestScenarioIsDeterministic(t *testing.T) {
	attacks, err := Schedule(models.DetectionKinds, wednesday, 30*time.Second, 20*time.Second, 1)
	if err != nil {
		t.Fatal(err)
	}
	gen := func() []byte {
		g, err := NewWith(RealisticMesh(), wednesday, 9, Options{Dynamics: true, Scale: 0.5, Attacks: attacks})
		if err != nil {
			t.Fatal(err)
		}
		var all []byte
		for range 10 {
			v, _ := (&plog.ProtoMarshaler{}).MarshalLogs(g.Next(10 * time.Second))
			all = append(all, v...)
		}
		return all
	}
	if a, b := gen(), gen(); string(a) != string(b) {
		t.Fatal("same seed, options and start must give the same telemetry")
	}
}

func TestRolloutsShiftTraffic(t *testing.T) {
	before := byEdge(play(t, 100*time.Minute, time.Minute, Options{Scale: 0.3}))
	after := byEdge(play(t, 160*time.Minute, time.Minute, Options{Scale: 0.3}))
	if before[edgeKey{"frontend-v1", "cart-v2"}] != 0 || before[edgeKey{"frontend-v1", "cart-v1"}] == 0 {
		t.Errorf("before the canary: frontend -> cart-v1 %d, -> cart-v2 %d; want all on v1",
			before[edgeKey{"frontend-v1", "cart-v1"}], before[edgeKey{"frontend-v1", "cart-v2"}])
	}
	if after[edgeKey{"frontend-v1", "cart-v1"}] != 0 || after[edgeKey{"cart-v2", "inventory-v1"}] == 0 {
		t.Errorf("after the canary: frontend -> cart-v1 %d, cart-v2 -> inventory %d; want v1 drained",
			after[edgeKey{"frontend-v1", "cart-v1"}], after[edgeKey{"cart-v2", "inventory-v1"}])
	}
	if before[edgeKey{"reviews-v3", "ratings-v1"}] != 0 {
		t.Error("reviews-v3 called ratings before its rollout")
	}
	v3, v2 := after[edgeKey{"reviews-v3", "ratings-v1"}], after[edgeKey{"reviews-v2", "ratings-v1"}]
	if v3 == 0 || v2 == 0 || v3 > v2 {
		t.Errorf("at a third: reviews-v3 -> ratings %d, reviews-v2 -> ratings %d; want v3 below v2, both > 0", v3, v2)
	}
	summary := 0
	for _, f := range play(t, 160*time.Minute, time.Minute, Options{Scale: 0.3}) {
		if f.Source.Workload == "reviews-v3" && strings.HasSuffix(f.Path, "/summary") {
			summary++
		}
	}
	if summary == 0 {
		t.Error("reviews-v3 never called its new endpoint")
	}
}

func TestJobsRunOnSchedule(t *testing.T) {
	// billing-report runs at :05-:09 and :35-:39.
	idle := byEdge(play(t, 10*time.Minute, 20*time.Minute, Options{Scale: 0.05}))
	busy := byEdge(play(t, 65*time.Minute, 4*time.Minute, Options{Scale: 0.1}))
	if n := idle[edgeKey{"billing-report", "ledger-v1"}]; n != 0 {
		t.Errorf("billing-report made %d calls between runs", n)
	}
	if n := busy[edgeKey{"billing-report", "ledger-v1"}]; n < 4*60*25/10/2 {
		t.Errorf("billing-report made %d calls in a 4-minute run at 25/s scaled to 2.5/s", n)
	}
}

func TestIncidentIsRetried(t *testing.T) {
	flows := play(t, 130*time.Minute, 40*time.Second, Options{})
	var clientFail, clientURX, server int
	for _, f := range flows {
		if f.Destination.Service != "inventory.shop.svc.cluster.local" {
			continue
		}
		switch f.Reporter {
		case models.ReporterSource:
			if strings.Contains(f.ResponseFlags, "UF") {
				clientFail++
			}
			if strings.Contains(f.ResponseFlags, "URX") {
				clientURX++
			}
		case models.ReporterDestination:
			server++
		}
	}
	// 30% of connections fail, each retried twice: about 2.7% of requests
	// fail all three attempts.
	if clientFail == 0 || clientURX == 0 || server == 0 {
		t.Fatalf("incident: %d failed client records (%d retries exhausted), %d server records", clientFail, clientURX, server)
	}
}

func TestEachAttackShowsInItsWindowOnly(t *testing.T) {
	start := wednesday.Add(30 * time.Second)
	attacks, err := Schedule(models.DetectionKinds, start, time.Minute, 30*time.Second, 1)
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewWith(RealisticMesh(), wednesday, 3, Options{Dynamics: true, Scale: 0.2, Attacks: attacks})
	if err != nil {
		t.Fatal(err)
	}
	if got := g.Attacks(); len(got) != len(models.DetectionKinds) || got[0].Source == "" {
		t.Fatalf("schedule %v", got)
	}
	var flows []models.Flow
	for g.Now().Before(start.Add(time.Duration(len(attacks)) * time.Minute)) {
		flows = append(flows, decode(t, g.Next(10*time.Second))...)
	}
	for _, a := range attacks {
		src := a.Source[strings.IndexByte(a.Source, '/')+1:]
		dst := a.Destination[strings.IndexByte(a.Destination, '/')+1:]
		var in, out, signal int
		for _, f := range flows {
			if f.Source.Workload != src || (dst != "" && f.Destination.Workload != dst) {
				continue
			}
			active := a.Active(f.Time())
			var hit bool
			switch a.Kind {
			case models.LateralMovement:
				hit = true
			case models.Scan:
				hit = f.ResponseCode == 0 || f.ResponseCode == 404 || f.ResponseCode == 403
			case models.RequestFlood:
				hit = true
			case models.CredentialStuffing:
				hit = f.ResponseCode == 401
			case models.ErrorSurge:
				hit = f.ResponseCode == 500
			case models.Exfiltration:
				hit = f.BytesSent > 100_000
			case models.MTLSDowngrade:
				hit = f.TLS == models.TLSPlaintext
			case models.UnusualPath:
				hit = strings.HasPrefix(f.Path, "/.") || strings.Contains(f.Path, "admin") ||
					strings.Contains(f.Path, "debug") || strings.Contains(f.Path, "actuator") ||
					strings.Contains(f.Path, "status") || strings.Contains(f.Path, "console")
			}
			switch {
			case hit && active:
				signal++
				in++
			case hit && !active:
				out++
			case active:
				in++
			}
		}
		// The benign edge a flood or surge rides on carries traffic outside
		// the attack too; its signal must be inside.
		switch a.Kind {
		case models.RequestFlood:
			if in < 30*20 {
				t.Errorf("%s: %d requests in 30 s", a.Kind, in)
			}
		default:
			// Per second, the signal inside stands 10x above the same
			// kind of traffic outside (benign 401s on the login edge).
			inRate := float64(signal) / a.End.Sub(a.Start).Seconds()
			outRate := float64(out) / (float64(len(attacks))*60 - a.End.Sub(a.Start).Seconds())
			if signal < 5 || inRate < 10*outRate {
				t.Errorf("%s: %d attack requests inside its window, %d outside", a.Kind, signal, out)
			}
		}
	}
}

func TestScanFansOut(t *testing.T) {
	a, _ := DefaultAttack(models.Scan)
	a.Start, a.End = wednesday, wednesday.Add(10*time.Second)
	g, err := NewWith(RealisticMesh(), wednesday, 5, Options{Attacks: []Attack{a}, Scale: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	dsts, ports := map[string]bool{}, map[uint16]bool{}
	for _, f := range decode(t, g.Next(10*time.Second)) {
		if f.Source.Workload == "ads-v1" {
			dsts[f.Destination.Service] = true
			ports[f.Destination.Port] = true
		}
	}
	if len(dsts) < 15 || len(ports) < 6 {
		t.Fatalf("a 10 s scan reached %d services on %d ports", len(dsts), len(ports))
	}
}

func TestBadAttacksAreRejected(t *testing.T) {
	for _, a := range []Attack{
		{Kind: models.Scan, Source: "shop/nope", Start: wednesday, End: wednesday.Add(time.Minute)},
		{Kind: models.RequestFlood, Source: "shop/search-v1", Start: wednesday, End: wednesday.Add(time.Minute)},
		{Kind: "dos", Source: "shop/search-v1", Destination: "shop/catalog-v1", Start: wednesday, End: wednesday.Add(time.Minute)},
		{Kind: models.Scan, Source: "shop/ads-v1", Start: wednesday, End: wednesday},
		{Kind: models.Scan, Source: "billing/ads-v1", Start: wednesday, End: wednesday.Add(time.Minute)},
	} {
		if _, err := NewWith(RealisticMesh(), wednesday, 1, Options{Attacks: []Attack{a}}); err == nil {
			t.Errorf("attack %+v accepted", a)
		}
	}
	if _, err := ParseKinds("scan,scan"); err == nil {
		t.Error("a kind listed twice accepted")
	}
	if k, err := ParseKinds("all"); err != nil || len(k) != len(models.DetectionKinds) {
		t.Errorf("all = %v, %v", k, err)
	}
	if k, err := ParseKinds("none"); err != nil || k != nil {
		t.Errorf("none = %v, %v", k, err)
	}
}

func TestSpreadKeepsAttacksApartAfterLearning(t *testing.T) {
	attacks, err := Spread(models.DetectionKinds, wednesday, time.Hour, 6*time.Hour, 2)
	if err != nil {
		t.Fatal(err)
	}
	sources := map[string]bool{}
	for i, a := range attacks {
		if a.Start.Before(wednesday.Add(time.Hour)) || a.End.After(wednesday.Add(6*time.Hour)) || a.Strength != 2 {
			t.Errorf("attack %v outside [1h, 6h) or not at strength 2", a)
		}
		if i > 0 && a.Start.Sub(attacks[i-1].End) < 10*time.Minute {
			t.Errorf("attack %v starts %v after the previous ended", a, a.Start.Sub(attacks[i-1].End))
		}
		sources[a.Source] = true
	}
	if len(sources) != len(models.DetectionKinds) {
		t.Errorf("%d sources for %d attacks; want each from its own", len(sources), len(attacks))
	}
	if _, err := Spread(models.DetectionKinds, wednesday, time.Hour, time.Hour, 1); err == nil {
		t.Error("no time after learning accepted")
	}
}
