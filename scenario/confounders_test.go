package scenario

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/meshguard/meshguard/models"
)

// rec is one generated record's labels that the confounders change.
type rec struct {
	reporter, src, dst, code, flags, details, srcAddr string
}

func playRecs(t *testing.T, m Mesh, start time.Time, d time.Duration) []rec {
	t.Helper()
	g, err := NewWith(m, start, 3, Options{Dynamics: true})
	if err != nil {
		t.Fatal(err)
	}
	var out []rec
	for g.Now().Before(start.Add(d)) {
		ld := g.Next(time.Second)
		rs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
		for i := 0; i < rs.Len(); i++ {
			a := rs.At(i).Attributes()
			get := func(k string) string { v, _ := a.Get(k); return v.Str() }
			out = append(out, rec{get("reporter"), get("source_workload"), get("destination_workload"), get("response_code"),
				get("response_flags"), get("response_code_details"), get("downstream_remote_address")})
		}
	}
	return out
}

func TestIncidentModesAsEnvoyLogsThem(t *testing.T) {
	start := time.Date(2026, 11, 18, 15, 0, 0, 0, time.UTC)
	mesh := func(mode string) Mesh {
		m := DefaultMesh()
		for i := range m.Calls {
			if m.Calls[i].To == "catalog-v1" {
				m.Calls[i].Retries = 2
			}
		}
		m.Incidents = []Incident{{Workload: "catalog-v1", At: 0, For: time.Minute, ErrorRate: 0.5, Mode: mode}}
		return m
	}
	count := func(rs []rec, f func(r rec) bool) int {
		n := 0
		for _, r := range rs {
			if r.dst == "catalog-v1" || (r.dst == "-" && r.flags != "-") {
				if f(r) {
					n++
				}
			}
		}
		return n
	}
	// The destination answers 503 itself: its proxy logs each attempt,
	// the caller's proxy the final 503 with URX.
	rs := playRecs(t, mesh(IncidentUnavailable), start, 10*time.Second)
	server503 := count(rs, func(r rec) bool {
		return r.reporter == "destination" && r.code == "503" && r.flags == "-" && r.details == "via_upstream"
	})
	clientURX := count(rs, func(r rec) bool { return r.reporter == "source" && r.code == "503" && r.flags == "URX" })
	if server503 == 0 || clientURX == 0 || server503 < 2*clientURX {
		t.Errorf("unavailable: %d server-side 503 attempts, %d client-side 503 URX; want every retried attempt logged by the destination", server503, clientURX)
	}
	// The caller's circuit breaker: client-side 503 UO only, never retried.
	rs = playRecs(t, mesh(IncidentOverflow), start, 10*time.Second)
	uo := count(rs, func(r rec) bool { return r.reporter == "source" && r.code == "503" && r.flags == "UO" })
	leaked := count(rs, func(r rec) bool { return r.flags == "UO" && r.reporter == "destination" })
	if uo == 0 || leaked != 0 || count(rs, func(r rec) bool { return r.flags == "UO,URX" }) != 0 {
		t.Errorf("overflow: %d client-side 503 UO, %d on the destination side; want only client-side, not retried", uo, leaked)
	}
	if _, err := NewWith(mesh("flaky"), start, 1, Options{Dynamics: true}); err == nil {
		t.Error("an unknown incident mode was accepted")
	}
}

func TestDeploysChangeAddressesNotNames(t *testing.T) {
	start := time.Date(2026, 11, 18, 15, 0, 0, 0, time.UTC)
	m := DefaultMesh()
	m.Deploys = []Deploy{{Workload: "frontend-v1", At: 5 * time.Second, Pods: 3, Reset: 5 * time.Second, ResetRate: 0.2}}
	g, err := NewWith(m, start, 1, Options{Dynamics: true})
	if err != nil {
		t.Fatal(err)
	}
	var before, after map[string]bool = map[string]bool{}, map[string]bool{}
	resets := 0
	for i := 0; i < 10; i++ {
		ld := g.Next(time.Second)
		rs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
		for k := 0; k < rs.Len(); k++ {
			a := rs.At(k).Attributes()
			get := func(k string) string { v, _ := a.Get(k); return v.Str() }
			if get("source_workload") != "frontend-v1" || get("reporter") != "destination" {
				if get("destination_workload") == "frontend-v1" && get("response_flags") == "UC" {
					resets++
				}
				continue
			}
			addr := get("downstream_remote_address")
			addr = addr[:len(addr)-6] // the port: 5 digits and the colon
			if i < 5 {
				before[addr] = true
			} else {
				after[addr] = true
			}
		}
	}
	if len(before) != 1 || len(after) != 3 {
		t.Errorf("frontend-v1's addresses: %v before the deploy, %v after; want 1 then 3 new ones", before, after)
	}
	for a := range before {
		if after[a] {
			t.Errorf("address %s survived a new ReplicaSet", a)
		}
	}
	if resets == 0 {
		t.Error("no 503 UC on frontend-v1 while its old pods terminated")
	}
}

func TestLaunchedServiceIsSilentBefore(t *testing.T) {
	start := time.Date(2026, 11, 18, 15, 0, 0, 0, time.UTC)
	m := RealisticMesh()
	m.Launches = []Launch{{Workload: "wishlist-v1", At: 5 * time.Second}}
	// A scan before the launch probes only what is online.
	scan, err := DefaultAttack(models.Scan)
	if err != nil {
		t.Fatal(err)
	}
	scan.Start, scan.End, scan.Strength = start, start.Add(5*time.Second), 10
	g, err := NewWith(m, start, 1, Options{Dynamics: true, Attacks: []Attack{scan}})
	if err != nil {
		t.Fatal(err)
	}
	seen := func(ld plog.Logs) int {
		n := 0
		rs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
		for k := 0; k < rs.Len(); k++ {
			a := rs.At(k).Attributes()
			s, _ := a.Get("source_workload")
			d, _ := a.Get("destination_workload")
			if s.Str() == "wishlist-v1" || d.Str() == "wishlist-v1" {
				n++
			}
		}
		return n
	}
	if n := seen(g.Next(5 * time.Second)); n != 0 {
		t.Errorf("%d records of wishlist-v1 before its launch", n)
	}
	if n := seen(g.Next(5 * time.Second)); n == 0 {
		t.Error("no records of wishlist-v1 after its launch")
	}
}
