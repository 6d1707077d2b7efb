package scenario

import (
	"strings"
	"testing"
	"time"

	"github.com/meshguard/meshguard/models"
)

// The mixed mesh reports as its proxies are configured: label form with
// each side's own identity only, the stock text line alone, text with
// k8sattributes resources, otlp_json from one collector, one side only
// for some proxies, and callers outside the mesh only on the destination
// side, in plaintext.
func TestMixedMeshReportsAsConfigured(t *testing.T) {
	g, err := NewWith(MixedMesh(6*time.Hour), wednesday, 1, Options{Dynamics: true})
	if err != nil {
		t.Fatal(err)
	}
	g.Skip(70 * time.Minute)
	type seen struct{ text, labels, k8s, json, source, destination int }
	by := map[string]*seen{}
	for range 30 {
		for _, b := range g.NextBatches(time.Second) {
			for i := 0; i < b.Logs.ResourceLogs().Len(); i++ {
				rl := b.Logs.ResourceLogs().At(i)
				res := rl.Resource().Attributes()
				recs := rl.ScopeLogs().At(0).LogRecords()
				for j := 0; j < recs.Len(); j++ {
					lr := recs.At(j)
					body := lr.Body().Str()
					if !strings.HasPrefix(body, "[2026-11-18T11:") {
						t.Fatalf("body is not Istio's default line: %q", body)
					}
					// Whose proxy: the resource, the labels, or the
					// addresses of the line.
					w := ""
					if v, ok := res.Get("k8s.deployment.name"); ok {
						w = v.Str()
					}
					rep, _ := lr.Attributes().Get("reporter")
					if v, ok := lr.Attributes().Get("source_workload"); ok {
						w = v.Str()
					}
					if v, ok := lr.Attributes().Get("destination_workload"); ok {
						w = v.Str()
					}
					if w == "" {
						w = "text"
					}
					s := by[w]
					if s == nil {
						s = &seen{}
						by[w] = s
					}
					switch {
					case res.Len() > 0:
						s.k8s++
					case lr.Attributes().Len() == 0:
						s.text++
					default:
						s.labels++
						if _, ok := lr.Attributes().Get("destination_workload"); ok && rep.Str() == "source" {
							t.Errorf("a client-side label record names the destination workload: %v", lr.Attributes().AsRaw())
						}
					}
					if b.JSON {
						s.json++
					}
					if strings.Contains(body, " inbound|") {
						s.destination++
					} else {
						s.source++
					}
					if strings.Contains(body, "192.168.20.7") && (!strings.Contains(body, " inbound|") || !strings.HasSuffix(body, " - default")) {
						t.Errorf("the VM's request is not a plaintext, destination-side record: %q", body)
					}
				}
			}
		}
	}
	for _, c := range []struct {
		w    string
		want func(*seen) bool
	}{
		{"frontend-v1", func(s *seen) bool { return s.labels > 0 && s.text == 0 && s.json == 0 }},
		{"users-v1", func(s *seen) bool { return s.labels > 0 && s.json == s.labels }},
		{"inventory-v1", func(s *seen) bool { return s.k8s > 0 && s.labels == 0 }},
		{"shipping-v1", func(s *seen) bool { return s.k8s > 0 && s.source == 0 }},
		{"events-v1", func(s *seen) bool { return s.k8s > 0 && s.json == s.k8s }},
		{"text", func(s *seen) bool { return s.text > 0 }},
	} {
		if s := by[c.w]; s == nil || !c.want(s) {
			t.Errorf("%s: %+v", c.w, s)
		}
	}
}

// Pods restart at new addresses; coupons-v1's new pod gets the address
// ratings-v1's pod released two minutes before, and traffic follows the
// pods that run.
func TestMixedInventoryRestartsAndReusesAddresses(t *testing.T) {
	g, err := NewWith(MixedMesh(6*time.Hour), wednesday, 1, Options{Dynamics: true})
	if err != nil {
		t.Fatal(err)
	}
	pods := map[string][]Pod{}
	for _, p := range g.Pods() {
		pods[p.Workload] = append(pods[p.Workload], p)
	}
	if _, ok := pods["legacy-erp"]; ok {
		t.Error("the VM is in the pod inventory")
	}
	r, c := pods["ratings-v1"], pods["coupons-v1"]
	if len(r) < 2 || len(c) < 2 {
		t.Fatalf("ratings %d pods, coupons %d", len(r), len(c))
	}
	if c[1].IP != r[0].IP || !c[1].From.Equal(wednesday.Add(142*time.Minute)) || !r[0].To.Equal(wednesday.Add(140*time.Minute)) {
		t.Errorf("coupons' new pod %+v does not reuse ratings' old address %+v", c[1], r[0])
	}
	if c[1].Name == c[0].Name || c[1].ReplicaSet == c[0].ReplicaSet || !strings.HasPrefix(c[1].Name, "coupons-v1-") {
		t.Errorf("a restart kept its pod or ReplicaSet name: %s, %s", c[0].Name, c[1].Name)
	}
	if got := g.addr("coupons-v1", wednesday.Add(150*time.Minute)); got != r[0].IP {
		t.Errorf("coupons-v1 after its restart sends from %v, want %v", got, r[0].IP)
	}
	if got := g.addr("ratings-v1", wednesday.Add(150*time.Minute)); got == r[0].IP {
		t.Error("ratings-v1 still at its old address")
	}
}

// The compromised leaf's requests are mostly 500s from fraud-v1, a
// workload that only ever was called.
func TestLeafAttackIsAStreamOf500s(t *testing.T) {
	start := wednesday.Add(time.Hour)
	atk := MixedAttacks(1)[1]
	atk.Start, atk.End = start, start.Add(time.Minute)
	g, err := NewWith(MixedMesh(3*time.Hour), wednesday, 1, Options{Dynamics: true, Attacks: []Attack{atk}})
	if err != nil {
		t.Fatal(err)
	}
	g.Skip(time.Hour)
	var fromFraud, errors int
	for range 6 {
		ld := g.Next(10 * time.Second)
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			recs := ld.ResourceLogs().At(i).ScopeLogs().At(0).LogRecords()
			for j := 0; j < recs.Len(); j++ {
				body := recs.At(j).Body().Str()
				if strings.Contains(body, "outbound|6379||sessions.identity") && strings.Contains(body, g.IP("billing/fraud-v1").String()+":") {
					fromFraud++
					if strings.Contains(body, `" 500 `) {
						errors++
					}
				}
			}
		}
	}
	if fromFraud < 60 || errors < fromFraud*3/4 {
		t.Errorf("%d client-side requests from fraud-v1 to sessions, %d of them 500", fromFraud, errors)
	}
	bad := MixedAttacks(1)[1]
	bad.Kind, bad.Start, bad.End = models.Scan, start, start.Add(time.Minute)
	if _, err := NewWith(MixedMesh(time.Hour), wednesday, 1, Options{Attacks: []Attack{bad}}); err == nil {
		t.Error("the leaf variant accepted on a scan")
	}
}
