package alert

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshguard/meshguard/models"
)

// Approvers are matched by user ID and team ID only (issue 13): a user
// whose chosen name is an allowed ID, and an allowed ID clicking from
// another workspace, are refused and audited; the allowed user of the
// configured team acts.
func TestApproversMatchedByIDAndTeamOnly(t *testing.T) {
	f := newFakeSlack(t)
	cfg := botConfig(f)
	cfg.TeamID = "T0MESH"
	h := newHarness(t, cfg)
	now := h.clock.Now()
	clicks := []map[string]any{
		// UEVIL999 renamed itself after an approver's ID.
		clickPayload(buttonRevoke, "act-1", "UEVIL999", "u0alice", ""),
		clickPayload(buttonRevoke, "act-1", "UEVIL998", "U0ALICE", ""),
		// Another workspace's bob, with bob's name and even his ID.
		teamClick(buttonRevoke, "act-1", "T0OTHER", "U0OTHERBOB", "bob", ""),
		teamClick(buttonRevoke, "act-1", "T0OTHER", "U0BOB", "bob", ""),
		clickPayload(buttonRevoke, "act-1", "U0ALICE", "alice", ""),
	}
	for i, c := range clicks {
		// Distinct action_ts: not replays of one another.
		c["actions"].([]map[string]any)[0]["action_ts"] = "1795000001.00000" + string(rune('1'+i))
		if rec := serve(h, signed("s3cr3t-signing", now, c)); rec.Code != http.StatusOK {
			t.Fatalf("click %d: status %d", i, rec.Code)
		}
	}
	if got := h.ctrl.seen(); len(got) != 1 || got[0] != "revoke act-1 slack:alice/U0ALICE" {
		t.Fatalf("controller calls %q; only U0ALICE of T0MESH may act", got)
	}
	var states []string
	for _, r := range h.audit.all() {
		states = append(states, r.State+" "+r.Actor)
	}
	want := "refused slack:u0alice/UEVIL999;refused slack:U0ALICE/UEVIL998;refused slack:bob/U0OTHERBOB;refused slack:bob/U0BOB;revoked slack:alice/U0ALICE"
	if strings.Join(states, ";") != want {
		t.Errorf("audit\n%q\nwant\n%q", strings.Join(states, ";"), want)
	}
	if r := h.audit.all()[3]; !strings.Contains(r.Reason, "another Slack team") {
		t.Errorf("other team's refusal says %q; want the team named as the reason", r.Reason)
	}

	// Without team_id the ID alone decides: still no name matches.
	cfg.TeamID = ""
	h2 := newHarness(t, cfg)
	serve(h2, signed("s3cr3t-signing", now, clickPayload(buttonRevoke, "act-1", "UEVIL999", "u0alice", "")))
	serve(h2, signed("s3cr3t-signing", now, teamClick(buttonRevoke, "act-1", "T0OTHER", "U0OTHERBOB", "bob", "")))
	if got := h2.ctrl.seen(); len(got) != 0 {
		t.Errorf("names matched without team_id: %q", got)
	}
}

func TestApproverConfigTakesIDsOnly(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*SlackConfig)
		want string
	}{
		{"user name", func(c *SlackConfig) { c.AllowedUsers = []string{"U0ALICE", "bob"} }, `alert.slack.allowed_users: "bob" is not a Slack user ID`},
		{"lower-case id", func(c *SlackConfig) { c.AllowedUsers = []string{"u0alice"} }, `alert.slack.allowed_users: "u0alice" is not a Slack user ID`},
		{"bad team", func(c *SlackConfig) { c.TeamID = "mesh-workspace" }, `alert.slack.team_id: "mesh-workspace" is not a Slack team ID`},
		{"ok", func(c *SlackConfig) { c.AllowedUsers, c.TeamID = []string{"U0ALICE", "W0GRIDUSER"}, "T0MESH" }, ""},
	} {
		c := DefaultConfig().Slack
		c.WebhookURL, c.SigningSecret = "https://hooks.example/x", "s"
		tc.mod(&c)
		err := c.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v; want %q", tc.name, err, tc.want)
		}
	}
}

// With the webhook down, neither the log nor any error shows the
// webhook URL (a credential): not the first attempt, not the retries,
// not the final error.
func TestWebhookURLNeverLogged(t *testing.T) {
	const marker = "T0SECRET/B0SECRET/XsecretMarker0123456789"
	down := httptest.NewServer(http.NotFoundHandler())
	base := down.URL
	down.Close() // connection refused from now on
	var logs lockedBuffer
	cfg := DefaultConfig().Slack
	cfg.WebhookURL, cfg.SigningSecret, cfg.AllowedUsers = base+"/services/"+marker, "s3cr3t-signing", []string{"U0ALICE"}
	cfg.SendInterval = 0
	clock := newClock()
	ctrl := &controller{}
	a, err := New(Config{Slack: cfg}, Deps{Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Actions: &auditLog{}, Controller: ctrl, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	d := detection("det-1", "frontend", "ledger", models.SeverityHigh)
	_ = a.HandleDetection(context.Background(), d)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	waitFor(t, "the failed post in the log", func() bool { return strings.Contains(logs.String(), "Slack message not sent") })
	cancel()
	<-done
	out := logs.String()
	if !strings.Contains(out, "connection refused") || !strings.Contains(out, "Slack call failed; retrying") {
		t.Fatalf("the log does not show the failure being tested:\n%s", out)
	}
	if strings.Contains(out, marker) || strings.Contains(out, "/services/") {
		t.Errorf("the webhook URL is in the log:\n%s", out)
	}
	// The error itself, for callers that print it.
	werr := a.webhook(context.Background(), cfg.WebhookURL, nil)
	if werr == nil || strings.Contains(werr.Error(), marker) {
		t.Errorf("webhook error %v shows the URL", werr)
	}
}

// lockedBuffer is a log destination the test may read while it is written.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A Controller that refuses approvals (respond.mode below enforce) gets
// messages without an Approve button; Revoke stays.
func TestNoApproveButtonWhenApprovalsRefused(t *testing.T) {
	hook := newWebhookSink(t)
	cfg := DefaultConfig().Slack
	cfg.WebhookURL, cfg.SigningSecret, cfg.AllowedUsers = hook.srv.URL, "s3cr3t-signing", []string{"U0ALICE"}
	a, err := New(Config{Slack: cfg}, Deps{Actions: &auditLog{}, Controller: gated{&controller{}}, Clock: newClock()})
	if err != nil {
		t.Fatal(err)
	}
	d := detection("det-1", "frontend", "ledger", models.SeverityHigh)
	_ = a.HandleAction(context.Background(), action("act-1", models.StateApplied), d)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	waitFor(t, "the webhook message", func() bool { m, _ := hook.got(); return len(m) == 1 })
	cancel()
	<-done
	_, raw := hook.got()
	if strings.Contains(raw[0], "mg_approve") || !strings.Contains(raw[0], "mg_revoke") {
		t.Errorf("want Revoke and no Approve: %s", raw[0])
	}
}

type gated struct{ *controller }

func (gated) ApproveAllowed() bool { return false }

// Webhook mode cannot edit the first message: a later update carries the
// buttons of the incident's live actions too.
func TestWebhookUpdatesCarryButtons(t *testing.T) {
	hook := newWebhookSink(t)
	cfg := DefaultConfig().Slack
	cfg.WebhookURL, cfg.SigningSecret, cfg.AllowedUsers = hook.srv.URL, "s3cr3t-signing", []string{"U0ALICE"}
	cfg.SendInterval = 0
	h := newHarness(t, cfg)
	d := detection("det-1", "frontend", "ledger", models.SeverityHigh)
	_ = h.a.HandleDetection(context.Background(), d)
	h.start()
	waitFor(t, "the first message", func() bool { m, _ := hook.got(); return len(m) == 1 })
	if _, raw := hook.got(); strings.Contains(raw[0], "mg_revoke") {
		t.Fatalf("buttons before any action: %s", raw[0])
	}
	applied := action("act-1", models.StateApplied)
	applied.At = t0.Add(time.Second)
	_ = h.a.HandleAction(context.Background(), applied, d)
	waitFor(t, "the update", func() bool { m, _ := hook.got(); return len(m) == 2 })
	h.stop(t)
	_, raw := hook.got()
	if !strings.Contains(raw[1], `"action_id":"mg_revoke"`) || !strings.Contains(raw[1], `"block_id":"act:act-1"`) {
		t.Errorf("the update has no Revoke button for act-1: %s", raw[1])
	}
}
