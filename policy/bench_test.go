package policy

import (
	"fmt"
	"testing"
	"time"

	"github.com/meshguard/meshguard/storage"
)

// benchEvidence is a mesh of workloads destinations, each called by
// edges/workloads callers (principals of other workloads), one row per
// edge (a method, a path template, a port), every tenth caller also over
// a second method, and a detection about every thousandth edge.
func benchEvidence(workloads, edges int) (Evidence, Options) {
	to := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	from := to.Add(-7 * 24 * time.Hour)
	o := DefaultOptions(from, to)
	names := make([]string, workloads)
	principals := make([]string, workloads)
	for i := range names {
		names[i] = fmt.Sprintf("svc-%05d", i)
		principals[i] = fmt.Sprintf("cluster.local/ns/ns-%03d/sa/svc-%05d", i%100, i)
	}
	perDst := edges / workloads
	ev := Evidence{Traffic: make([]storage.CallerTraffic, 0, edges+edges/10), FirstSeen: make([]storage.EdgeFirstSeen, 0, edges)}
	for d := range workloads {
		ns := fmt.Sprintf("ns-%03d", d%100)
		for c := range perDst {
			src := (d + 1 + c*7) % workloads
			row := storage.CallerTraffic{DestinationNamespace: ns, DestinationWorkload: names[d], Reporter: "destination",
				SourcePrincipal: principals[src], SourceNamespace: fmt.Sprintf("ns-%03d", src%100), SourceWorkload: names[src],
				Attested: true, Method: "GET", PathTemplate: "/api/v1/items/{id}", Port: 8080,
				Requests: uint64(10 + c), FirstSeen: from.Add(time.Duration(c) * time.Minute), LastSeen: to.Add(-time.Minute)}
			row.Detected = (d*perDst+c)%1000 == 0
			ev.Traffic = append(ev.Traffic, row)
			if c%10 == 0 {
				row.Method, row.PathTemplate, row.Detected = "POST", "/api/v1/items", false
				ev.Traffic = append(ev.Traffic, row)
			}
			ev.FirstSeen = append(ev.FirstSeen, storage.EdgeFirstSeen{DestinationNamespace: ns, DestinationWorkload: names[d],
				SourcePrincipal: row.SourcePrincipal, SourceNamespace: row.SourceNamespace, SourceWorkload: row.SourceWorkload, FirstSeen: row.FirstSeen})
		}
	}
	return ev, o
}

// BenchmarkSuggest is the suggestion step (evidence in memory, as the
// queries return it) at 10k workloads and 1M edges.
func BenchmarkSuggest(b *testing.B) {
	ev, o := benchEvidence(10_000, 1_000_000)
	b.ReportAllocs()
	b.ResetTimer()
	var rules int
	for b.Loop() {
		ss := Suggest(ev, o)
		rules = 0
		for _, s := range ss {
			rules += len(s.Rules)
		}
	}
	b.ReportMetric(float64(rules), "rules")
	b.ReportMetric(float64(len(ev.Traffic)), "rows")
}
