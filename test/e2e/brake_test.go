package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/storage"
	"github.com/meshguard/meshguard/test/testenv"
)

// The human brake through `meshguard serve` (issue 13): a detection in
// ClickHouse becomes an enforced AuthorizationPolicy in the real
// kube-apiserver and a Slack message with Approve/Revoke buttons; a Revoke
// click, signed as Slack signs it, by an allowed user of the configured
// team, removes the policy and is audited with the user. A click from a
// user who only took an approver's ID as its name does nothing. After a
// restart the same attack again is held back by the revoke, and the
// actions table says so.
func TestServeSlackRevokeRemovesPolicy(t *testing.T) {
	brokers := testenv.Kafka(t)
	conn, db := testenv.ClickHouse(t)
	kube := testenv.KubeConfig(t)
	instance := "e2e-brake-" + strings.ReplaceAll(db, "_", "-")
	prepareCluster(t, kube, instance, map[string]string{"billing": "payments-v1"})
	slack := newSlackRecorder(t)
	const secret = "e2e-signing-secret-0123"
	apiAddr := freeAddr(t)
	env := append(append(serveEnv(brokers, "unused-"+db, fmt.Sprintf("clickhouse://%s/%s", testenv.ClickHouseAddr(t), db)), enforceEnv(t, instance)...),
		"MESHGUARD_ALERT_SLACK_WEBHOOK_URL="+slack.URL+"/hook",
		"MESHGUARD_ALERT_SLACK_SIGNING_SECRET="+secret,
		"MESHGUARD_ALERT_SLACK_ALLOWED_USERS=U0ALICE",
		"MESHGUARD_ALERT_SLACK_TEAM_ID=T0MESH",
		"MESHGUARD_SERVER_LISTEN="+apiAddr)
	srv := startMeshguard(t, env, "serve", "--stages", "respond,alert")
	waitReady(t, apiAddr, srv)

	// What the detect stage would have written.
	now := time.Now().UTC().Truncate(time.Second)
	d := models.Detection{
		ID: "brake-" + db, DetectedAt: now, UpdatedAt: now, WindowStart: now.Add(-10 * time.Second), WindowEnd: now,
		Kind: models.LateralMovement, Severity: models.SeverityHigh, Score: 40, Updates: 1,
		Source:      models.Party{Principal: "cluster.local/ns/shop/sa/frontend", Workload: "frontend", Namespace: "shop"},
		Destination: models.Party{Workload: "payments-v1", Namespace: "billing"},
		Evidence:    models.Evidence{Summary: "frontend called payments-v1 for the first time"},
	}
	writeDetection(t, db, d)

	pol := waitPolicy(t, kube, "billing", instance, 60*time.Second)
	actionID := pol.GetLabels()["meshguard.io/action-id"]
	if actionID == "" {
		actionID = pol.GetAnnotations()["meshguard.io/action-id"]
	}

	// serve's own Slack message for the detection, with its buttons.
	var msg map[string]any
	waitUntil(t, "serve's Slack message with a Revoke button", srv, func() bool {
		for _, m := range slack.messages("/hook") {
			if strings.Contains(m, d.ID) && strings.Contains(m, `"mg_revoke"`) {
				return json.Unmarshal([]byte(m), &msg) == nil
			}
		}
		return false
	})
	revoke := findButton(msg, "mg_revoke")
	if revoke == nil {
		t.Fatalf("no Revoke button in serve's message: %v", msg)
	}
	var value struct {
		ActionID string `json:"a"` // alert.buttonValue
	}
	if err := json.Unmarshal([]byte(fmt.Sprint(revoke["value"])), &value); err != nil || value.ActionID == "" {
		t.Fatalf("Revoke button value %v: %v", revoke["value"], err)
	}
	if actionID != "" && value.ActionID != actionID {
		t.Errorf("the button names action %s; the policy is action %s", value.ActionID, actionID)
	}

	click := func(userID, userName, actionTS string) int {
		payload := map[string]any{
			"type": "block_actions",
			"user": map[string]any{"id": userID, "username": userName, "name": userName, "team_id": "T0MESH"},
			"team": map[string]any{"id": "T0MESH"}, "channel": map[string]any{"id": "C0ALERTS"},
			"response_url": slack.URL + "/respond",
			"actions": []map[string]any{{"type": "button", "action_id": "mg_revoke", "block_id": revoke["block_id"],
				"value": revoke["value"], "action_ts": actionTS}},
		}
		p, _ := json.Marshal(payload)
		body := url.Values{"payload": {string(p)}}.Encode()
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		mac := hmac.New(sha256.New, []byte(secret))
		fmt.Fprintf(mac, "v0:%s:%s", ts, body)
		req, _ := http.NewRequest(http.MethodPost, "http://"+apiAddr+"/slack/interactions", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Slack-Request-Timestamp", ts)
		req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// An impostor named after the approver's ID: refused, policy stays.
	if code := click("UEVIL999", "U0ALICE", "1795000001.000001"); code != http.StatusOK {
		t.Fatalf("impostor click: status %d", code)
	}
	dyn := dynamic.NewForConfigOrDie(kube)
	list, err := dyn.Resource(authzGVR).Namespace("billing").List(context.Background(), metav1.ListOptions{LabelSelector: "meshguard.io/instance=" + instance})
	if err != nil || len(list.Items) == 0 {
		t.Fatalf("the impostor's click removed the policy (%v)", err)
	}
	if code := click("U0ALICE", "alice", "1795000002.000001"); code != http.StatusOK {
		t.Fatalf("Revoke click: status %d", code)
	}
	waitUntil(t, "the policy gone from the kube-apiserver", srv, func() bool {
		list, err := dyn.Resource(authzGVR).Namespace("billing").List(context.Background(), metav1.ListOptions{LabelSelector: "meshguard.io/instance=" + instance})
		return err == nil && len(list.Items) == 0
	})
	waitUntil(t, "the revoke audited with the user", srv, func() bool {
		var n uint64
		err := conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".actions WHERE action_id = ? AND state = 'revoked' AND actor = 'slack:alice/U0ALICE'", value.ActionID).Scan(&n)
		return err == nil && n > 0
	})
	var refused uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".actions WHERE state = 'refused' AND actor = 'slack:U0ALICE/UEVIL999'").Scan(&refused); err != nil || refused != 1 {
		t.Errorf("impostor's click: %d refused audit rows (%v), want 1", refused, err)
	}
	srv.terminate(t, 30*time.Second)
	if strings.Contains(srv.out.String(), secret) {
		t.Errorf("the signing secret is in serve's log")
	}

	// A restart forgets nothing: the same config, the attack again (the
	// feed re-reads the first detection within detect.hold, and a new one
	// arrives), and the revoke, read back from the actions table, keeps
	// the policy away for respond.revoke_hold.
	srv = startMeshguard(t, env, "serve", "--stages", "respond,alert")
	waitReady(t, apiAddr, srv)
	again := time.Now().UTC().Truncate(time.Second)
	d2 := d
	d2.ID = "brake-again-" + db
	d2.DetectedAt, d2.UpdatedAt, d2.WindowStart, d2.WindowEnd = again, again, again.Add(-10*time.Second), again
	d2.Evidence.Summary = "frontend called payments-v1 again after the revoke"
	writeDetection(t, db, d2)
	held := map[string]string{} // detection id -> reason of its skipped row
	waitUntil(t, "both detections held back by the revoke after the restart", srv, func() bool {
		rows, err := conn.Query(context.Background(), "SELECT detection_id, reason FROM "+db+".actions WHERE action_id = ? AND state = 'skipped'", value.ActionID)
		if err != nil {
			return false
		}
		defer rows.Close()
		for rows.Next() {
			var id, reason string
			if rows.Scan(&id, &reason) == nil {
				held[id] = reason
			}
		}
		return held[d.ID] != "" && held[d2.ID] != ""
	})
	for id, reason := range held {
		if !strings.Contains(reason, "revoked by slack:alice/U0ALICE") || !strings.Contains(reason, "respond.revoke_hold") {
			t.Errorf("detection %s held back with reason %q; want the revoke's actor and respond.revoke_hold", id, reason)
		}
	}
	list, err = dyn.Resource(authzGVR).Namespace("billing").List(context.Background(), metav1.ListOptions{LabelSelector: "meshguard.io/instance=" + instance})
	if err != nil || len(list.Items) != 0 {
		t.Fatalf("after the restart and the repeated attack: %d policies (%v); want the revoked one to stay removed", len(list.Items), err)
	}
	var reapplied uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".actions WHERE action_id = ? AND detection_id = ? AND state != 'skipped'",
		value.ActionID, d2.ID).Scan(&reapplied); err != nil || reapplied != 0 {
		t.Errorf("the repeated attack has %d action rows other than skipped (%v); want none", reapplied, err)
	}
	srv.terminate(t, 30*time.Second)
}

// With Slack's webhook unreachable, serve reports the failure without
// the webhook URL (a credential) anywhere in its output (issue 13 item 8).
func TestServeSlackDownLeaksNoWebhookURL(t *testing.T) {
	brokers := testenv.Kafka(t)
	_, db := testenv.ClickHouse(t)
	const marker = "T0MARK/B0MARK/mkWebhookDown4f7"
	down := freeAddr(t) // nothing listens there
	apiAddr := freeAddr(t)
	env := append(serveEnv(brokers, "unused-"+db, fmt.Sprintf("clickhouse://%s/%s", testenv.ClickHouseAddr(t), db)),
		"MESHGUARD_ALERT_SLACK_WEBHOOK_URL=http://"+down+"/services/"+marker,
		"MESHGUARD_LOG_LEVEL=debug", "MESHGUARD_SERVER_LISTEN="+apiAddr)
	srv := startMeshguard(t, env, "serve", "--stages", "alert")
	waitReady(t, apiAddr, srv)
	now := time.Now().UTC().Truncate(time.Second)
	writeDetection(t, db, models.Detection{
		ID: "down-" + db, DetectedAt: now, UpdatedAt: now, WindowStart: now.Add(-10 * time.Second), WindowEnd: now,
		Kind: models.Scan, Severity: models.SeverityHigh, Score: 30, Updates: 1,
		Source: models.Party{Workload: "frontend", Namespace: "shop"},
	})
	waitUntil(t, "the failed Slack post in the log", srv, func() bool {
		return strings.Contains(srv.out.String(), "Slack message not sent")
	})
	srv.terminate(t, 30*time.Second)
	out := srv.out.String()
	if !strings.Contains(out, "connection refused") {
		t.Fatalf("the log does not show the unreachable webhook:\n%s", out)
	}
	if strings.Contains(out, marker) || strings.Contains(out, "/services/") {
		t.Errorf("the webhook URL is in serve's output:\n%s", out)
	}
}

// writeDetection stores d as the detect stage would.
func writeDetection(t *testing.T, db string, d models.Detection) {
	t.Helper()
	row, err := storage.DetectionToRow(d)
	if err != nil {
		t.Fatal(err)
	}
	chCfg := storage.DefaultClickHouseConfig()
	chCfg.Addr, chCfg.Database = []string{testenv.ClickHouseAddr(t)}, db
	store, err := storage.NewClickHouse(chCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.WriteDetection(context.Background(), row); err != nil {
		t.Fatal(err)
	}
}

func waitReady(t *testing.T, addr string, p *process) {
	t.Helper()
	waitUntil(t, "/readyz", p, func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// waitUntil polls cond; the deadline only guards against a hang.
func waitUntil(t *testing.T, what string, p *process, cond func() bool) {
	t.Helper()
	waitSaying(t, what, p, func() (bool, string) { return cond(), "" })
}

// waitSaying is waitUntil with a condition that also says what it last
// saw, for the failure message.
func waitSaying(t *testing.T, what string, p *process, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		ok, saw := cond()
		if ok {
			return
		}
		if !p.alive() {
			t.Fatalf("meshguard exited while waiting for %s:\n%s", what, p.out)
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s (last seen: %s)", what, saw)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// findButton returns the button element with action_id id in a webhook
// message's blocks.
func findButton(msg map[string]any, id string) map[string]any {
	blocks, _ := msg["blocks"].([]any)
	for _, b := range blocks {
		bm, _ := b.(map[string]any)
		els, _ := bm["elements"].([]any)
		for _, e := range els {
			em, _ := e.(map[string]any)
			if em["action_id"] == id {
				em["block_id"] = bm["block_id"]
				return em
			}
		}
	}
	return nil
}

// slackRecorder is Slack's side: incoming webhook and response URLs,
// recording every body by path.
type slackRecorder struct {
	*httptest.Server
	mu   sync.Mutex
	seen map[string][]string
}

func newSlackRecorder(t *testing.T) *slackRecorder {
	s := &slackRecorder{seen: map[string][]string{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.seen[r.URL.Path] = append(s.seen[r.URL.Path], string(body))
		s.mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *slackRecorder) messages(path string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen[path]...)
}
