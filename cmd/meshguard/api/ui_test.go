package api

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/detect"
	"github.com/meshguard/meshguard/ingest"
	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/policy"
	"github.com/meshguard/meshguard/posture"
	"github.com/meshguard/meshguard/respond"
	"github.com/meshguard/meshguard/scenario"
	"github.com/meshguard/meshguard/storage"
	"github.com/meshguard/meshguard/test/testenv"
	"github.com/meshguard/meshguard/test/zerotrust"
)

// chromium returns Debian's chromium (or MESHGUARD_TEST_CHROMIUM),
// installing it through test/infra/chromium.sh when missing. Without it
// the test fails under CI and skips elsewhere, saying how to install it.
func chromium(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("MESHGUARD_TEST_CHROMIUM")
	if bin == "" {
		bin = "/usr/bin/chromium"
	}
	script := filepath.Join(testenv.RepoRoot(t), "test", "infra", "chromium.sh")
	out, err := exec.Command("bash", script, "start").CombinedOutput()
	if err == nil {
		if _, err = os.Stat(bin); err == nil {
			return bin
		}
	}
	msg := "headless Chromium for the UI test: " + script + " start: " + err.Error() + "\n" + tail(string(out), 2000) +
		"\ninstall it with `bash test/infra/chromium.sh start` (apt-get install chromium, as root) or set MESHGUARD_TEST_CHROMIUM"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// run runs one action and returns its value, failing the test on error.
func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`)
	return "'" + r.Replace(s) + "'"
}

// browser is a headless Chromium tab at 1400x1000 with the page's
// dialogs recorded (and accepted).
type browser struct {
	ctx     context.Context
	mu      sync.Mutex
	dialogs []string
}

func newBrowser(t *testing.T, bin string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1400, 1000))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancel)
	// A bound on the whole browser session, so that a broken page fails
	// the test instead of hanging it; no step is timed.
	ctx, cancelTimeout := context.WithTimeout(ctx, 5*time.Minute)
	t.Cleanup(cancelTimeout)
	b := &browser{ctx: ctx}
	if err := chromedp.Listen(ctx, func(ev any) {
		if d, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			b.mu.Lock()
			b.dialogs = append(b.dialogs, d.Message)
			b.mu.Unlock()
			go func() {
				_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
			}()
		}
	}); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1400, 1000)); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *browser) Dialogs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.dialogs...)
}

// signIn opens the page, signs in with token as a person would (typing it
// and clicking: form.submit() would skip the page's handler) and waits
// for the incidents and the laid-out graph.
func (b *browser) signIn(t *testing.T, url, token string) {
	t.Helper()
	if err := chromedp.Do(b.ctx,
		chromedp.Navigate(url+"/"),
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS(`#login button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#incidents li`)),
	); err != nil {
		t.Fatalf("page did not render: %v", err)
	}
	b.waitGraph(t, "")
}

// waitGraph waits until a graph was rendered after the one numbered
// before (#graph's data-rendered; "" for any) and the status line says
// the page updated.
func (b *browser) waitGraph(t *testing.T, before string) {
	t.Helper()
	js := `(() => { const g = document.getElementById('graph'); const s = g.dataset.rendered;
		return !!(g.cy && s && s !== ` + jsString(before) + ` && document.getElementById('status').textContent.startsWith('updated')); })()`
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(0))); err != nil {
		t.Fatalf("the graph was not rendered: %v", err)
	}
}

// setSince picks a time range in the graph's filter and waits for the
// graph of it.
func (b *browser) setSince(t *testing.T, since string) {
	t.Helper()
	before := run(t, b.ctx, chromedp.Evaluate[string](`document.getElementById('graph').dataset.rendered || ''`))
	run(t, b.ctx, chromedp.Evaluate[bool](`(() => { const s = document.getElementById('f-since'); s.value = `+jsString(since)+
		`; s.dispatchEvent(new Event('change')); return true; })()`))
	b.waitGraph(t, before)
}

// screenshot saves the viewport as PNG in dir and logs where.
func (b *browser) screenshot(t *testing.T, dir, name string) string {
	t.Helper()
	png := run(t, b.ctx, chromedp.CaptureScreenshot())
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
	return path
}

// screenshotDir is MESHGUARD_TEST_SCREENSHOTS when set (kept, for review),
// else the test's temp dir.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("MESHGUARD_TEST_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// graphView is what the laid-out graph shows, read from Cytoscape.
type graphView struct {
	Nodes      int            `json:"nodes"`
	ByKind     map[string]int `json:"by_kind"`
	Namespaces int            `json:"namespaces"`
	Edges      int            `json:"edges"`
	Anomalous  int            `json:"anomalous"`
	// Overlaps counts pairs of node labels whose boxes intersect;
	// NodeOverlaps pairs of node bodies.
	Overlaps     int `json:"overlaps"`
	NodeOverlaps int `json:"node_overlaps"`
	// BoxOverlaps counts pairs of namespace boxes that intersect.
	BoxOverlaps int      `json:"box_overlaps"`
	Zoom        float64  `json:"zoom"`
	Labels      []string `json:"labels"`
	// OnScreen: every node's centre is inside the graph's box.
	OnScreen bool `json:"on_screen"`
}

const graphViewJS = `(() => {
	const cy = document.getElementById('graph').cy;
	const nodes = cy.nodes().filter((n) => !n.hasClass('ns'));
	const byKind = {};
	nodes.forEach((n) => { const k = n.data('node').kind; byKind[k] = (byKind[k] || 0) + 1; });
	const hit = (a, b) => a.x1 < b.x2 && b.x1 < a.x2 && a.y1 < b.y2 && b.y1 < a.y2;
	const labels = nodes.map((n) => n.boundingBox({ includeNodes: false, includeEdges: false, includeLabels: true }));
	const bodies = nodes.map((n) => n.boundingBox({ includeNodes: true, includeEdges: false, includeLabels: false }));
	let overlaps = 0, nodeOverlaps = 0;
	for (let i = 0; i < nodes.length; i++) for (let j = i + 1; j < nodes.length; j++) {
		if (hit(labels[i], labels[j])) overlaps++;
		if (hit(bodies[i], bodies[j])) nodeOverlaps++;
	}
	const boxes = cy.nodes('.ns').map((n) => n.boundingBox({ includeLabels: false }));
	let boxOverlaps = 0;
	for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) if (hit(boxes[i], boxes[j])) boxOverlaps++;
	const ext = cy.extent();
	const onScreen = nodes.every((n) => { const p = n.position(); return p.x >= ext.x1 && p.x <= ext.x2 && p.y >= ext.y1 && p.y <= ext.y2; });
	return { nodes: nodes.length, by_kind: byKind, namespaces: cy.nodes('.ns').length, edges: cy.edges().length,
		anomalous: cy.edges('.anomalous').length, overlaps, node_overlaps: nodeOverlaps, box_overlaps: boxOverlaps, zoom: cy.zoom(),
		labels: nodes.map((n) => n.data('label')), on_screen: onScreen };
})()`

func (b *browser) graph(t *testing.T) graphView {
	t.Helper()
	return run(t, b.ctx, chromedp.Evaluate[graphView](graphViewJS))
}

// checkOverlapCount proves graphViewJS's counts can fail: two nodes (and
// their labels) moved onto each other count, and are put back.
func (b *browser) checkOverlapCount(t *testing.T, before graphView) {
	t.Helper()
	run(t, b.ctx, chromedp.Evaluate[bool](`(() => { const ns = document.getElementById('graph').cy.nodes().filter((n) => !n.hasClass('ns'));
		window.__kept = ns[1].position(); ns[1].position(ns[0].position()); return true; })()`))
	moved := b.graph(t)
	run(t, b.ctx, chromedp.Evaluate[bool](`(() => { const ns = document.getElementById('graph').cy.nodes().filter((n) => !n.hasClass('ns'));
		ns[1].position(window.__kept); return true; })()`))
	if moved.Overlaps <= before.Overlaps || moved.NodeOverlaps <= before.NodeOverlaps {
		t.Errorf("two nodes on one spot: %d label and %d node overlaps, as many as before (%d, %d): the count sees nothing",
			moved.Overlaps, moved.NodeOverlaps, before.Overlaps, before.NodeOverlaps)
	}
}

// TestPageInChromium loads the dashboard in headless Chromium against
// seeded data whose telemetry is hostile HTML: the incidents and graph
// render, the evidence shows the hostile text as text, approve sends the
// CSRF header from the same origin, and a viewer gets no buttons.
func TestPageInChromium(t *testing.T) {
	bin := chromium(t)
	e := newEnv(t, nil)

	var mu sync.Mutex
	var posts []http.Header
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			mu.Lock()
			posts = append(posts, r.Header.Clone())
			mu.Unlock()
		}
		e.h.ServeHTTP(w, r)
	}))
	defer ts.Close()

	b := newBrowser(t, bin)
	b.signIn(t, ts.URL, operatorToken)
	ctx := b.ctx
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

	who := run(t, ctx, chromedp.Text(css("#who")))
	stored := run(t, ctx, chromedp.Evaluate[string](`sessionStorage.getItem('meshguard.token')`))
	if who != "otto (operator)" || stored != operatorToken {
		t.Errorf("signed in as %q, token kept %v", who, stored == operatorToken)
	}
	// The seed: cart, payments, web, a hostile-named workload and an IP
	// caller; four edges, web -> cart under a detection.
	g := b.graph(t)
	if g.Nodes != 5 || g.ByKind["workload"] != 4 || g.ByKind["ip"] != 1 || g.Edges != 4 || g.Anomalous != 1 {
		t.Errorf("graph %+v; want 5 nodes (4 workloads, 1 IP), 4 edges, 1 anomalous", g)
	}
	if !slices.Contains(g.Labels, hostile) {
		t.Errorf("the node named with hostile text is not labelled with it as text: %q", g.Labels)
	}
	incidents := run(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#incidents li.incident')].map((li) => li.dataset.id)`))
	if !slices.Equal(incidents, []string{"det-1", "det-old"}) {
		t.Errorf("incidents listed %q; want det-1, det-old", incidents)
	}

	// Evidence: the hostile strings appear as text; no element comes of them.
	if err := chromedp.Do(ctx,
		chromedp.Click(css(`#incidents li.incident[data-id="det-1"] .inc-summary`)),
		chromedp.WaitVisible(css(`#incidents li.incident.selected[data-id="det-1"] .inc-details`)),
	); err != nil {
		t.Fatal(err)
	}
	text := run(t, ctx, chromedp.Evaluate[string](`document.querySelector('#incidents li.incident[data-id="det-1"]').textContent`))
	imgs := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('img').length`))
	if !strings.Contains(text, "credential stuffing on "+hostile) || !strings.Contains(text, "/login/"+hostile) {
		t.Errorf("the incident does not show the hostile text as text:\n%s", text)
	}
	if imgs != 0 {
		t.Errorf("telemetry became markup: %d <img> in the page", imgs)
	}

	// Approve, from the incident's action line: the CSRF header,
	// same-origin, acting as otto.
	approve := `#incidents li.incident[data-id="det-1"] .action-line[data-id="act-1"] button.op-approve`
	if err := chromedp.Do(ctx, chromedp.WaitVisible(css(approve)), chromedp.Click(css(approve))); err != nil {
		t.Fatal(err)
	}
	statusText := run(t, ctx, chromedp.Poll[string](`document.getElementById('status').textContent.startsWith('approve act-1') && document.getElementById('status').textContent`,
		chromedp.WithPollingTimeout(0)))
	if !strings.Contains(statusText, "promoted") {
		t.Errorf("status after approve: %q", statusText)
	}
	mu.Lock()
	if len(posts) != 1 {
		t.Fatalf("%d POSTs, want 1", len(posts))
	}
	if h := posts[0]; h.Get(CSRFHeader) != "1" || h.Get("Authorization") != "Bearer "+operatorToken || h.Get("Sec-Fetch-Site") != "same-origin" {
		t.Errorf("approve request headers: CSRF %q, Sec-Fetch-Site %q, bearer %v", h.Get(CSRFHeader), h.Get("Sec-Fetch-Site"), h.Get("Authorization") != "")
	}
	mu.Unlock()
	if calls := e.op.Calls(); len(calls) != 1 || calls[0] != (call{"approve", "act-1", "otto", 0}) {
		t.Errorf("operator calls %+v", calls)
	}
	if rows := e.audit.Actions(); len(rows) != 1 || rows[0].State != "promoted" || rows[0].Actor != "otto" {
		t.Errorf("audit %+v", rows)
	}

	// A viewer sees the same incidents and no button.
	if err := chromedp.Do(ctx, chromedp.Click(css("#logout")), chromedp.WaitVisible(css("#login"))); err != nil {
		t.Fatal(err)
	}
	b.signIn(t, ts.URL, viewerToken)
	buttons := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('button.op').length`))
	lines := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('#incidents .action-line').length`))
	if buttons != 0 || lines == 0 {
		t.Errorf("viewer: %d operator buttons (want 0), %d action lines (want some)", buttons, lines)
	}

	// The in-memory store has no posture or suggestion queries: each view
	// says so (the API's 503), in place of its tables, and is no error.
	for _, v := range []struct{ name, title string }{{"posture", "Posture"}, {"policies", "Suggested policies"}} {
		state := b.waitView(t, v.name, 1)
		msg := run(t, ctx, chromedp.Evaluate[string](`(() => { const p = document.querySelector('#view-`+v.name+` p.unavailable');
			return p.hidden ? '' : p.textContent; })()`))
		statusClass := run(t, ctx, chromedp.Evaluate[string](`document.getElementById('status').className`))
		if state != "unavailable" || !strings.HasPrefix(msg, v.title+" is not available on this store") || statusClass == "error" {
			t.Errorf("%s view on the memory store: state %q, message %q, status class %q", v.name, state, msg, statusClass)
		}
	}
	if d := b.Dialogs(); len(d) != 0 {
		t.Errorf("the page opened dialogs (injected script ran?): %q", d)
	}
}

// realisticRun is the scenario's realistic mesh (32 workloads and one
// launched mid-run) with one attack of each kind, ending about now,
// stored in ClickHouse through storage, detected by the detector, and
// responded to (dry-run, gitops backend) by the responder, whose audit
// log is the same ClickHouse.
type realisticRun struct {
	store *storage.ClickHouse
	resp  *respond.Responder
	// workloads are the node ids of every workload the flows name;
	// others the ids of callers known by principal or IP only.
	workloads, others map[string]bool
	flows             int
	// learning is the detector's learning period.
	learning time.Duration
}

func playRealistic(t *testing.T) *realisticRun {
	t.Helper()
	_, db := testenv.ClickHouse(t)
	cfg := storage.DefaultClickHouseConfig()
	cfg.Addr, cfg.Database = []string{testenv.ClickHouseAddr(t)}, db
	store, err := storage.NewClickHouse(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ctx := context.Background()
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rcfg := respond.DefaultConfig()
	rcfg.Mode, rcfg.BlastRadiusMaxRequests, rcfg.LeaderElection.Enabled = models.ModeDryRun, 0, false
	rcfg.Backend, rcfg.GitOpsDir = respond.BackendGitOps, t.TempDir()
	resp, err := respond.New(rcfg, respond.Deps{Actions: store, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	const learning, slot = 15 * time.Minute, 90 * time.Second
	kinds := models.DetectionKinds
	end := testenv.Now()
	start := end.Add(-learning - time.Duration(len(kinds))*slot - time.Minute).Truncate(time.Minute)
	attacks, err := scenario.Schedule(kinds, start.Add(learning+slot/4), slot, slot/2, 1)
	if err != nil {
		t.Fatal(err)
	}
	gen, err := scenario.NewWith(scenario.RealisticMesh(), start, 1, scenario.Options{Dynamics: true, Scale: 0.25, Attacks: attacks})
	if err != nil {
		t.Fatal(err)
	}
	dcfg := detect.DefaultConfig()
	dcfg.LearningPeriod = learning
	det, err := detect.New(dcfg, consumer.FanoutDetections(storage.DetectionSink(store), resp), log)
	if err != nil {
		t.Fatal(err)
	}
	run := &realisticRun{store: store, resp: resp, workloads: map[string]bool{}, others: map[string]bool{}, learning: learning}
	dec := ingest.NewDecoder(ingest.DecoderConfig{Encoding: ingest.EncodingProto})
	var flows []models.Flow
	for offset := int64(0); gen.Now().Before(end); offset++ {
		ld := gen.Next(min(30*time.Second, end.Sub(gen.Now())))
		v, err := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
		if err != nil {
			t.Fatal(err)
		}
		if flows, err = dec.Decode(ingest.SignalLogs, v, models.NewFlowIDBase("ui-test", 0, offset), flows[:0]); err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(flows, func(a, b models.Flow) int { return cmp.Compare(a.TimestampMs, b.TimestampMs) })
		for i := range flows {
			run.note(&flows[i])
		}
		run.flows += len(flows)
		if err := store.ConsumeFlows(ctx, flows); err != nil {
			t.Fatal(err)
		}
		if err := det.ConsumeFlows(ctx, flows); err != nil {
			t.Fatal(err)
		}
	}
	if err := det.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return run
}

// note counts the graph's nodes a flow names, by the identity it carries
// (what a person would count on a map of the mesh), independently of the
// graph's code.
func (r *realisticRun) note(f *models.Flow) {
	switch {
	case f.Source.Workload != "":
		r.workloads["wl:"+f.Source.Namespace+"/"+f.Source.Workload] = true
	case f.Source.Principal != "":
		r.others["sa:"+f.Source.Principal] = true
	case f.Source.IP.IsValid():
		r.others["ip:"+f.Source.IP.String()] = true
	}
	if f.Destination.Workload != "" {
		r.workloads["wl:"+f.Destination.Namespace+"/"+f.Destination.Workload] = true
	}
}

// TestDashboardOnRealisticRun: the dashboard in Chromium on a realistic
// run under attack, in ClickHouse 26.7: one node per workload (no
// Service host beside its workload), readable labels, the incidents the
// API has listed first with their actions, buttons for operators only,
// the edge panel's baseline, the collapsed audit log. Screenshots at
// 1400x1000 go to MESHGUARD_TEST_SCREENSHOTS (or the test's temp dir).
func TestDashboardOnRealisticRun(t *testing.T) {
	bin := chromium(t)
	rr := playRealistic(t)
	dir := screenshotDir(t)
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Auth.TokensFile = writeTokens(t)
	// Posture without a cluster; suggestions learning as serve's would
	// with this run's detect.learning_period.
	suggest := func(ctx context.Context, scope policy.Scope, since time.Duration) ([]policy.Suggestion, error) {
		now := testenv.Now()
		o := policy.DefaultOptions(now.Add(-since), now)
		o.LearningPeriod = rr.learning
		return policy.Learn(ctx, rr.store, scope, o, respond.ConventionResolver, respond.DefaultConfig())
	}
	srv, err := New(cfg, Deps{Store: rr.store, Operator: rr.resp, ActionWriter: rr.store, Registry: prometheus.NewRegistry(),
		Posture: &posture.Reader{Edges: rr.store}, Suggest: suggest})
	if err != nil {
		t.Fatal(err)
	}
	srv.now = testenv.Now
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	t.Logf("realistic run: %d flows, %d workloads, %d other callers", rr.flows, len(rr.workloads), len(rr.others))

	// Figures for BENCHMARKS.md (logged, not asserted): one read of each
	// view's endpoint on this run.
	for _, p := range []string{"/api/v1/graph?since=15m", "/api/v1/graph?since=1h", "/api/v1/incidents?limit=1000", "/api/v1/audit?limit=500"} {
		began := time.Now()
		var v any
		getJSON(t, ts.URL+p, viewerToken, &v)
		t.Logf("GET %s: %v", p, time.Since(began).Round(time.Millisecond))
	}

	b := newBrowser(t, bin)
	b.signIn(t, ts.URL, operatorToken)
	ctx := b.ctx
	b.screenshot(t, dir, "1-first-screen-operator")

	// The incident panel lists what the API has, in its order, each with
	// its head's kind, and operator buttons where an action is in force.
	var api struct{ Incidents []incidentJSON }
	getJSON(t, ts.URL+"/api/v1/incidents?limit=1000", operatorToken, &api)
	listed := run(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#incidents li.incident')].map((li) => li.dataset.id)`))
	want := make([]string, len(api.Incidents))
	for i, inc := range api.Incidents {
		want[i] = inc.ID
	}
	if len(want) < 3 || !slices.Equal(listed, want) {
		t.Errorf("incident panel lists %d incidents %q; the API has %d %q (want at least 3 on a run with %d attacks)",
			len(listed), listed, len(want), want, len(models.DetectionKinds))
	}
	kinds := run(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#incidents li.incident .inc-kind')].map((e) => e.textContent)`))
	for i, inc := range api.Incidents {
		if i < len(kinds) && kinds[i] != inc.Head.Kind {
			t.Errorf("incident %s shows head kind %q, want %q", inc.ID, kinds[i], inc.Head.Kind)
		}
	}
	inForce, err := rr.resp.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	buttons := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('#incidents button.op-revoke').length`))
	if len(inForce) == 0 || buttons == 0 {
		t.Errorf("%d actions in force, %d revoke buttons in the incidents; want some of each", len(inForce), buttons)
	}
	bars := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('#timeline rect.bar').length`))
	if bars == 0 {
		t.Error("the timeline shows no incident")
	}

	// The side panel of an anomalous edge: now against the baseline, and
	// the detections' expected and observed values.
	// The busiest anomalous edge a detection names (not a scan's probe),
	// over the default 15 minutes: the 6 hours before hold the learning.
	run(t, ctx, chromedp.Evaluate[bool](`(() => { const es = document.getElementById('graph').cy.edges('.anomalous:not(.fanout)');
		es.max((e) => e.data('edge').requests).ele.emit('tap'); return true; })()`))
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#side table.compare`))); err != nil {
		t.Fatal(err)
	}
	side := run(t, ctx, chromedp.Evaluate[string](`document.getElementById('side').textContent`))
	if !strings.Contains(side, "baseline") || !strings.Contains(side, "requests/s") || !strings.Contains(side, "expected") {
		t.Errorf("edge panel without baseline or evidence:\n%s", side)
	}
	cells := run(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#side table.compare tr')].find((tr) => tr.firstChild.textContent === 'requests/s').textContent ? [...[...document.querySelectorAll('#side table.compare tr')].find((tr) => tr.firstChild.textContent === 'requests/s').children].map((c) => c.textContent) : []`))
	if len(cells) != 3 || cells[1] == "no traffic" || cells[2] == "no traffic" {
		t.Errorf("edge panel's requests/s row %q; want the rate now and in the baseline", cells)
	}
	b.screenshot(t, dir, "2-edge-panel")

	// The graph over the whole run: one node per workload, every Service
	// host folded into its workload, labels apart.
	b.setSince(t, "1h")
	g := b.graph(t)
	t.Logf("graph over 1h: %d nodes %v in %d namespaces, %d edges (%d anomalous), %d label overlaps, %d node overlaps, %d box overlaps, zoom %.2f",
		g.Nodes, g.ByKind, g.Namespaces, g.Edges, g.Anomalous, g.Overlaps, g.NodeOverlaps, g.BoxOverlaps, g.Zoom)
	if g.ByKind["workload"] != len(rr.workloads) || g.ByKind["service"] != 0 || g.Nodes != len(rr.workloads)+len(rr.others) {
		t.Errorf("graph nodes %v (%d); want %d workloads, no Service host, %d others", g.ByKind, g.Nodes, len(rr.workloads), len(rr.others))
	}
	if g.Anomalous == 0 || !g.OnScreen {
		t.Errorf("graph: %d anomalous edges, every node on screen %v; want some, true", g.Anomalous, g.OnScreen)
	}
	if maxOverlaps := g.Nodes / 20; g.Overlaps > maxOverlaps || g.NodeOverlaps > 0 || g.BoxOverlaps > 0 {
		t.Errorf("%d pairs of labels overlap (at most %d), %d pairs of nodes, %d of namespace boxes", g.Overlaps, maxOverlaps, g.NodeOverlaps, g.BoxOverlaps)
	}
	b.checkOverlapCount(t, g)
	b.screenshot(t, dir, "3-graph-1h")

	// The audit log: runs of one decision are one row with a count.
	var audit struct{ Groups []auditGroupJSON }
	getJSON(t, ts.URL+"/api/v1/audit?limit=500", operatorToken, &audit)
	rows := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('#audit tbody tr').length`))
	raw, err := rr.store.RecentActions(context.Background(), 10000)
	if err != nil {
		t.Fatal(err)
	}
	if rows != len(audit.Groups) || rows == 0 || rows > len(raw) {
		t.Errorf("audit table %d rows; the API has %d groups of %d rows", rows, len(audit.Groups), len(raw))
	}
	t.Logf("audit log: %d rows shown as %d", len(raw), rows)

	// A viewer: the same first screen, no button.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#login"))); err != nil {
		t.Fatal(err)
	}
	b.signIn(t, ts.URL, viewerToken)
	if n := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('button.op').length`)); n != 0 {
		t.Errorf("viewer sees %d operator buttons", n)
	}
	b.screenshot(t, dir, "4-first-screen-viewer")

	// The zero-trust views on the run: the downgrade attack's plaintext
	// among the edges, no cluster read (so no modes, gap or coverage),
	// and policies admitting the mesh's callers.
	if state := b.waitView(t, "posture", 1); state != "loaded" {
		t.Fatalf("posture view %s", state)
	}
	p := b.checkPostureView(t, ts.URL)
	note := run(t, ctx, chromedp.Text(chromedp.CSS("#posture-note")))
	if p.ClusterRead || len(p.PlaintextEdges) == 0 || !strings.Contains(note, "no cluster read") {
		t.Errorf("posture of the run: cluster read %v, %d plaintext edges, note %q; want no cluster, some plaintext, said so", p.ClusterRead, len(p.PlaintextEdges), note)
	}
	b.screenshot(t, dir, "8-posture-realistic")
	if state := b.waitView(t, "policies", 1); state != "loaded" {
		t.Fatalf("policies view %s", state)
	}
	if ss := b.checkSuggestionsView(t, ts.URL); !slices.ContainsFunc(ss, func(s policy.Suggestion) bool { return len(s.Rules) > 0 }) {
		t.Errorf("no suggestion on the run admits a caller: %d suggestions", len(ss))
	}
	b.screenshot(t, dir, "9-policies-realistic")
	if d := b.Dialogs(); len(d) != 0 {
		t.Errorf("the page opened dialogs: %q", d)
	}
}

// getJSON GETs url with token and decodes the answer into v.
func getJSON(t *testing.T, url, token string, v any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// scaleMesh seeds m with workloads workloads in 8 namespaces and edges
// distinct edges of traffic in the last minutes (each reported by both
// sides, the source naming only the Service host), and a detection on
// one edge of three; it returns the number of workloads with traffic.
func scaleMesh(t *testing.T, m *storage.Memory, now time.Time, workloads, edges int) int {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 21))
	names := []string{"api", "web", "cart", "pay", "ledger", "users", "auth", "search", "ads", "mail", "cache", "queue"}
	nss := []string{"shop", "billing", "identity", "search", "ops", "media", "ads", "data"}
	type wl struct{ ns, name string }
	wls := make([]wl, workloads)
	for i := range wls {
		wls[i] = wl{nss[i%len(nss)], fmt.Sprintf("%s-%d", names[i%len(names)], i)}
	}
	seen := map[[2]int]bool{}
	used := map[int]bool{}
	base := models.NewFlowIDBase("scale", 0, now.UnixNano())
	var flows []models.Flow
	var dets []storage.DetectionRow
	for len(seen) < edges {
		// Mostly within a namespace, some across, as meshes are.
		s := rng.IntN(workloads)
		d := rng.IntN(workloads)
		if rng.IntN(3) > 0 {
			d = (s + len(nss)*(1+rng.IntN(workloads/len(nss)-1))) % workloads
		}
		if s == d || seen[[2]int{s, d}] {
			continue
		}
		seen[[2]int{s, d}] = true
		used[s], used[d] = true, true
		src := models.Source{Workload: wls[s].name, Namespace: wls[s].ns, Principal: "cluster.local/ns/" + wls[s].ns + "/sa/" + wls[s].name}
		host := wls[d].name + "." + wls[d].ns + ".svc.cluster.local"
		n := uint32(1 + rng.IntN(50))
		at := now.Add(-time.Duration(1+rng.IntN(4)) * time.Minute).UnixMilli()
		flows = append(flows,
			models.Flow{ID: base.ID(len(flows)), TimestampMs: at, Reporter: models.ReporterSource, Source: src,
				Destination: models.Destination{Service: host}, ResponseCode: 200, TLS: models.TLSMutual, Count: n},
			models.Flow{ID: base.ID(len(flows) + 1), TimestampMs: at, Reporter: models.ReporterDestination, Source: src,
				Destination: models.Destination{Service: host, Workload: wls[d].name, Namespace: wls[d].ns}, ResponseCode: 200, TLS: models.TLSMutual, Count: n})
		if len(seen)%3 == 0 {
			dets = append(dets, storage.DetectionRow{DetectionID: fmt.Sprintf("d-%d", len(seen)), DetectedAt: now.Add(-time.Minute),
				WindowStart: now.Add(-2 * time.Minute), WindowEnd: now.Add(-time.Minute), Kind: "request_flood", Severity: "medium", Score: 9,
				SourceWorkload: src.Workload, SourceNamespace: src.Namespace, DestinationWorkload: wls[d].name, DestinationNamespace: wls[d].ns,
				Evidence: `{"summary":"flood"}`})
		}
	}
	if err := m.ConsumeFlows(context.Background(), flows); err != nil {
		t.Fatal(err)
	}
	for _, d := range dets {
		if err := m.WriteDetection(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
	return len(used)
}

// TestGraphAtScaleInChromium: 100 workloads and 500 edges stay one node
// per workload, on screen, with few labels overlapping.
func TestGraphAtScaleInChromium(t *testing.T) {
	bin := chromium(t)
	dir := screenshotDir(t)
	var workloads int
	e := newEnv(t, func(_ *Config, d *Deps) {
		m := storage.NewMemory(10000)
		workloads = scaleMesh(t, m, time.Now().UTC(), 100, 500)
		d.Store = m
	})
	ts := httptest.NewServer(e.h)
	defer ts.Close()
	b := newBrowser(t, bin)
	b.signIn(t, ts.URL, viewerToken)
	g := b.graph(t)
	layoutMs := run(t, b.ctx, chromedp.Evaluate[string](`document.getElementById('graph').dataset.layoutMs`))
	t.Logf("graph at scale: %d nodes in %d namespaces, %d edges (%d anomalous), %d label overlaps, %d node overlaps, %d box overlaps, zoom %.2f, layout %s ms",
		g.Nodes, g.Namespaces, g.Edges, g.Anomalous, g.Overlaps, g.NodeOverlaps, g.BoxOverlaps, g.Zoom, layoutMs)
	if g.Nodes != workloads || g.ByKind["workload"] != workloads || g.Edges != 500 || g.Namespaces != 8 || !g.OnScreen {
		t.Errorf("graph %d nodes %v, %d edges, %d namespaces, on screen %v; want %d workloads, 500 edges, 8 namespaces, true",
			g.Nodes, g.ByKind, g.Edges, g.Namespaces, g.OnScreen, workloads)
	}
	if maxOverlaps := g.Nodes / 20; g.Overlaps > maxOverlaps || g.NodeOverlaps > 0 || g.BoxOverlaps > 0 {
		t.Errorf("%d pairs of labels overlap (at most %d), %d pairs of nodes, %d of namespace boxes", g.Overlaps, maxOverlaps, g.NodeOverlaps, g.BoxOverlaps)
	}
	b.checkOverlapCount(t, g)
	b.screenshot(t, dir, "5-graph-100-workloads-500-edges")
}

// waitView opens a zero-trust view from the page's navigation, as a
// person would, and waits until it has loaded (or said it cannot) for
// the loads'th time; it returns the view's state.
func (b *browser) waitView(t *testing.T, name string, loads int) string {
	t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS(`#views a[href="#`+name+`"]`))); err != nil {
		t.Fatal(err)
	}
	js := fmt.Sprintf(`(() => { const v = document.getElementById('view-%s');
		return !v.hidden && Number(v.dataset.loads || 0) >= %d && v.dataset.state; })()`, name, loads)
	state, err := chromedp.Run(b.ctx, chromedp.Poll[string](js, chromedp.WithPollingTimeout(0)))
	if err != nil {
		t.Fatalf("the %s view did not load: %v", name, err)
	}
	return state
}

// shareShown reads a percentage cell ("80.0%") as a share (0.8).
func shareShown(t *testing.T, s string) float64 {
	t.Helper()
	var x float64
	if _, err := fmt.Sscanf(s, "%f%%", &x); err != nil {
		t.Fatalf("share cell %q: %v", s, err)
	}
	return x / 100
}

// checkPostureView compares the open Posture view with the API's answer
// for its default span: each namespace's shares and mode, every
// plaintext edge by its ends and port with first and last seen, the
// STRICT gap of each namespace, the workloads allowed by default.
func (b *browser) checkPostureView(t *testing.T, url string) posture.Posture {
	t.Helper()
	ctx := b.ctx
	text := func(js string) string { return run(t, ctx, chromedp.Evaluate[string](js)) }
	texts := func(js string) []string { return run(t, ctx, chromedp.Evaluate[[]string](js)) }
	var p posture.Posture
	getJSON(t, url+"/api/v1/posture?since=24h", viewerToken, &p)
	type nsRow struct {
		NS    string   `json:"ns"`
		Cells []string `json:"cells"`
	}
	rows := run(t, ctx, chromedp.Evaluate[[]nsRow](`[...document.querySelectorAll('#p-namespaces tbody tr')].map((tr) =>
		({ ns: tr.dataset.ns, cells: [...tr.children].map((c) => c.textContent) }))`))
	if len(rows) != len(p.Namespaces) {
		t.Errorf("%d namespace rows; the API has %d namespaces", len(rows), len(p.Namespaces))
	}
	for i, n := range p.Namespaces {
		if i >= len(rows) {
			break
		}
		r := rows[i]
		if r.NS != n.Name || len(r.Cells) != 8 {
			t.Errorf("namespace row %d: %q %q; want %s", i, r.NS, r.Cells, n.Name)
			continue
		}
		for j, want := range []float64{n.MTLSShare, n.PlaintextShare, n.UnknownShare} {
			if got := shareShown(t, r.Cells[4+j]); got < want-0.0006 || got > want+0.0006 {
				t.Errorf("%s shows %s as %q; the API says %.4f", n.Name, []string{"mTLS", "plaintext", "unknown"}[j], r.Cells[4+j], want)
			}
		}
		mode := "—" // no cluster read
		if n.Mode != nil {
			mode = string(n.Mode.Mode)
		}
		if !strings.HasPrefix(r.Cells[7], mode) {
			t.Errorf("%s shows mode %q; the API says %+v", n.Name, r.Cells[7], n.Mode)
		}
	}
	// Every plaintext edge, by its ends and port, with when it was seen.
	plain := texts(`[...document.querySelectorAll('#p-plain tbody tr')].map((tr) => [...tr.children].slice(0, 3).map((c) => c.textContent).join(' ') +
		(tr.children[5] && tr.children[5].textContent && tr.children[6].textContent ? '' : ' (no first/last seen)'))`)
	var wantPlain []string
	for _, e := range p.PlaintextEdges {
		wantPlain = append(wantPlain, fmt.Sprintf("%s %s %d", e.Source.Name(), e.Destination.Name(), e.Port))
	}
	if !slices.Equal(plain, wantPlain) {
		t.Errorf("plaintext edges shown %q; the API has %q", plain, wantPlain)
	}

	// The STRICT gap: per namespace, the edges that would break, those
	// the telemetry cannot vouch for, those kept by an exception.
	for _, g := range p.Gaps {
		for kind, es := range map[string][]posture.Edge{"breaks": g.Breaks, "unverified": g.Unverified, "exempt": g.Exempt} {
			sel := fmt.Sprintf(`.gap[data-ns=%s]`, jsString(g.Namespace))
			tag := text(`(() => { const t = document.querySelector(` + jsString(sel+" .gap-head .tag-"+kind) + `); return t ? t.textContent : 'missing'; })()`)
			if want := fmt.Sprintf("%d %s", len(es), kind); tag != want {
				t.Errorf("gap %s shows %q, want %q", g.Namespace, tag, want)
			}
			shown := texts(`[...document.querySelectorAll(` + jsString(sel+` li[data-kind="`+kind+`"]`) + `)].map((li) => li.textContent)`)
			for i, e := range es {
				want := fmt.Sprintf("%s %s → %s:%d", kind, e.Source.Name(), e.Destination.Name(), e.Port)
				if i >= len(shown) || !strings.HasPrefix(shown[i], want) {
					t.Errorf("gap %s %s edge %d: shown %q, want it to start %q", g.Namespace, kind, i, shown, want)
				}
			}
		}
	}
	uncovered := texts(`[...document.querySelectorAll('#p-uncovered-list li:not(.muted)')].map((li) => li.textContent)`)
	var wantUncovered []string
	for _, u := range p.Uncovered {
		wantUncovered = append(wantUncovered, u.Name())
	}
	if !slices.Equal(uncovered, wantUncovered) {
		t.Errorf("allowed by default shows %q; the API has %q", uncovered, wantUncovered)
	}
	return p
}

// checkSuggestionsView compares the open Suggested policies view with
// the API's answer for its default period: the destinations in order,
// each one's admitted principals, the callers it would deny, its blast
// radius or why it is not written.
func (b *browser) checkSuggestionsView(t *testing.T, url string) []policy.Suggestion {
	t.Helper()
	ctx := b.ctx
	text := func(js string) string { return run(t, ctx, chromedp.Evaluate[string](js)) }
	texts := func(js string) []string { return run(t, ctx, chromedp.Evaluate[[]string](js)) }
	var sg struct{ Suggestions []policy.Suggestion }
	getJSON(t, url+"/api/v1/policies/suggestions?since=7d", viewerToken, &sg)
	cards := texts(`[...document.querySelectorAll('#suggestions article.suggestion')].map((a) => a.dataset.ns + '/' + a.dataset.workload)`)
	if len(cards) != len(sg.Suggestions) {
		t.Errorf("%d suggestions shown %q; the API has %d", len(cards), cards, len(sg.Suggestions))
	}
	for i, s := range sg.Suggestions {
		if i >= len(cards) || cards[i] != s.Namespace+"/"+s.Workload {
			t.Errorf("suggestion %d: shown %q, want %s/%s", i, cards, s.Namespace, s.Workload)
			continue
		}
		card := fmt.Sprintf(`#suggestions article.suggestion:nth-of-type(%d)`, i+1)
		principals := texts(`[...document.querySelectorAll(` + jsString(card+` table.rules tr[data-principal] td.principal`) + `)].map((c) => c.textContent)`)
		var want []string
		for _, r := range s.Rules {
			want = append(want, r.Principal)
		}
		if !slices.Equal(principals, want) {
			t.Errorf("%s/%s admits %q on the page; the API's rules admit %q", s.Namespace, s.Workload, principals, want)
		}
		denied := texts(`[...document.querySelectorAll(` + jsString(card+` table.not-admitted tr`) + `)].map((tr) => tr.dataset.caller)`)
		var wantDenied []string
		for _, c := range s.NotAdmitted {
			wantDenied = append(wantDenied, c.Caller)
		}
		if !slices.Equal(denied, wantDenied) {
			t.Errorf("%s/%s lists not admitted %q; the API has %q", s.Namespace, s.Workload, denied, wantDenied)
		}
		// A policy written shows its blast radius; one not written, why.
		blast := text(`(() => { const b = document.querySelector(` + jsString(card+` .blast-text`) + `); return b ? b.textContent : ''; })()`)
		why := text(`(() => { const b = document.querySelector(` + jsString(card+` .skip-why`) + `); return b ? b.textContent : ''; })()`)
		head := fmt.Sprintf("would have denied %d of %d requests", s.BlastRequests, s.Requests)
		if s.Skipped != "" {
			head = "not written: " + s.Skipped
			blast, why = why, blast
		}
		// Counts are shown grouped ("6,025").
		if !strings.HasPrefix(strings.ReplaceAll(blast, ",", ""), head) || why != "" {
			t.Errorf("%s/%s shows %q (and %q), want it to start %q", s.Namespace, s.Workload, blast, why, head)
		}
	}
	return sg.Suggestions
}

// TestZeroTrustViewsInChromium: the Posture and Suggested policies views
// in Chromium, on the zero-trust world (test/zerotrust: a cluster on the
// real kube-apiserver with a mesh-wide STRICT, a PERMISSIVE shop with
// exceptions, ALLOW policies; traffic, detections and audit rows in
// ClickHouse 26.7, a caller named with hostile HTML). What a person
// sees is what the API answers: each namespace's shares, every plaintext
// edge, the STRICT gap, the workloads allowed by default, each
// suggestion's admitted principals, the callers it would deny and its
// blast radius. Screenshots at 1400x1000 as in the realistic run.
func TestZeroTrustViewsInChromium(t *testing.T) {
	bin := chromium(t)
	dir := screenshotDir(t)
	kube := testenv.KubeConfig(t)
	store, _ := zerotrust.Store(t)
	world := zerotrust.Seed(t, store, kube)
	suggest := func(ctx context.Context, scope policy.Scope, since time.Duration) ([]policy.Suggestion, error) {
		now := testenv.Now()
		return policy.Learn(ctx, store, scope, policy.DefaultOptions(now.Add(-since), now), respond.ConventionResolver, respond.DefaultConfig())
	}
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Auth.TokensFile = writeTokens(t)
	srv, err := New(cfg, Deps{Store: store, Registry: prometheus.NewRegistry(), ActionWriter: store,
		Posture: &posture.Reader{Edges: store, Kube: kube, RootNamespace: world.Root}, Suggest: suggest})
	if err != nil {
		t.Fatal(err)
	}
	srv.now = testenv.Now
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	b := newBrowser(t, bin)
	b.signIn(t, ts.URL, viewerToken)
	ctx := b.ctx
	text := func(js string) string { return run(t, ctx, chromedp.Evaluate[string](js)) }
	texts := func(js string) []string { return run(t, ctx, chromedp.Evaluate[[]string](js)) }

	// Posture, over the default 24 hours.
	if state := b.waitView(t, "posture", 1); state != "loaded" {
		t.Fatalf("posture view %s: %s", state, text(`document.getElementById('status').textContent`))
	}
	p := b.checkPostureView(t, ts.URL)
	if !p.ClusterRead || len(p.PlaintextEdges) == 0 || len(p.Gaps) == 0 || len(p.Uncovered) == 0 {
		t.Errorf("the world's posture lacks what the view shows: cluster %v, %d plaintext edges, %d gaps, %d uncovered",
			p.ClusterRead, len(p.PlaintextEdges), len(p.Gaps), len(p.Uncovered))
	}
	if shop := slices.IndexFunc(p.Namespaces, func(n posture.Namespace) bool { return n.Name == world.Shop }); shop < 0 || p.Namespaces[shop].PlaintextShare == 0 {
		t.Errorf("namespace %s with plaintext is not in the posture: %+v", world.Shop, p.Namespaces)
	}

	plain := texts(`[...document.querySelectorAll('#p-plain tbody tr')].map((tr) => [...tr.children].slice(0, 3).map((c) => c.textContent).join(' '))`)
	if want := "10.1.1.1 " + world.Shop + "/cart 9090"; !slices.Contains(plain, want) {
		t.Errorf("the IP caller's plaintext edge %q is not listed: %q", want, plain)
	}
	page := text(`document.getElementById('view-posture').textContent`)
	if !strings.Contains(page, world.Shop+"/"+zerotrust.Hostile) {
		t.Errorf("the hostile caller's plaintext edge is not shown as text")
	}
	b.screenshot(t, dir, "6-posture")

	// Suggested policies, over the default 7 days.
	if state := b.waitView(t, "policies", 1); state != "loaded" {
		t.Fatalf("policies view %s: %s", state, text(`document.getElementById('status').textContent`))
	}
	suggestions := b.checkSuggestionsView(t, ts.URL)
	admitting := 0
	for _, s := range suggestions {
		if len(s.Rules) > 0 {
			admitting++
		}
	}
	if admitting == 0 {
		t.Errorf("no suggestion admits a principal: %+v", suggestions)
	}
	if n := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('#view-policies button, #view-policies form').length`)); n != 0 {
		t.Errorf("the read-only policies view has %d buttons or forms", n)
	}
	b.screenshot(t, dir, "7-suggested-policies")

	// Back on the overview, the graph laid out before is redrawn in its
	// box, which was hidden meanwhile.
	before := text(`document.getElementById('graph').dataset.rendered || ''`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#views a[href="#overview"]`))); err != nil {
		t.Fatal(err)
	}
	b.waitGraph(t, before)
	b.setSince(t, "6h") // the world's traffic is two hours old
	if g := b.graph(t); g.Nodes == 0 || !g.OnScreen || text(`document.getElementById('view-posture').hidden + ' ' + document.getElementById('view-overview').hidden`) != "true false" {
		t.Errorf("back on the overview: graph %+v, views shown %s", g, text(`document.getElementById('view-overview').hidden ? 'none' : 'overview'`))
	}

	if n := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('img').length`)); n != 0 {
		t.Errorf("telemetry became markup: %d <img> in the page", n)
	}
	if d := b.Dialogs(); len(d) != 0 {
		t.Errorf("the page opened dialogs: %q", d)
	}
}
