package alert

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/storage"
)

// postIncident runs h and waits for det-1 with a dry-run action in Slack.
func postIncident(t *testing.T, h *harness, f *fakeSlack) models.Detection {
	t.Helper()
	d := detection("det-1", "frontend", "ledger", models.SeverityHigh)
	_ = h.a.HandleDetection(context.Background(), d)
	_ = h.a.HandleAction(context.Background(), action("act-1", models.StateApplied), d)
	h.start()
	waitFor(t, "the incident", func() bool { return len(f.ok("chat.postMessage")) == 1 })
	return d
}

func serve(h *harness, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.a.InteractionHandler().ServeHTTP(rec, r)
	return rec
}

// Approve by an allowed user: the Controller is called with the actor,
// the click is audited, the thread and the parent show the promotion,
// and the responder's own report of the same change is not shown twice.
func TestInteractionApproveByAllowedUser(t *testing.T) {
	f := newFakeSlack(t)
	sink := newWebhookSink(t)
	h := newHarness(t, botConfig(f))
	d := postIncident(t, h, f)
	parent := f.ok("chat.postMessage")[0].ts

	rec := serve(h, signed("s3cr3t-signing", h.clock.Now(), clickPayload(buttonApprove, "act-1", "U0ALICE", "alice", sink.srv.URL)))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	// The same signed request again (a replay inside the five minutes):
	// acknowledged, not done twice.
	if rec := serve(h, signed("s3cr3t-signing", h.clock.Now(), clickPayload(buttonApprove, "act-1", "U0ALICE", "alice", sink.srv.URL))); rec.Code != http.StatusOK {
		t.Fatalf("replay: status %d", rec.Code)
	}
	if got := h.ctrl.seen(); len(got) != 1 || got[0] != "approve act-1 slack:alice/U0ALICE" {
		t.Fatalf("controller calls %q; want one approve", got)
	}
	rows := h.audit.all()
	if len(rows) != 1 {
		t.Fatalf("%d audit rows, want 1: %+v", len(rows), rows)
	}
	if r := rows[0]; r.ActionID != "act-1" || r.DetectionID != "det-1" || r.State != "promoted" || r.Mode != "enforce" ||
		r.Actor != "slack:alice/U0ALICE" || r.Kind != "block_edge" || r.PolicyName != "meshguard-deny-7c1e" || r.At.IsZero() {
		t.Errorf("audit row %+v", r)
	}
	waitFor(t, "the promotion in the thread and the edit", func() bool {
		return len(f.ok("chat.postMessage")) == 2 && len(f.ok("chat.update")) == 1
	})
	if r := f.ok("chat.postMessage")[1]; r.form.Get("thread_ts") != parent || !strings.Contains(r.form.Get("blocks"), "*promoted*") || !strings.Contains(r.form.Get("blocks"), "slack:alice/U0ALICE") {
		t.Errorf("thread reply %s", r.form.Get("blocks"))
	}

	// The responder reports the same change: nothing new in Slack.
	promoted := action("act-1", models.StatePromoted)
	promoted.Mode, promoted.Actor, promoted.At = models.ModeEnforce, "slack:alice/U0ALICE", t0.Add(time.Minute)
	_ = h.a.HandleAction(context.Background(), promoted, d)
	h.stop(t)
	if n, u := len(f.ok("chat.postMessage")), len(f.ok("chat.update")); n != 2 || u != 1 {
		t.Errorf("%d posts and %d edits after the duplicate report; want 2 and 1", n, u)
	}
	if m, _ := sink.got(); len(m) != 0 {
		t.Errorf("bot mode answered through the response URL too: %+v", m)
	}
	if v := metricValue(t, h.reg, "meshguard_alert_interactions_total", "result", "done"); v != 1 {
		t.Errorf("interactions{done} %v", v)
	}
}

// Revoke and Extend (by the configured step) by an allowed user ID.
func TestInteractionRevokeAndExtend(t *testing.T) {
	f := newFakeSlack(t)
	h := newHarness(t, botConfig(f))
	postIncident(t, h, f)
	if rec := serve(h, signed("s3cr3t-signing", h.clock.Now(), clickPayload(buttonExtend, "act-1", "U0BOB", "bob", ""))); rec.Code != 200 {
		t.Fatalf("extend: %d", rec.Code)
	}
	if rec := serve(h, signed("s3cr3t-signing", h.clock.Now(), clickPayload(buttonRevoke, "act-1", "U0BOB", "bob", ""))); rec.Code != 200 {
		t.Fatalf("revoke: %d", rec.Code)
	}
	want := []string{"extend 1h0m0s act-1 slack:bob/U0BOB", "revoke act-1 slack:bob/U0BOB"}
	if got := h.ctrl.seen(); strings.Join(got, ";") != strings.Join(want, ";") {
		t.Errorf("controller calls %q, want %q", got, want)
	}
	var states []string
	for _, r := range h.audit.all() {
		states = append(states, r.State+" "+r.Actor)
	}
	if strings.Join(states, ";") != "extended slack:bob/U0BOB;revoked slack:bob/U0BOB" {
		t.Errorf("audit %q", states)
	}
	waitFor(t, "both changes in the thread", func() bool { return len(f.ok("chat.postMessage")) == 3 })
	h.stop(t)
	last := f.ok("chat.update")
	if len(last) == 0 {
		t.Fatal("parent never edited")
	}
	b := last[len(last)-1].form.Get("blocks")
	if !strings.Contains(b, "*revoked*") || strings.Contains(b, "mg_revoke") {
		t.Errorf("parent after revoke should show revoked and no buttons: %s", b)
	}
}

// A user on no allow-list is refused, audited and told; nothing changes.
func TestInteractionRefusedUserIsAudited(t *testing.T) {
	f := newFakeSlack(t)
	sink := newWebhookSink(t)
	h := newHarness(t, botConfig(f))
	postIncident(t, h, f)
	rec := serve(h, signed("s3cr3t-signing", h.clock.Now(), clickPayload(buttonApprove, "act-1", "U0MALLORY", "mallory", sink.srv.URL)))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if got := h.ctrl.seen(); len(got) != 0 {
		t.Fatalf("controller called for a refused user: %q", got)
	}
	rows := h.audit.all()
	if len(rows) != 1 || rows[0].State != StateRefused || rows[0].Actor != "slack:mallory/U0MALLORY" || rows[0].ActionID != "act-1" || !strings.Contains(rows[0].Reason, "allowed_users") {
		t.Fatalf("audit %+v; want one refused row with the actor", rows)
	}
	waitFor(t, "the ephemeral refusal", func() bool { m, _ := sink.got(); return len(m) == 1 })
	h.stop(t)
	m, _ := sink.got()
	if m[0].ResponseType != "ephemeral" || m[0].ReplaceOriginal || !strings.Contains(m[0].Text, "may not approve") {
		t.Errorf("refusal %+v", m[0])
	}
	if n := len(f.ok("chat.postMessage")); n != 1 {
		t.Errorf("%d channel messages; a refusal is shown only to the user", n)
	}
}

// Forged, tampered and stale requests are refused before anything else:
// no Controller call, no audit row (the sender is unknown).
func TestInteractionSignatureChecks(t *testing.T) {
	f := newFakeSlack(t)
	h := newHarness(t, botConfig(f))
	now := h.clock.Now()
	payload := clickPayload(buttonApprove, "act-1", "U0ALICE", "alice", "")

	forged := signed("not-the-secret", now, payload)
	tampered := signed("s3cr3t-signing", now, payload)
	body := strings.Replace(readAll(t, tampered), "U0ALICE", "U0ALICF", 1)
	tampered.Body = ioNopCloser(body)
	stale := signed("s3cr3t-signing", time.Now().Add(-10*time.Minute), payload)
	future := signed("s3cr3t-signing", now.Add(10*time.Minute), payload)
	unsigned := signed("s3cr3t-signing", now, payload)
	unsigned.Header.Del("X-Slack-Signature")

	for name, r := range map[string]*http.Request{"forged": forged, "tampered": tampered, "stale": stale, "future": future, "unsigned": unsigned} {
		if rec := serve(h, r); rec.Code != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, rec.Code)
		}
	}
	if got := h.ctrl.seen(); len(got) != 0 {
		t.Errorf("controller called: %q", got)
	}
	if rows := h.audit.all(); len(rows) != 0 {
		t.Errorf("unauthenticated requests audited: %+v", rows)
	}
	if v := metricValue(t, h.reg, "meshguard_alert_interactions_total", "result", "stale"); v != 2 {
		t.Errorf("interactions{stale} %v, want 2", v)
	}
	if v := metricValue(t, h.reg, "meshguard_alert_interactions_total", "result", "forged"); v != 3 {
		t.Errorf("interactions{forged} %v, want 3", v)
	}
	// The same request, correctly signed and fresh, passes: the checks
	// above failed for the reason tested.
	if rec := serve(h, signed("s3cr3t-signing", now, payload)); rec.Code != http.StatusOK {
		t.Errorf("valid request: %d", rec.Code)
	}
	if got := h.ctrl.seen(); len(got) != 1 {
		t.Errorf("valid request did not reach the controller: %q", got)
	}
	if rec := serve(h, httptest.NewRequest(http.MethodGet, "/slack/interactions", nil)); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", rec.Code)
	}
}

// Members of an allowed user group may act; the group is resolved
// through the Web API.
func TestInteractionAllowedGroup(t *testing.T) {
	f := newFakeSlack(t)
	cfg := botConfig(f)
	cfg.AllowedUsers, cfg.AllowedGroups = nil, []string{"S0ONCALL"}
	h := newHarness(t, cfg)
	now := h.clock.Now()
	serve(h, signed("s3cr3t-signing", now, clickPayload(buttonRevoke, "act-1", "U0GROUPIE", "gina", "")))
	serve(h, signed("s3cr3t-signing", now, clickPayload(buttonRevoke, "act-1", "U0ALICE", "alice", "")))
	if got := h.ctrl.seen(); len(got) != 1 || got[0] != "revoke act-1 slack:gina/U0GROUPIE" {
		t.Errorf("controller calls %q; only the group member may act", got)
	}
	rows := h.audit.all()
	if len(rows) != 2 || rows[0].State != "revoked" || rows[1].State != StateRefused || rows[1].Actor != "slack:alice/U0ALICE" {
		t.Errorf("audit %+v", rows)
	}
}

// A Controller error is audited as failed and told to the user.
func TestInteractionControllerFailure(t *testing.T) {
	f := newFakeSlack(t)
	sink := newWebhookSink(t)
	h := newHarness(t, botConfig(f))
	h.ctrl.fail = errors.New("policy <!channel> not found")
	h.start()
	serve(h, signed("s3cr3t-signing", h.clock.Now(), clickPayload(buttonApprove, "act-1", "U0ALICE", "alice", sink.srv.URL)))
	rows := h.audit.all()
	if len(rows) != 1 || rows[0].State != "failed" || !strings.Contains(rows[0].Reason, "not found") {
		t.Fatalf("audit %+v", rows)
	}
	waitFor(t, "the error message", func() bool { m, _ := sink.got(); return len(m) == 1 })
	h.stop(t)
	m, _ := sink.got()
	if m[0].ResponseType != "ephemeral" || strings.Contains(m[0].Text, "<!channel>") || !strings.Contains(m[0].Text, "approve failed") {
		t.Errorf("error message %+v", m[0])
	}
}

// Webhook mode: the message cannot be edited by the API, so a click
// replaces it through its response URL.
func TestInteractionWebhookModeReplacesOriginal(t *testing.T) {
	hook := newWebhookSink(t)
	resp := newWebhookSink(t)
	cfg := DefaultConfig().Slack
	cfg.WebhookURL, cfg.SigningSecret, cfg.AllowedUsers = hook.srv.URL, "s3cr3t-signing", []string{"U0ALICE"}
	h := newHarness(t, cfg)
	d := detection("det-1", "frontend", "ledger", models.SeverityHigh)
	_ = h.a.HandleDetection(context.Background(), d)
	_ = h.a.HandleAction(context.Background(), action("act-1", models.StateApplied), d)
	h.start()
	waitFor(t, "the webhook message", func() bool { m, _ := hook.got(); return len(m) == 1 })
	if _, raw := hook.got(); !strings.Contains(raw[0], `"action_id":"mg_approve"`) {
		t.Fatalf("no buttons in the webhook message: %s", raw[0])
	}
	serve(h, signed("s3cr3t-signing", h.clock.Now(), clickPayload(buttonApprove, "act-1", "U0ALICE", "alice", resp.srv.URL)))
	waitFor(t, "the replacement", func() bool { m, _ := resp.got(); return len(m) == 1 })
	h.stop(t)
	m, raw := resp.got()
	if !m[0].ReplaceOriginal || !strings.Contains(raw[0], "*promoted*") || !strings.Contains(raw[0], "/admin/export") || strings.Contains(raw[0], "mg_approve") {
		t.Errorf("replacement should be the whole incident, promoted, without Approve: %s", raw[0])
	}
}

var _ storage.ActionWriter = (*auditLog)(nil)
var _ Controller = (*controller)(nil)
