package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/meshguard/meshguard/models"
)

// One detection and its action make one Block Kit message with the
// evidence; later changes go to its thread and edit it.
func TestBotIncidentMessageThreadAndEdits(t *testing.T) {
	f := newFakeSlack(t)
	h := newHarness(t, botConfig(f))
	d := detection("det-1", "frontend", "ledger", models.SeverityHigh)
	if err := h.a.HandleDetection(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if err := h.a.HandleAction(context.Background(), action("act-1", models.StateApplied), d); err != nil {
		t.Fatal(err)
	}
	h.start()
	waitFor(t, "the incident message", func() bool { return len(f.ok("chat.postMessage")) == 1 })

	post := f.ok("chat.postMessage")[0]
	if post.form.Get("channel") != "C0ALERTS" || post.form.Get("thread_ts") != "" {
		t.Errorf("incident posted to %q thread %q; want top-level in C0ALERTS", post.form.Get("channel"), post.form.Get("thread_ts"))
	}
	blocks := post.form.Get("blocks")
	checkWellFormed(t, blocks)
	for _, want := range []string{
		"HIGH · lateral_movement",                                // kind and severity
		"`shop/frontend`", "`cluster.local/ns/shop/sa/frontend`", // source identities
		"`payments/ledger`", "`ledger.payments.svc.cluster.local`", // destination
		"`requests`: expected 3.50, observed *420*",                                           // expected vs observed
		"`/admin/export` ×40", "`403` ×4", "`req-7f3a`", "`4bf92f3577b34da6a3ce929d0e0e4736`", // evidence
		"`block_edge`", "`dry-run`", "`payments/meshguard-deny-7c1e`", "expires 2026-11-22 22:00:00 UTC", // action
		"would have denied 1234 request(s) from 3 caller(s)",            // blast radius
		"https://grafana.example/d/mesh?var-detection=det-1\u0026from=", // link template
	} {
		if !strings.Contains(blocks, jsonish(want)) {
			t.Errorf("incident message lacks %q", want)
		}
	}
	for _, b := range []string{"mg_approve", "mg_revoke", "mg_extend", "mg_open"} {
		if !strings.Contains(blocks, `"action_id":"`+b+`"`) {
			t.Errorf("incident message lacks the %s button", b)
		}
	}
	if txt := post.form.Get("text"); !strings.Contains(txt, "lateral_movement") {
		t.Errorf("fallback text %q lacks the kind", txt)
	}
	parent := post.ts

	// Promoted: a thread reply, and the parent edited to show it.
	promoted := action("act-1", models.StatePromoted)
	promoted.Mode, promoted.At = models.ModeEnforce, t0.Add(time.Minute)
	_ = h.a.HandleAction(context.Background(), promoted, d)
	waitFor(t, "the promotion in the thread and the edit", func() bool {
		return len(f.ok("chat.postMessage")) == 2 && len(f.ok("chat.update")) == 1
	})
	reply := f.ok("chat.postMessage")[1]
	if reply.form.Get("thread_ts") != parent || !strings.Contains(reply.form.Get("blocks"), "*promoted*") {
		t.Errorf("promotion reply: thread_ts %q (want %q), blocks %s", reply.form.Get("thread_ts"), parent, reply.form.Get("blocks"))
	}
	upd := f.ok("chat.update")[0]
	if upd.form.Get("ts") != parent || !strings.Contains(upd.form.Get("blocks"), "*promoted*") || strings.Contains(upd.form.Get("blocks"), "mg_approve") {
		t.Errorf("parent edit: ts %q (want %q), should show promoted and no Approve button: %s", upd.form.Get("ts"), parent, upd.form.Get("blocks"))
	}

	// Escalation: thread reply + edit. A plain update: edit only.
	esc := d
	esc.Severity, esc.UpdatedAt, esc.Updates = models.SeverityCritical, t0.Add(2*time.Minute), 2
	_ = h.a.HandleDetection(context.Background(), esc)
	waitFor(t, "the escalation", func() bool { return len(f.ok("chat.postMessage")) == 3 && len(f.ok("chat.update")) == 2 })
	if r := f.ok("chat.postMessage")[2]; r.form.Get("thread_ts") != parent || !strings.Contains(r.form.Get("blocks"), "escalated from *high* to *critical*") {
		t.Errorf("escalation reply: %v %s", r.form.Get("thread_ts"), r.form.Get("blocks"))
	}
	same := esc
	same.UpdatedAt, same.Updates = t0.Add(3*time.Minute), 3
	_ = h.a.HandleDetection(context.Background(), same)
	waitFor(t, "the quiet edit", func() bool { return len(f.ok("chat.update")) == 3 })
	h.stop(t)
	if n := len(f.ok("chat.postMessage")); n != 3 {
		t.Errorf("%d posts; a same-severity update must only edit the parent", n)
	}
	if !strings.Contains(f.ok("chat.update")[2].form.Get("blocks"), `*Windows folded in*\n3`) {
		t.Errorf("last edit does not show the update: %s", f.ok("chat.update")[2].form.Get("blocks"))
	}
}

// jsonish is how a string appears inside the JSON of the blocks.
func jsonish(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// checkWellFormed checks the Block Kit limits and that every mrkdwn text
// object is verbatim.
func checkWellFormed(t *testing.T, raw string) {
	t.Helper()
	var blocks []map[string]any
	if err := json.Unmarshal([]byte(raw), &blocks); err != nil {
		t.Fatalf("blocks are not JSON: %v", err)
	}
	if len(blocks) == 0 || len(blocks) > 50 {
		t.Errorf("%d blocks; Slack takes 1 to 50", len(blocks))
	}
	if _, err := slackBlocks(raw); err != nil {
		t.Errorf("slack-go cannot read the blocks: %v", err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if x["type"] == "mrkdwn" {
				if x["verbatim"] != true {
					t.Errorf("mrkdwn text without verbatim: %v", x["text"])
				}
				if s, _ := x["text"].(string); len(s) > 3000 {
					t.Errorf("text of %d characters", len(s))
				}
			}
			if x["type"] == "header" {
				if s := x["text"].(map[string]any)["text"].(string); len([]rune(s)) > 150 {
					t.Errorf("header of %d characters", len([]rune(s)))
				}
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	for _, b := range blocks {
		walk(b)
	}
}

// A 429 is waited out for its Retry-After and the message is sent, not
// lost.
func TestRateLimitRetryAfterRespected(t *testing.T) {
	f := newFakeSlack(t)
	f.limit, f.retry = 2, "7"
	h := newHarness(t, botConfig(f))
	_ = h.a.HandleDetection(context.Background(), detection("det-1", "frontend", "ledger", models.SeverityHigh))
	h.start()
	waitFor(t, "the post after two 429s", func() bool { return len(f.ok("chat.postMessage")) == 1 })
	h.stop(t)

	calls := f.all()
	if len(calls) != 3 || calls[0].status != 429 || calls[1].status != 429 || calls[2].status != 200 {
		t.Fatalf("calls %+v; want 429, 429, 200", calls)
	}
	if calls[2].form.Get("blocks") != calls[0].form.Get("blocks") {
		t.Error("the retried message differs from the rate-limited one")
	}
	sevens := 0
	for _, w := range h.clock.waited() {
		if w == 7*time.Second {
			sevens++
		}
	}
	if sevens != 2 {
		t.Errorf("waits %v; want two of 7s (Retry-After)", h.clock.waited())
	}
	if v := metricValue(t, h.reg, "meshguard_alert_rate_limited_total"); v != 2 {
		t.Errorf("rate_limited_total %v, want 2", v)
	}
	if v := metricValue(t, h.reg, "meshguard_alert_sent_total", "op", "post"); v != 1 {
		t.Errorf("sent_total{op=post} %v, want 1", v)
	}
}

// Webhook mode: the same message through an incoming webhook; later
// changes are new messages naming the incident; nothing is edited.
func TestWebhookMode(t *testing.T) {
	sink := newWebhookSink(t)
	cfg := DefaultConfig().Slack
	cfg.WebhookURL = sink.srv.URL + "/services/T0/B0/secret"
	h := newHarness(t, cfg)
	d := detection("det-1", "frontend", "ledger", models.SeverityCritical)
	_ = h.a.HandleDetection(context.Background(), d)
	_ = h.a.HandleAction(context.Background(), action("act-1", models.StateApplied), d)
	h.start()
	waitFor(t, "the webhook message", func() bool { m, _ := sink.got(); return len(m) == 1 })
	revoked := action("act-1", models.StateRevoked)
	revoked.At = t0.Add(time.Minute)
	_ = h.a.HandleAction(context.Background(), revoked, d)
	waitFor(t, "the follow-up", func() bool { m, _ := sink.got(); return len(m) == 2 })
	h.stop(t)

	msgs, raw := sink.got()
	if len(msgs) != 2 {
		t.Fatalf("%d webhook messages, want 2", len(msgs))
	}
	if msgs[0].Blocks == nil || len(msgs[0].Blocks.BlockSet) < 4 {
		t.Fatalf("first webhook message has no Block Kit body: %s", raw[0])
	}
	checkWellFormed(t, mustJSON(t, msgs[0].Blocks))
	for _, want := range []string{"CRITICAL · lateral_movement", "`/admin/export` ×40", "`payments/meshguard-deny-7c1e`", "*applied*"} {
		if !strings.Contains(raw[0], jsonish(want)) {
			t.Errorf("webhook message lacks %q", want)
		}
	}
	if strings.Contains(raw[0], "mg_approve") {
		t.Error("buttons shown without a signing secret")
	}
	if !strings.Contains(raw[1], "Update to") || !strings.Contains(raw[1], "*revoked*") || !strings.Contains(raw[1], jsonish("`det-1`")) {
		t.Errorf("follow-up does not name the incident and the change: %s", raw[1])
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A storm of 200 detections from one source (many edges) becomes the
// first incident plus one summary; another source is not swallowed.
func TestStormGroupedIntoOneSummary(t *testing.T) {
	f := newFakeSlack(t)
	cfg := botConfig(f)
	cfg.QueueSize = 1000
	h := newHarness(t, cfg)
	kinds := []models.DetectionKind{models.LateralMovement, models.Scan}
	for i := range 200 {
		d := detection(fmt.Sprintf("det-%03d", i), "frontend", fmt.Sprintf("svc-%03d", i), models.SeverityMedium)
		d.Kind = kinds[i%2]
		if i == 150 {
			d.Severity = models.SeverityCritical
		}
		_ = h.a.HandleDetection(context.Background(), d)
	}
	_ = h.a.HandleDetection(context.Background(), detection("other-1", "checkout", "ledger", models.SeverityHigh))
	h.start()
	waitFor(t, "three messages", func() bool { return len(f.ok("chat.postMessage")) >= 3 })
	h.stop(t)

	posts := f.ok("chat.postMessage")
	if len(posts) != 3 {
		t.Fatalf("%d messages for a storm of 200 and one other detection; want 3 (first, other, summary)", len(posts))
	}
	var summaries []string
	for _, p := range posts {
		if strings.Contains(p.form.Get("blocks"), "storm of") {
			summaries = append(summaries, p.form.Get("blocks"))
		}
	}
	if len(summaries) != 1 {
		t.Fatalf("%d summaries, want 1", len(summaries))
	}
	s := summaries[0]
	checkWellFormed(t, s)
	for _, want := range []string{"CRITICAL · storm of 199 detections", "*199 more detection(s)* from `shop/frontend`", "`scan` ×100", "`lateral_movement` ×99", "*Destinations* (199)"} {
		if !strings.Contains(s, jsonish(want)) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
}

// A full queue drops the oldest, counts it and says so in the next
// message; HandleDetection returns without a running sender.
func TestFullQueueDropsOldestAndReports(t *testing.T) {
	f := newFakeSlack(t)
	cfg := botConfig(f)
	cfg.QueueSize, cfg.GroupWindow = 5, 0
	h := newHarness(t, cfg)
	for i := range 20 {
		if err := h.a.HandleDetection(context.Background(), detection(fmt.Sprintf("det-%02d", i), fmt.Sprintf("src-%02d", i), "ledger", models.SeverityHigh)); err != nil {
			t.Fatal(err)
		}
	}
	if v := metricValue(t, h.reg, "meshguard_alert_dropped_total"); v != 15 {
		t.Errorf("dropped_total %v, want 15", v)
	}
	if v := metricValue(t, h.reg, "meshguard_alert_queue_length"); v != 5 {
		t.Errorf("queue_length %v, want 5", v)
	}
	h.start()
	waitFor(t, "five messages", func() bool { return len(f.ok("chat.postMessage")) == 5 })
	h.stop(t)
	posts := f.ok("chat.postMessage")
	if !strings.Contains(posts[0].form.Get("blocks"), "15 alert event(s) were dropped") {
		t.Errorf("first message does not report the drops: %s", posts[0].form.Get("blocks"))
	}
	if !strings.Contains(posts[0].form.Get("blocks"), "det-15") {
		t.Error("the oldest were not the ones dropped: first kept should be det-15")
	}
	for _, p := range posts[1:] {
		if strings.Contains(p.form.Get("blocks"), "were dropped") {
			t.Error("drops reported twice")
		}
	}
}

// Run drains what is queued when its context ends.
func TestShutdownDrains(t *testing.T) {
	f := newFakeSlack(t)
	h := newHarness(t, botConfig(f))
	_ = h.a.HandleDetection(context.Background(), detection("det-1", "frontend", "ledger", models.SeverityHigh))
	_ = h.a.HandleDetection(context.Background(), detection("det-2", "frontend", "orders", models.SeverityHigh))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.a.Run(ctx); err != nil {
		t.Fatal(err)
	}
	posts := f.ok("chat.postMessage")
	if len(posts) != 2 {
		t.Fatalf("%d messages after the drain; want both incidents", len(posts))
	}
	// After Run returned, events are refused and counted, not lost silently.
	if err := h.a.HandleDetection(context.Background(), detection("det-3", "x", "y", models.SeverityLow)); !errors.Is(err, ErrStopped) {
		t.Errorf("HandleDetection after Run: %v, want ErrStopped", err)
	}
	if v := metricValue(t, h.reg, "meshguard_alert_dropped_total"); v != 1 {
		t.Errorf("dropped_total %v after a late event, want 1", v)
	}
	// The second came in the first one's grouping window; one more is no
	// storm, so it has a message of its own.
	if b := posts[1].form.Get("blocks"); strings.Contains(b, "storm") || !strings.Contains(b, "payments/orders") {
		t.Errorf("second message is not the det-2 incident: %s", b)
	}
}

func TestDisabledAlerterAcceptsAndDiscards(t *testing.T) {
	a, err := New(DefaultConfig(), Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.HandleDetection(context.Background(), detection("d", "a", "b", models.SeverityLow)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Run(ctx); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	a.InteractionHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/slack/interactions", strings.NewReader("")))
	if rec.Code != http.StatusNotFound {
		t.Errorf("interactions while off: %d, want 404", rec.Code)
	}
}

// Hostile telemetry cannot mention, link or format.
func TestEscapingHostileTelemetry(t *testing.T) {
	hostile := []string{
		"<!channel>", "<!here|here>", "<@U0ADMIN>", "<#C0SECRET>", "<http://evil.example|click me>",
		"@channel @here", "*bold* _it_ ~strike~ `code` ```block```", "a\nb\r\n> quote",
		"&lt;!channel&gt;", "\u202egnp.exe", "x\u200by", "\x00\x1b[31m", string([]byte{0xff, 0xfe}),
		strings.Repeat("A", 5000),
	}
	for _, s := range hostile {
		got := code(s)
		inner := strings.TrimSuffix(strings.TrimPrefix(got, "`"), "`")
		switch {
		case !strings.HasPrefix(got, "`") || !strings.HasSuffix(got, "`"):
			t.Errorf("code(%q) = %q: not one code span", s, got)
		case strings.ContainsAny(inner, "`<>\n\r\x00\x1b\u202e\u200b"):
			t.Errorf("code(%q) = %q: a control, bracket or backtick got through", s, got)
		case strings.Contains(strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(inner, "&amp;", ""), "&lt;", ""), "&gt;", ""), "&"):
			t.Errorf("code(%q) = %q: a bare & got through", s, got)
		case len([]rune(inner)) > maxValue+1:
			t.Errorf("code(%q...) is %d runes long", s[:10], len([]rune(inner)))
		}
	}
	if got := code("<!channel>"); got != "`&lt;!channel&gt;`" {
		t.Errorf("code(<!channel>) = %s", got)
	}

	// The whole message, with every telemetry field hostile.
	f := newFakeSlack(t)
	h := newHarness(t, botConfig(f))
	d := detection("det-1", "frontend", "ledger", models.SeverityHigh)
	d.Source = models.Party{Principal: "<!channel>", Workload: "*pwn*", Namespace: "<http://evil.example|ns>", IP: "`1.2.3.4`"}
	d.Destination = models.Party{Workload: "<@U0ADMIN>", Service: "@here"}
	d.Evidence.TopPaths = []models.Count{{Value: "/login?next=<https://evil.example|Reset your password>", Count: 9}}
	d.Evidence.Summary = "<!everyone> please approve"
	d.Evidence.SampleRequestIDs = []string{"```\n<!channel>"}
	d.Evidence.Features[0].Feature = "_x_ <!subteam^S0>"
	a := action("act-1", models.StateApplied)
	a.Target, a.Reason, a.Actor = "<!channel> -> <@U0>", "path <http://x|y>", "<!here>"
	_ = h.a.HandleDetection(context.Background(), d)
	_ = h.a.HandleAction(context.Background(), a, d)
	h.start()
	waitFor(t, "the message", func() bool { return len(f.ok("chat.postMessage")) == 1 })
	h.stop(t)
	post := f.ok("chat.postMessage")[0]
	var blocks []map[string]any
	_ = json.Unmarshal([]byte(post.form.Get("blocks")), &blocks)
	checkWellFormed(t, post.form.Get("blocks"))
	for _, text := range append(mrkdwnTexts(blocks), post.form.Get("text")) {
		for _, bad := range []string{"<!", "<@", "<#", "<http", "\n<"} {
			if strings.Contains(text, bad) {
				t.Errorf("injected %q reached Slack in %q", bad, text)
			}
		}
		// Outside code spans (where Slack formats), no telemetry at all.
		outside := codeSpan.ReplaceAllString(text, "")
		for _, bad := range []string{"pwn", "evil", "Reset", "@here", "everyone", "1.2.3.4", "subteam"} {
			if strings.Contains(outside, bad) {
				t.Errorf("telemetry %q outside a code span in %q", bad, text)
			}
		}
	}
}

var codeSpan = regexp.MustCompile("`[^`\n]*`")

func mrkdwnTexts(v any) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		if x["type"] == "mrkdwn" {
			out = append(out, x["text"].(string))
		}
		for _, e := range x {
			out = append(out, mrkdwnTexts(e)...)
		}
	case []any:
		for _, e := range x {
			out = append(out, mrkdwnTexts(e)...)
		}
	case []map[string]any:
		for _, e := range x {
			out = append(out, mrkdwnTexts(e)...)
		}
	}
	return out
}

func TestConfigValidate(t *testing.T) {
	if err := (&Config{Slack: DefaultConfig().Slack}).Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	dir := t.TempDir()
	empty := dir + "/empty"
	if err := writeFile(empty, "\n"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mod  func(c *SlackConfig)
		want []string
	}{
		{"both modes", func(c *SlackConfig) { c.WebhookURL, c.Token, c.Channel = "https://hooks.slack.com/x", "xoxb", "C1" }, []string{"alert.slack.webhook_url and alert.slack.token are both set"}},
		{"bot without channel", func(c *SlackConfig) { c.Token = "xoxb" }, []string{"alert.slack.channel: empty"}},
		{"secret and file", func(c *SlackConfig) { c.Token, c.TokenFile, c.Channel = "xoxb", empty, "C1" }, []string{"alert.slack.token and alert.slack.token_file are both set", "alert.slack.token_file: " + empty + " is empty"}},
		{"missing file", func(c *SlackConfig) { c.SigningSecretFile, c.AllowedUsers = dir+"/nope", []string{"U1"} }, []string{"alert.slack.signing_secret_file: open"}},
		{"bad webhook", func(c *SlackConfig) { c.WebhookURL = "hooks.slack.com/services/SECRETPART" }, []string{"alert.slack.webhook_url: not an http(s) URL"}},
		{"no allow list", func(c *SlackConfig) { c.WebhookURL, c.SigningSecret = "https://h/x", "s" }, []string{"alert.slack.allowed_users: empty"}},
		{"groups need bot", func(c *SlackConfig) { c.WebhookURL, c.AllowedGroups = "https://h/x", []string{"oncall"} }, []string{"alert.slack.allowed_groups: resolving"}},
		{"bad template", func(c *SlackConfig) { c.LinkTemplate = "https://g/{{.Nope}}" }, []string{"alert.slack.link_template:"}},
		{"template not a URL", func(c *SlackConfig) { c.LinkTemplate = "{detection_id}" }, []string{"alert.slack.link_template:", "http(s) URL"}},
		{"tuning", func(c *SlackConfig) {
			c.QueueSize, c.GroupWindow, c.ExtendBy, c.SendInterval = 0, -time.Second, time.Second, time.Hour
		}, []string{"alert.slack.queue_size: 0", "alert.slack.group_window: -1s", "alert.slack.extend_by: 1s", "alert.slack.send_interval: 1h0m0s"}},
		{"bad api url", func(c *SlackConfig) { c.APIURL = "::" }, []string{"alert.slack.api_url:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(&c.Slack)
			err := c.Validate()
			if err == nil {
				t.Fatal("valid; want errors")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "SECRETPART") {
				t.Errorf("error quotes the webhook URL: %v", err)
			}
		})
	}
}

func writeFile(path, s string) error {
	return os.WriteFile(path, []byte(s), 0o600)
}

// Secrets never show in String, %v, %+v, %#v, slog text or JSON, or the
// Alerter's own log lines; *_file secrets are read.
func TestSecretsRedacted(t *testing.T) {
	dir := t.TempDir()
	if err := writeFile(dir+"/token", "xoxb-FILE-TOKEN\n"); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.Slack.TokenFile, c.Slack.Channel = dir+"/token", "C1"
	c.Slack.SigningSecret, c.Slack.AllowedUsers = "SIGNING-SECRET-VALUE", []string{"U1"}
	w := c
	w.Slack.TokenFile, w.Slack.Channel = "", ""
	w.Slack.WebhookURL = "https://hooks.slack.com/services/T0/B0/WEBHOOK-SECRET"
	secrets := []string{"xoxb-FILE-TOKEN", "SIGNING-SECRET-VALUE", "WEBHOOK-SECRET"}
	var out strings.Builder
	for _, cfg := range []Config{c, w} {
		r, err := cfg.Slack.resolved()
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []any{r, Config{Slack: r}} {
			fmt.Fprintf(&out, "%s %v %+v %#v\n", v, v, v, v)
			slog.New(slog.NewTextHandler(&out, nil)).Info("cfg", "cfg", v)
			slog.New(slog.NewJSONHandler(&out, nil)).Info("cfg", "cfg", v)
		}
		a, err := New(cfg, Deps{Log: slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})), Actions: &auditLog{}})
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Slack.TokenFile != "" && a.cfg.Token != "xoxb-FILE-TOKEN" {
			t.Errorf("token_file not read: %q", a.cfg.Token)
		}
	}
	for _, s := range secrets {
		if strings.Contains(out.String(), s) {
			t.Errorf("secret %q printed:\n%s", s, out.String())
		}
	}
	if !strings.Contains(out.String(), "[redacted]") {
		t.Error("nothing redacted: the test printed nothing useful")
	}
}

// A link template that pastes telemetry unescaped cannot break the message:
// the link is left out, the rest is sent.
func TestLinkTemplateWithHostileValuesIsDropped(t *testing.T) {
	r := renderer{}
	var err error
	if r.link, err = parseLink("https://grafana.example/d/mesh?src={{.Source}}"); err != nil {
		t.Fatal(err)
	}
	d := detection("det-1", "frontend", "ledger", models.SeverityHigh)
	if r.linkButton(d) == nil {
		t.Fatal("a plain source should make a link")
	}
	d.Source.Workload = "x y\n<!channel>"
	if b := r.linkButton(d); b != nil {
		t.Errorf("link kept for a source with spaces: %+v", b)
	}
	if r.link, err = parseLink("https://grafana.example/d/mesh?src={{.Source | urlquery}}"); err != nil {
		t.Fatal(err)
	}
	b := r.linkButton(d)
	if b == nil {
		t.Fatal("urlquery'd link dropped")
	}
	if u := mustJSON(t, b); !strings.Contains(u, "src=shop%2Fx+y%0A%3C%21channel%3E") {
		t.Errorf("link %s", u)
	}
}

// Slack refusing the blocks still gets the incident out, as text, and its
// thread works.
func TestRefusedBlocksFallBackToText(t *testing.T) {
	f := newFakeSlack(t)
	f.reject = "REJECTME"
	h := newHarness(t, botConfig(f))
	d := detection("det-1", "frontend", "ledger", models.SeverityHigh)
	d.Evidence.Summary = "REJECTME"
	_ = h.a.HandleDetection(context.Background(), d)
	h.start()
	waitFor(t, "the text post", func() bool { return len(f.ok("chat.postMessage")) == 1 })
	p := f.ok("chat.postMessage")[0]
	if !strings.Contains(p.form.Get("text"), "refused by Slack") || !strings.Contains(p.form.Get("text"), "`det-1`") {
		t.Errorf("fallback post %q", p.form.Get("text"))
	}
	revoked := action("act-1", models.StateRevoked)
	_ = h.a.HandleAction(context.Background(), revoked, d)
	waitFor(t, "the thread reply", func() bool { return len(f.ok("chat.postMessage")) == 2 })
	h.stop(t)
	if r := f.ok("chat.postMessage")[1]; r.form.Get("thread_ts") != p.ts {
		t.Errorf("reply not in the fallback's thread: %q vs %q", r.form.Get("thread_ts"), p.ts)
	}
}

// A post that failed for good is made again, complete, at the next change.
func TestFailedPostIsRetriedAtTheNextChange(t *testing.T) {
	f := newFakeSlack(t)
	f.errNext = []string{"channel_not_found"}
	h := newHarness(t, botConfig(f))
	d := detection("det-1", "frontend", "ledger", models.SeverityHigh)
	_ = h.a.HandleDetection(context.Background(), d)
	h.start()
	waitFor(t, "the failed post", func() bool { return len(f.all()) == 1 })
	revoked := action("act-1", models.StateRevoked)
	_ = h.a.HandleAction(context.Background(), revoked, d)
	waitFor(t, "the new post", func() bool { return len(f.ok("chat.postMessage")) == 1 })
	h.stop(t)
	p := f.ok("chat.postMessage")[0]
	if p.form.Get("thread_ts") != "" || !strings.Contains(p.form.Get("blocks"), "*revoked*") || !strings.Contains(p.form.Get("blocks"), "/admin/export") {
		t.Errorf("the re-post should be the whole incident with the change: %s", p.form.Get("blocks"))
	}
	if n := len(f.all()); n != 2 {
		t.Errorf("%d calls; want the failed post and the re-post (a permanent error is not retried)", n)
	}
	if v := metricValue(t, h.reg, "meshguard_alert_errors_total", "op", "post"); v != 1 {
		t.Errorf("errors_total{op=post} %v, want 1", v)
	}
}

// A later part of an incident goes into its head's thread: one message
// per incident, even with storm grouping off.
func TestIncidentPartsThreadUnderTheHead(t *testing.T) {
	f := newFakeSlack(t)
	cfg := botConfig(f)
	cfg.GroupWindow = 0
	h := newHarness(t, cfg)
	head := detection("det-head", "frontend", "cart", models.SeverityHigh)
	head.IncidentID = head.ID
	part := detection("det-part", "frontend", "payments", models.SeverityHigh)
	part.Kind, part.IncidentID = models.CredentialStuffing, head.ID
	other := detection("det-other", "checkout", "ledger", models.SeverityHigh)
	other.IncidentID = other.ID
	h.start()
	_ = h.a.HandleDetection(context.Background(), head)
	waitFor(t, "the head's message", func() bool { return len(f.ok("chat.postMessage")) >= 1 })
	_ = h.a.HandleDetection(context.Background(), part)
	_ = h.a.HandleDetection(context.Background(), other)
	waitFor(t, "the other incident's message and the part's reply", func() bool { return len(f.ok("chat.postMessage")) >= 3 })
	h.stop(t)
	var parents, replies int
	for _, p := range f.ok("chat.postMessage") {
		if p.form.Get("thread_ts") == "" {
			parents++
		} else {
			replies++
			if !strings.Contains(p.form.Get("text")+p.form.Get("blocks"), "Same incident") {
				t.Errorf("thread reply without the part: %v", p.form)
			}
		}
	}
	if parents != 2 || replies != 1 {
		t.Errorf("%d messages and %d thread replies, want 2 (one per incident) and 1 (the part)", parents, replies)
	}
}
