package posture

import (
	"fmt"
	"testing"
	"time"

	"github.com/meshguard/meshguard/storage"
)

// benchMesh is a mesh of namespaces x perNS workloads and edges edges:
// each workload calls edges/workloads others, a tenth of the edges carry
// plaintext and a fifth requests without TLS evidence. Every namespace
// has a namespace-wide PeerAuthentication and one workload-level one,
// and an ALLOW policy for half its workloads.
func benchMesh(namespaces, perNS, edges int) ([]storage.PostureEdge, *Cluster) {
	c := &Cluster{RootNamespace: DefaultRootNamespace, Labels: map[string]map[string]string{},
		PeerAuthentications: []PeerAuthentication{{Namespace: DefaultRootNamespace, Name: "default", Mode: ModeStrict}}}
	name := func(i int) (string, string) { return fmt.Sprintf("ns-%03d", i/perNS), fmt.Sprintf("wl-%05d", i) }
	for n := range namespaces {
		ns := fmt.Sprintf("ns-%03d", n)
		c.PeerAuthentications = append(c.PeerAuthentications,
			PeerAuthentication{Namespace: ns, Name: "default", Mode: ModePermissive},
			PeerAuthentication{Namespace: ns, Name: "strict-one", Mode: ModeStrict, Selector: map[string]string{"app": fmt.Sprintf("wl-%05d", n*perNS)},
				PortModes: map[uint16]Mode{9090: ModeDisable}})
		c.AuthorizationPolicies = append(c.AuthorizationPolicies, AuthorizationPolicy{Namespace: ns, Name: "allow-half", Action: "ALLOW",
			Selector: map[string]string{"tier": "backend"}})
	}
	workloads := namespaces * perNS
	for i := range workloads {
		ns, wl := name(i)
		l := map[string]string{"app": wl}
		if i%2 == 0 {
			l["tier"] = "backend"
		}
		c.Labels[ns+"/"+wl] = l
	}
	now := time.Now().UTC()
	out := make([]storage.PostureEdge, edges)
	fan := edges / workloads
	for i := range out {
		src, dst := i/fan, (i/fan+1+i%fan*7)%workloads
		sns, swl := name(src)
		dns, dwl := name(dst)
		e := storage.PostureEdge{SourceWorkload: swl, SourceNamespace: sns, SourcePrincipal: "cluster.local/ns/" + sns + "/sa/" + swl,
			DestinationWorkload: dwl, DestinationNamespace: dns, DestinationPort: 8080, Reporter: "destination",
			MTLS: 100, FirstSeen: now.Add(-time.Hour), LastSeen: now}
		switch {
		case i%10 == 0:
			e.Plaintext, e.SourcePrincipal = 3, ""
			e.PlaintextFirstSeen, e.PlaintextLastSeen = e.FirstSeen, e.LastSeen
			e.SampleRequestIDs = []string{"req-1", "req-2"}
		case i%5 == 0:
			e.Unknown = 7
		}
		out[i] = e
	}
	return out, c
}

// BenchmarkBuild is the posture aggregation at 10k workloads and 1M
// edges (the ClickHouse read is storage's).
func BenchmarkBuild(b *testing.B) {
	edges, cluster := benchMesh(100, 100, 1_000_000)
	to := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p := Build(edges, cluster, to.Add(-24*time.Hour), to, Options{})
		if len(p.Workloads) != 10_000 || p.EdgeCount != 1_000_000 {
			b.Fatalf("%d workloads, %d edges", len(p.Workloads), p.EdgeCount)
		}
	}
}
