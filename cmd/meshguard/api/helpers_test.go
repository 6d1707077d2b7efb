package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/respond"
	"github.com/meshguard/meshguard/storage"
	"github.com/meshguard/meshguard/test/testenv"
)

const (
	viewerToken   = "viewer-token-0123456789abcdef"
	operatorToken = "operator-token-0123456789abcdef"
	// hostile is attacker-controlled telemetry: a path, a workload name.
	hostile = `<img src=x onerror=alert(1)>`
)

// writeTokens writes a tokens file with a viewer "vera" and an operator
// "otto".
func writeTokens(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens")
	data := "# meshguard API tokens\n\n" + viewerToken + " viewer vera\n" + operatorToken + " operator otto\n"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// call is one Operator call the fake saw.
type call struct {
	verb, id, actor string
	by              time.Duration
}

// fakeOperator records calls; ids other than known are not found.
type fakeOperator struct {
	mu    sync.Mutex
	calls []call
	known string
	fail  error // returned by every call when set
}

func (f *fakeOperator) do(verb, id, actor string, by time.Duration) (models.Action, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call{verb, id, actor, by})
	if f.fail != nil {
		return models.Action{}, f.fail
	}
	if id != f.known {
		return models.Action{}, fmt.Errorf("%w: %q", respond.ErrNotFound, id)
	}
	a := models.Action{ID: id, DetectionID: "det-1", Kind: models.ActionBlockEdge, Mode: models.ModeEnforce, Actor: actor, Target: "shop/cart"}
	switch verb {
	case "approve":
		a.State = models.StatePromoted
	case "revoke":
		a.State = models.StateRevoked
	case "extend":
		a.State = models.StateExtended
	}
	return a, nil
}

func (f *fakeOperator) Approve(_ context.Context, id, actor string) (models.Action, error) {
	return f.do("approve", id, actor, 0)
}
func (f *fakeOperator) Revoke(_ context.Context, id, actor string) (models.Action, error) {
	return f.do("revoke", id, actor, 0)
}
func (f *fakeOperator) Extend(_ context.Context, id, actor string, by time.Duration) (models.Action, error) {
	return f.do("extend", id, actor, by)
}
func (f *fakeOperator) List(context.Context) ([]models.Action, error) {
	return []models.Action{{ID: f.known, DetectionID: "det-1", Kind: models.ActionBlockEdge, Mode: models.ModeDryRun,
		State: models.StateApplied, Target: "shop/" + hostile, ExpiresAt: time.Now().Add(time.Hour)}}, nil
}

func (f *fakeOperator) Calls() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

// env is a server over seeded Memory data.
type env struct {
	srv   *Server
	h     http.Handler
	store *storage.Memory
	audit *storage.Memory
	op    *fakeOperator
	logs  *testenv.SyncBuffer
	now   time.Time
}

// newEnv builds a server in token mode over seeded data; change lets a
// test adjust the config and deps first.
func newEnv(t *testing.T, change func(*Config, *Deps)) *env {
	t.Helper()
	e := &env{store: storage.NewMemory(1000), audit: storage.NewMemory(1), op: &fakeOperator{known: "act-1"}, logs: &testenv.SyncBuffer{}, now: time.Now().UTC()}
	seed(t, e.store, e.now)
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	// httptest.NewRequest's Host.
	cfg.PublicHosts = []string{"example.com"}
	cfg.Auth.TokensFile = writeTokens(t)
	deps := Deps{
		Store: e.store, Operator: e.op, Registry: prometheus.NewRegistry(), ActionWriter: e.audit,
		Log: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if change != nil {
		change(&cfg, &deps)
	}
	srv, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	e.srv, e.h = srv, srv.Handler()
	t.Cleanup(func() {
		// No token ever reaches the log.
		for _, tok := range []string{viewerToken, operatorToken} {
			if strings.Contains(e.logs.String(), tok) {
				t.Errorf("a token is in the log:\n%s", e.logs.String())
			}
		}
	})
	return e
}

// seed: a small mesh in the last minutes (cart -> payments, web -> cart,
// a hostile-named caller -> cart), a detection about web -> cart whose
// evidence holds hostile text, an older one, and an audit row.
func seed(t *testing.T, m *storage.Memory, now time.Time) {
	t.Helper()
	ctx := context.Background()
	base := models.NewFlowIDBase("api-test", 0, now.UnixNano())
	var flows []models.Flow
	add := func(src models.Source, dstNS, dstWL string, code uint16, n int) {
		for range n {
			flows = append(flows, models.Flow{
				ID: base.ID(len(flows)), TimestampMs: now.Add(-2 * time.Minute).UnixMilli(), Reporter: models.ReporterDestination,
				Source: src, Destination: models.Destination{Namespace: dstNS, Workload: dstWL}, Path: "/" + hostile,
				ResponseCode: code, Count: 1,
			})
		}
	}
	add(models.Source{Workload: "cart", Namespace: "shop", Principal: "cluster.local/ns/shop/sa/cart"}, "payments", "payments", 200, 5)
	add(models.Source{Workload: "web", Namespace: "frontend", Principal: "cluster.local/ns/frontend/sa/web"}, "shop", "cart", 401, 7)
	add(models.Source{Workload: hostile, Namespace: "shop"}, "shop", "cart", 200, 2)
	add(models.Source{IP: netip.MustParseAddr("10.9.8.7")}, "payments", "payments", 403, 1)
	if err := m.ConsumeFlows(ctx, flows); err != nil {
		t.Fatal(err)
	}
	evidence := `{"summary":"credential stuffing on ` + hostile + `","features":[{"feature":"401_403","expected":0.5,"observed":7,"score":12}],` +
		`"top_paths":[{"value":"/login/` + hostile + `","count":7}]}`
	for _, d := range []storage.DetectionRow{
		{DetectionID: "det-1", DetectedAt: now.Add(-time.Minute), WindowStart: now.Add(-3 * time.Minute), WindowEnd: now.Add(-time.Minute),
			Kind: "credential_stuffing", Severity: "high", Score: 12, SourceWorkload: "web", SourceNamespace: "frontend",
			SourcePrincipal: "cluster.local/ns/frontend/sa/web", DestinationWorkload: "cart", DestinationNamespace: "shop", Evidence: evidence},
		{DetectionID: "det-old", DetectedAt: now.Add(-2 * time.Hour), WindowStart: now.Add(-3 * time.Hour), WindowEnd: now.Add(-2 * time.Hour),
			Kind: "scan", Severity: "low", Score: 3, SourceWorkload: "cart", SourceNamespace: "shop", Evidence: `{"summary":"old"}`},
	} {
		if err := m.WriteDetection(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.WriteAction(ctx, storage.ActionRow{ActionID: "act-1", At: now.Add(-time.Minute), DetectionID: "det-1", Kind: "block_edge",
		Mode: "dry-run", State: "applied", Actor: "meshguard", Reason: "credential stuffing", Target: "frontend/web -> shop/cart"}); err != nil {
		t.Fatal(err)
	}
}

// do sends a request to h; token "" sends none.
func do(h http.Handler, method, target, token string, header http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	for k, vs := range header {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}
