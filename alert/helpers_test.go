package alert

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/storage"
)

var t0 = time.Date(2026, 11, 22, 21, 0, 0, 0, time.UTC)

// autoClock never waits: After advances the clock by d and fires at once,
// and records d, so tests can check what the Alerter waited for (a
// Retry-After) without taking that long.
type autoClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func newClock() *autoClock { return &autoClock{now: time.Now()} }

func (c *autoClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *autoClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.waits = append(c.waits, d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

func (c *autoClock) waited() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

// auditLog is a storage.ActionWriter that records.
type auditLog struct {
	mu   sync.Mutex
	rows []storage.ActionRow
}

func (l *auditLog) WriteAction(_ context.Context, r storage.ActionRow) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rows = append(l.rows, r)
	return nil
}

func (l *auditLog) all() []storage.ActionRow {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]storage.ActionRow(nil), l.rows...)
}

// controller is a fake responder.
type controller struct {
	mu    sync.Mutex
	calls []string
	fail  error
}

func (c *controller) record(verb, id, actor string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, verb+" "+id+" "+actor)
	return c.fail
}

func (c *controller) Approve(_ context.Context, id, actor string) (models.Action, error) {
	if err := c.record("approve", id, actor); err != nil {
		return models.Action{}, err
	}
	a := action(id, models.StatePromoted)
	a.Mode, a.Actor, a.At = models.ModeEnforce, actor, t0.Add(time.Minute)
	return a, nil
}

func (c *controller) Revoke(_ context.Context, id, actor string) (models.Action, error) {
	if err := c.record("revoke", id, actor); err != nil {
		return models.Action{}, err
	}
	a := action(id, models.StateRevoked)
	a.Actor, a.At = actor, t0.Add(3*time.Minute)
	return a, nil
}

func (c *controller) Extend(_ context.Context, id, actor string, by time.Duration) (models.Action, error) {
	if err := c.record("extend "+by.String(), id, actor); err != nil {
		return models.Action{}, err
	}
	a := action(id, models.StateExtended)
	a.Actor, a.At, a.ExpiresAt = actor, t0.Add(2*time.Minute), a.ExpiresAt.Add(by)
	return a, nil
}

func (c *controller) seen() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.calls...)
}

func detection(id, src, dst string, sev models.Severity) models.Detection {
	return models.Detection{
		ID: id, DetectedAt: t0, UpdatedAt: t0, WindowStart: t0.Add(-time.Minute), WindowEnd: t0,
		Kind: models.LateralMovement, Severity: sev, Score: 12.3, Updates: 1, Partition: 3,
		Source:      models.Party{Principal: "cluster.local/ns/shop/sa/" + src, Workload: src, Namespace: "shop"},
		Destination: models.Party{Workload: dst, Namespace: "payments", Service: dst + ".payments.svc.cluster.local"},
		Evidence: models.Evidence{
			Features: []models.FeatureEvidence{
				{Feature: "new_edge", Expected: 0, Observed: 1, Score: 9.1, Model: "new"},
				{Feature: "requests", Expected: 3.5, Observed: 420, Score: 12.3, Model: "poisson"},
			},
			TopPaths:         []models.Count{{Value: "/admin/export", Count: 40}},
			TopCodes:         []models.Count{{Value: "200", Count: 38}, {Value: "403", Count: 4}},
			SampleRequestIDs: []string{"req-7f3a"},
			SampleTraceIDs:   []string{"4bf92f3577b34da6a3ce929d0e0e4736"},
			Summary:          src + " called " + dst + " for the first time",
		},
	}
}

func action(id string, st models.ActionState) models.Action {
	return models.Action{
		ID: id, At: t0, DetectionID: "det-1", Detection: models.LateralMovement,
		Kind: models.ActionBlockEdge, Mode: models.ModeDryRun, State: st, Actor: "meshguard",
		Reason: "lateral movement above threshold", Target: "cluster.local/ns/shop/sa/frontend -> payments/ledger",
		PolicyName: "meshguard-deny-7c1e", PolicyNamespace: "payments", ExpiresAt: t0.Add(time.Hour),
		BlastRequests: 1234, BlastCallers: 3,
	}
}

// slackCall is one request the fake Slack received.
type slackCall struct {
	method string
	form   url.Values
	status int
	ts     string // the ts answered (postMessage)
}

// fakeSlack is slacktest's server with chat.postMessage and chat.update
// bound to a recorder (slacktest keeps only message text; these tests need
// the blocks and the thread) that can answer 429s first.
type fakeSlack struct {
	srv *slacktest.Server

	mu    sync.Mutex
	calls []slackCall
	limit int    // answer this many calls 429 first
	retry string // Retry-After for those
	seq   int
	// errNext: Slack errors (ok:false) for the next calls, in order.
	errNext []string
	// reject: blocks containing this are refused as invalid_blocks.
	reject string
}

func newFakeSlack(t *testing.T) *fakeSlack {
	f := &fakeSlack{retry: "7"}
	f.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", f.handle("chat.postMessage"))
		c.Handle("/chat.update", f.handle("chat.update"))
		c.Handle("/usergroups.users.list", func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm()
			w.Header().Set("Content-Type", "application/json")
			if r.Form.Get("usergroup") != "S0ONCALL" {
				_, _ = io.WriteString(w, `{"ok":false,"error":"no_such_subteam"}`)
				return
			}
			_, _ = io.WriteString(w, `{"ok":true,"users":["U0GROUPIE"]}`)
		})
	})
	f.srv.Start()
	t.Cleanup(f.srv.Stop)
	return f
}

func (f *fakeSlack) handle(method string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		f.mu.Lock()
		defer f.mu.Unlock()
		c := slackCall{method: method, form: r.PostForm, status: http.StatusOK}
		if f.limit > 0 {
			f.limit--
			c.status = http.StatusTooManyRequests
			f.calls = append(f.calls, c)
			w.Header().Set("Retry-After", f.retry)
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		if len(f.errNext) > 0 {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": f.errNext[0]})
			f.errNext = f.errNext[1:]
			c.status = -1
			f.calls = append(f.calls, c)
			return
		}
		if _, err := slackBlocks(r.PostForm.Get("blocks")); err != nil || (f.reject != "" && strings.Contains(r.PostForm.Get("blocks"), f.reject)) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"ok":false,"error":"invalid_blocks"}`)
			c.status = -1
			f.calls = append(f.calls, c)
			return
		}
		c.ts = r.PostForm.Get("ts")
		if method == "chat.postMessage" {
			f.seq++
			c.ts = fmt.Sprintf("1795000000.%06d", f.seq)
		}
		f.calls = append(f.calls, c)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": "C0ALERTS", "ts": c.ts})
	}
}

// ok returns the successful calls of one method.
func (f *fakeSlack) ok(method string) []slackCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []slackCall
	for _, c := range f.calls {
		if c.method == method && c.status == http.StatusOK {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeSlack) all() []slackCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]slackCall(nil), f.calls...)
}

func slackBlocks(s string) (slack.Blocks, error) {
	var b slack.Blocks
	if s == "" {
		return b, errors.New("no blocks")
	}
	err := json.Unmarshal([]byte(s), &b)
	return b, err
}

// webhookSink is an incoming-webhook (or response_url) receiver.
type webhookSink struct {
	srv  *httptest.Server
	mu   sync.Mutex
	msgs []slack.WebhookMessage
	raw  []string
}

func newWebhookSink(t *testing.T) *webhookSink {
	s := &webhookSink{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var m slack.WebhookMessage
		if err := json.Unmarshal(body, &m); err != nil || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "invalid_payload", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.msgs = append(s.msgs, m)
		s.raw = append(s.raw, string(body))
		s.mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *webhookSink) got() ([]slack.WebhookMessage, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]slack.WebhookMessage(nil), s.msgs...), append([]string(nil), s.raw...)
}

// waitFor polls cond; the deadline only guards against a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type harness struct {
	a       *Alerter
	clock   *autoClock
	audit   *auditLog
	ctrl    *controller
	reg     *prometheus.Registry
	cancel  context.CancelFunc
	done    chan error
	started bool
}

func newHarness(t *testing.T, cfg SlackConfig) *harness {
	t.Helper()
	h := &harness{clock: newClock(), audit: &auditLog{}, ctrl: &controller{}, reg: prometheus.NewRegistry()}
	a, err := New(Config{Slack: cfg}, Deps{
		Log: slog.New(slog.NewTextHandler(testWriter{t}, nil)), Actions: h.audit, Controller: h.ctrl,
		Registerer: h.reg, Clock: h.clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.a = a
	t.Cleanup(func() { h.stop(t) })
	return h
}

func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done, h.started = cancel, make(chan error, 1), true
	go func() { h.done <- h.a.Run(ctx) }()
}

// stop cancels Run and waits for its drain.
func (h *harness) stop(t *testing.T) {
	t.Helper()
	if !h.started {
		return
	}
	h.started = false
	h.cancel()
	if err := <-h.done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func botConfig(f *fakeSlack) SlackConfig {
	c := DefaultConfig().Slack
	c.Token, c.Channel, c.APIURL = "xoxb-test-token", "C0ALERTS", f.srv.GetAPIURL()
	c.SigningSecret, c.AllowedUsers = "s3cr3t-signing", []string{"U0ALICE", "U0BOB"}
	c.LinkTemplate = "https://grafana.example/d/mesh?var-detection={detection_id}&from={{.FromMillis}}&to={{.ToMillis}}"
	return c
}

func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	t.Fatalf("metric %s%v not found", name, labels)
	return 0
}

// signed builds an interactivity request as Slack sends it.
func signed(secret string, ts time.Time, payload any) *http.Request {
	p, _ := json.Marshal(payload)
	body := url.Values{"payload": {string(p)}}.Encode()
	r := httptest.NewRequest(http.MethodPost, "/slack/interactions", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	sts := strconv.FormatInt(ts.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:%s", sts, body)
	r.Header.Set("X-Slack-Request-Timestamp", sts)
	r.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	return r
}

// clickPayload is a block_actions payload for one button, from team
// T0MESH.
func clickPayload(button, actionID, userID, userName, responseURL string) map[string]any {
	return teamClick(button, actionID, "T0MESH", userID, userName, responseURL)
}

// teamClick is clickPayload from a user of another team.
func teamClick(button, actionID, team, userID, userName, responseURL string) map[string]any {
	v, _ := json.Marshal(buttonValue{ActionID: actionID, DetectionID: "det-1"})
	return map[string]any{
		"type":         "block_actions",
		"user":         map[string]any{"id": userID, "username": userName, "name": userName, "team_id": team},
		"team":         map[string]any{"id": team},
		"channel":      map[string]any{"id": "C0ALERTS"},
		"response_url": responseURL,
		"container":    map[string]any{"type": "message", "message_ts": "1795000000.000001", "channel_id": "C0ALERTS"},
		"actions": []map[string]any{{
			"type": "button", "action_id": button, "block_id": blockID(actionID), "value": string(v), "action_ts": "1795000001.000001",
		}},
	}
}

// testWriter sends log lines to t.Log (shown for failed tests).
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func readAll(t *testing.T, r *http.Request) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func ioNopCloser(s string) io.ReadCloser { return io.NopCloser(strings.NewReader(s)) }
