package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/posture"
	"github.com/meshguard/meshguard/report"
	"github.com/meshguard/meshguard/storage"
)

// spans is a PostureSource and ReportSource that builds the real posture
// and report of one plaintext edge with a hostile name, and records the
// spans it was asked for.
type spans struct{ asked [][2]time.Time }

func (s *spans) Posture(_ context.Context, from, to time.Time) (*posture.Posture, error) {
	s.asked = append(s.asked, [2]time.Time{from, to})
	edges := []storage.PostureEdge{{SourceWorkload: hostile, SourceNamespace: "shop", DestinationWorkload: "cart",
		DestinationNamespace: "shop", DestinationPort: 8080, Reporter: "destination", Plaintext: 3,
		FirstSeen: from, LastSeen: to, PlaintextFirstSeen: from, PlaintextLastSeen: to}}
	return posture.Build(edges, nil, from, to, posture.Options{}), nil
}

func (s *spans) Report(ctx context.Context, from, to time.Time) (*report.Report, error) {
	p, _ := s.Posture(ctx, from, to)
	return report.Build(p, nil, nil, nil, nil, to), nil
}

func TestPostureAndReportRoutes(t *testing.T) {
	src := &spans{}
	e := newEnv(t, func(_ *Config, d *Deps) { d.Posture, d.Report = src, src })
	if w := do(e.h, http.MethodGet, "/api/v1/posture", "", nil); w.Code != http.StatusUnauthorized {
		t.Errorf("anonymous posture: %d, want 401", w.Code)
	}
	w := do(e.h, http.MethodGet, "/api/v1/posture?since=2h", viewerToken, nil)
	var p posture.Posture
	if err := json.Unmarshal(w.Body.Bytes(), &p); w.Code != http.StatusOK || err != nil || len(p.PlaintextEdges) != 1 {
		t.Fatalf("viewer posture: %d %v %s", w.Code, err, w.Body)
	}
	if got := src.asked[0][1].Sub(src.asked[0][0]); got != 2*time.Hour {
		t.Errorf("since=2h asked for a span of %v", got)
	}
	if strings.Contains(w.Body.String(), "<img") {
		t.Errorf("posture JSON carries raw HTML")
	}
	for _, q := range []string{"since=0s", "since=8d", "since=soon"} {
		if w := do(e.h, http.MethodGet, "/api/v1/posture?"+q, viewerToken, nil); w.Code != http.StatusBadRequest {
			t.Errorf("posture?%s: %d, want 400", q, w.Code)
		}
	}

	w = do(e.h, http.MethodGet, "/api/v1/report?format=html&from=2026-01-01&to=2026-01-31", viewerToken, nil)
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "text/html; charset=utf-8" ||
		!strings.HasPrefix(w.Header().Get("Content-Disposition"), "attachment") || strings.Contains(w.Body.String(), "<img") {
		t.Errorf("report html: %d %v, raw HTML %v", w.Code, w.Header(), strings.Contains(w.Body.String(), "<img"))
	}
	last := src.asked[len(src.asked)-1]
	if !last[0].Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) || !last[1].Equal(time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("report asked for %v", last)
	}
	w = do(e.h, http.MethodGet, "/api/v1/report", viewerToken, nil)
	var rep report.Report
	if err := json.Unmarshal(w.Body.Bytes(), &rep); w.Code != http.StatusOK || err != nil || len(rep.Controls) == 0 {
		t.Errorf("report json: %d %v", w.Code, err)
	}
	for _, q := range []string{"format=doc", "from=2026-02-01&to=2026-01-01", "from=2025-01-01&to=2026-01-01", "to=tomorrow"} {
		if w := do(e.h, http.MethodGet, "/api/v1/report?"+q, viewerToken, nil); w.Code != http.StatusBadRequest {
			t.Errorf("report?%s: %d, want 400", q, w.Code)
		}
	}

	none := newEnv(t, nil)
	for _, path := range []string{"/api/v1/posture", "/api/v1/report"} {
		if w := do(none.h, http.MethodGet, path, viewerToken, nil); w.Code != http.StatusServiceUnavailable {
			t.Errorf("%s without a source: %d, want 503", path, w.Code)
		}
	}
}

// TestPostureFromTheMemoryStore: the demo's store answers the posture
// (without a cluster) instead of a 503.
func TestPostureFromTheMemoryStore(t *testing.T) {
	var mem *storage.Memory
	e := newEnv(t, func(_ *Config, d *Deps) {
		mem = d.Store.(*storage.Memory)
		d.Posture = &posture.Reader{Edges: mem}
	})
	plain := models.Flow{ID: models.NewFlowIDBase("api-test", 1, e.now.UnixNano()).ID(0), TimestampMs: e.now.Add(-time.Minute).UnixMilli(),
		Reporter: models.ReporterDestination, Source: models.Source{Workload: "legacy", Namespace: "shop"},
		Destination: models.Destination{Workload: "cart", Namespace: "shop", Port: 8080}, TLS: models.TLSPlaintext, Count: 3, RequestID: "req-plain"}
	if err := mem.ConsumeFlows(context.Background(), []models.Flow{plain}); err != nil {
		t.Fatal(err)
	}
	w := do(e.h, http.MethodGet, "/api/v1/posture?since=1h", viewerToken, nil)
	var p posture.Posture
	if err := json.Unmarshal(w.Body.Bytes(), &p); w.Code != http.StatusOK || err != nil {
		t.Fatalf("posture from memory: %d %v %s", w.Code, err, w.Body)
	}
	if len(p.Edges) != 5 || len(p.PlaintextEdges) != 1 {
		t.Fatalf("posture from memory: %d edges, %d plaintext; want the 4 seeded and legacy -> cart, plaintext", len(p.Edges), len(p.PlaintextEdges))
	}
	pe := p.PlaintextEdges[0]
	if pe.Source.Workload != "legacy" || pe.Port != 8080 || len(pe.SampleRequestIDs) != 1 || pe.SampleRequestIDs[0] != "req-plain" {
		t.Errorf("plaintext edge %+v, want legacy -> cart:8080 with its request id", pe)
	}
}
