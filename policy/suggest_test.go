package policy

import (
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/storage"
)

// Each dimension is constrained only when stable; telemetry no policy may
// carry is left out (and counted in the blast radius), never rendered.
func TestSuggestOperationsAndRendering(t *testing.T) {
	to := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	o := DefaultOptions(to.Add(-7*24*time.Hour), to)
	week, lastHalfHour := o.From.Add(time.Hour), to.Add(-30*time.Minute)
	api, tcp := "cluster.local/ns/shop/sa/web", "cluster.local/ns/ops/sa/backup"
	row := func(p, method, tpl string, port uint16, n uint64, first time.Time) storage.CallerTraffic {
		return storage.CallerTraffic{DestinationNamespace: "billing", DestinationWorkload: "payments", Reporter: "destination",
			SourcePrincipal: p, Attested: true, Method: method, PathTemplate: tpl, Port: port, Requests: n, FirstSeen: first, LastSeen: to.Add(-time.Minute)}
	}
	ev := Evidence{Traffic: []storage.CallerTraffic{
		row(api, "GET", "/v1/items/{id}", 8080, 500, week),
		row(api, "GET", "/v1/items", 8080, 50, week),
		row(api, "POST", "/v1/orders", 8080, 40, week),
		row(api, "POST", "/v1/refunds", 8080, 3, lastHalfHour), // new: POST's paths are not settled
		row(api, "GET", "/x\n- evil: true", 8080, 7, week),     // not a path a policy may carry
		row(tcp, "", "", 5432, 90, week),
		{DestinationNamespace: "billing", DestinationWorkload: "payments", Reporter: "destination",
			SourceNamespace: "shop", SourceWorkload: "legacy", Requests: 11, FirstSeen: week, LastSeen: to}, // plaintext
	}}
	ss := Suggest(ev, o)
	if len(ss) != 1 || len(ss[0].Rules) != 2 {
		t.Fatalf("suggestions %+v", ss)
	}
	s := ss[0]
	backup, web := s.Rules[0], s.Rules[1]
	want := []Operation{{Methods: []string{"GET"}, Paths: []string{"/v1/items", "/v1/items/*"}, Ports: []string{"8080"}},
		{Methods: []string{"POST"}, Ports: []string{"8080"}}}
	if !slices.EqualFunc(web.Operations, want, func(a, b Operation) bool {
		return slices.Equal(a.Methods, b.Methods) && slices.Equal(a.Paths, b.Paths) && slices.Equal(a.Ports, b.Ports)
	}) {
		t.Errorf("web's operations %+v, want %+v", web.Operations, want)
	}
	if !slices.ContainsFunc(web.Open, func(s string) bool { return strings.HasPrefix(s, "paths of POST") }) {
		t.Errorf("web's open dimensions %v: POST's paths should be open", web.Open)
	}
	if len(backup.Operations) != 1 || backup.Operations[0].Methods != nil || !slices.Equal(backup.Operations[0].Ports, []string{"5432"}) {
		t.Errorf("TCP caller's operations %+v: want port 5432 only", backup.Operations)
	}
	if s.BlastRequests != 7+11 || s.BlastCallers != 2 {
		t.Errorf("blast radius %d from %d callers, want the 7 unrenderable and 11 plaintext requests from 2", s.BlastRequests, s.BlastCallers)
	}
	if len(s.NotAdmitted) != 1 || s.NotAdmitted[0].Reason != ExcludedUnattested {
		t.Errorf("not admitted %+v", s.NotAdmitted)
	}
	if web.Confidence <= backup.Confidence || web.Confidence > 1 {
		t.Errorf("confidence web %v, backup %v: more evidence, more confidence", web.Confidence, backup.Confidence)
	}

	s.Selector = map[string]string{"app": "payments"}
	obj, err := s.Object("prod", true, to)
	if err != nil {
		t.Fatal(err)
	}
	b, err := obj.YAML()
	if err != nil {
		t.Fatal(err)
	}
	var back AuthorizationPolicy
	if err := yaml.UnmarshalStrict(b, &back); err != nil || strings.Contains(string(b), "evil") {
		t.Fatalf("rendered %s: %v", b, err)
	}
	if back.Spec.Action != "ALLOW" || back.Metadata.Annotations["istio.io/dry-run"] != "true" || len(back.Spec.Rules) != 2 ||
		back.Metadata.Annotations["meshguard.io/blast-radius-requests"] != "18" {
		t.Errorf("rendered policy %+v", back)
	}
	if _, err := (Suggestion{Namespace: "billing", Workload: "payments", Name: "x", Rules: s.Rules}).Object("prod", true, to); err == nil {
		t.Error("a policy without a selector was rendered: it would apply to the whole namespace")
	}
}

// A caller whose edge is younger than the learning period, and one whose
// every request was detected, are not admitted.
func TestSuggestLearningAndDetected(t *testing.T) {
	to := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	o := DefaultOptions(to.Add(-24*time.Hour), to)
	mk := func(p string, first time.Time, detected bool) storage.CallerTraffic {
		return storage.CallerTraffic{DestinationNamespace: "a", DestinationWorkload: "b", Reporter: "destination",
			SourcePrincipal: p, Attested: true, Method: "GET", PathTemplate: "/", Port: 80, Requests: 10, FirstSeen: first, LastSeen: to, Detected: detected}
	}
	old, young, bad := "cluster.local/ns/a/sa/old", "cluster.local/ns/a/sa/young", "cluster.local/ns/x/sa/bad"
	ev := Evidence{Traffic: []storage.CallerTraffic{
		mk(old, o.From, false), mk(young, to.Add(-10*time.Minute), false), mk(bad, o.From, true),
	}, FirstSeen: []storage.EdgeFirstSeen{{DestinationNamespace: "a", DestinationWorkload: "b", SourcePrincipal: young, FirstSeen: to.Add(-20 * time.Minute)}},
		Detections: []storage.DetectionRow{{DetectionID: "d1", SourcePrincipal: bad, DestinationNamespace: "a", DestinationWorkload: "b"}}}
	s := Suggest(ev, o)[0]
	if len(s.Rules) != 1 || s.Rules[0].Principal != old {
		t.Fatalf("rules %+v", s.Rules)
	}
	reasons := map[string]string{}
	for _, c := range s.NotAdmitted {
		reasons[c.Caller] = c.Reason + strings.Join(c.Detections, ",")
	}
	if reasons[young] != ExcludedLearning || reasons[bad] != ExcludedDetected+"d1" {
		t.Errorf("not admitted %v", reasons)
	}
}
