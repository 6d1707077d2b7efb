package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/storage"
)

// Audit states written for clicks beside the models.ActionState the
// Controller returns.
const (
	// StateRefused: the clicking user is not on the allow-list (or
	// interactivity is not set up); nothing changed.
	StateRefused = "refused"
)

const (
	// maxSkew is how old (or how far ahead) a signed request may be.
	maxSkew = 5 * time.Minute
	// clickTimeout bounds the Controller call. Slack wants an answer
	// within three seconds and otherwise shows the user a warning; the call
	// is not cut at three seconds all the same (a half-applied policy change
	// is worse than a late answer), and its result still updates the
	// message. Nor is it cut when Slack hangs up.
	clickTimeout = 10 * time.Second
	maxBody      = 1 << 20
	groupTTL     = 5 * time.Minute
)

// InteractionHandler is the Slack interactivity endpoint (mount it at
// /slack/interactions and set that URL as the app's Request URL). It:
//
//   - verifies X-Slack-Signature with the signing secret and refuses
//     requests whose timestamp is more than five minutes off (401, not
//     audited: the sender is unknown);
//   - checks the click's team against team_id (when set) and the user's
//     ID against allowed_users / allowed_groups (IDs only, never names);
//   - calls the Controller (Approve, Revoke, Extend);
//   - audits every click, refused ones included, in the actions table with
//     the user as actor ("slack:<name>/<user id>");
//   - answers the user: the incident message is updated (bot mode: thread
//     reply and edit; webhook mode: through the response URL) and refusals
//     or failures are shown to the clicking user only.
func (a *Alerter) InteractionHandler() http.Handler { return http.HandlerFunc(a.serveInteraction) }

func (a *Alerter) serveInteraction(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	if a.off || a.cfg.SigningSecret == "" {
		a.m.interactions.WithLabelValues("refused").Inc()
		http.Error(w, "Slack interactivity is not configured (alert.slack.signing_secret)", http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		a.m.interactions.WithLabelValues("bad_request").Inc()
		http.Error(w, "body unreadable or too large", http.StatusBadRequest)
		return
	}
	if err := a.verify(r.Header, body); err != nil {
		result := "forged"
		if errors.Is(err, slack.ErrExpiredTimestamp) || errors.Is(err, errStale) {
			result = "stale"
		}
		a.m.interactions.WithLabelValues(result).Inc()
		a.log.Warn("Slack interaction refused: signature check failed", "result", result, "err", err, "remote", r.RemoteAddr)
		http.Error(w, "signature verification failed", http.StatusUnauthorized)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		a.m.interactions.WithLabelValues("bad_request").Inc()
		http.Error(w, "not a form", http.StatusBadRequest)
		return
	}
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(form.Get("payload")), &cb); err != nil {
		a.m.interactions.WithLabelValues("bad_request").Inc()
		http.Error(w, "payload is not an interaction", http.StatusBadRequest)
		return
	}
	if cb.Type != slack.InteractionTypeBlockActions {
		a.m.interactions.WithLabelValues("ignored").Inc()
		w.WriteHeader(http.StatusOK)
		return
	}
	for _, ba := range cb.ActionCallback.BlockActions {
		switch ba.ActionID {
		case buttonApprove, buttonRevoke, buttonExtend:
			if a.replayed(cb.User.ID + "|" + ba.ActionTs + "|" + ba.BlockID + "|" + ba.ActionID) {
				// A signed request seen before (a replay within the five
				// minutes the signature is valid): do it once.
				a.m.interactions.WithLabelValues("replayed").Inc()
				continue
			}
			a.click(r.Context(), cb, ba)
		default: // the link button and anything else: nothing to do
			a.m.interactions.WithLabelValues("ignored").Inc()
		}
	}
	w.WriteHeader(http.StatusOK)
}

// replayed reports whether key was seen in the last maxSkew*2, and
// remembers it.
func (a *Alerter) replayed(key string) bool {
	now := a.clock.Now()
	a.seenMu.Lock()
	defer a.seenMu.Unlock()
	if a.seenClicks == nil {
		a.seenClicks = map[string]time.Time{}
	}
	for k, t := range a.seenClicks {
		if now.Sub(t) > 2*maxSkew {
			delete(a.seenClicks, k)
		}
	}
	if _, ok := a.seenClicks[key]; ok {
		return true
	}
	a.seenClicks[key] = now
	return false
}

var errStale = errors.New("request timestamp more than five minutes off")

// verify checks the signature with slack.NewSecretsVerifier (which also
// refuses timestamps more than five minutes from the wall clock) and the
// timestamp against the Alerter's clock.
func (a *Alerter) verify(h http.Header, body []byte) error {
	ts, err := strconv.ParseInt(h.Get("X-Slack-Request-Timestamp"), 10, 64)
	if err != nil {
		return fmt.Errorf("X-Slack-Request-Timestamp: %w", err)
	}
	if skew := a.clock.Now().Sub(time.Unix(ts, 0)); skew > maxSkew || skew < -maxSkew {
		return errStale
	}
	sv, err := slack.NewSecretsVerifier(h, a.cfg.SigningSecret)
	if err != nil {
		return err
	}
	if _, err := sv.Write(body); err != nil {
		return err
	}
	return sv.Ensure()
}

// click handles one button press by an authenticated Slack user.
func (a *Alerter) click(ctx context.Context, cb slack.InteractionCallback, ba *slack.BlockAction) {
	verb := strings.TrimPrefix(ba.ActionID, "mg_")
	name := cb.User.Username
	if name == "" {
		name = cb.User.Name
	}
	actor := "slack:" + name + "/" + cb.User.ID
	var v buttonValue
	if err := json.Unmarshal([]byte(ba.Value), &v); err != nil || v.ActionID == "" {
		a.m.interactions.WithLabelValues("bad_request").Inc()
		// The audit log needs an action id: name the block the click came from.
		id := strings.TrimPrefix(ba.BlockID, "act:")
		if id == "" {
			id = "unknown"
		}
		a.audit(ctx, models.Action{ID: id, State: StateRefused, Actor: actor, Reason: "slack " + verb + ": the button carries no action id"})
		return
	}
	row := models.Action{ID: v.ActionID, DetectionID: v.DetectionID, Actor: actor}
	if ok, why := a.mayAct(ctx, cb); !ok {
		a.m.interactions.WithLabelValues("refused").Inc()
		row.State, row.Reason = StateRefused, "slack "+verb+" refused: "+why
		a.audit(ctx, row)
		a.log.Warn("Slack click refused", "actor", actor, "verb", verb, "action_id", v.ActionID, "why", why)
		_ = a.push(event{kind: evEphemeral, responseURL: cb.ResponseURL, text: fmt.Sprintf("🚫 You may not %s meshguard actions: %s. Ask an admin to add you to alert.slack.allowed_users or allowed_groups.", verb, why)})
		return
	}
	if a.deps.Controller == nil {
		a.m.interactions.WithLabelValues("refused").Inc()
		row.State, row.Reason = StateRefused, "slack "+verb+" refused: this meshguard has no controller for actions"
		a.audit(ctx, row)
		_ = a.push(event{kind: evEphemeral, responseURL: cb.ResponseURL, text: "🚫 This meshguard instance cannot change actions."})
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), clickTimeout)
	defer cancel()
	var res models.Action
	var err error
	switch ba.ActionID {
	case buttonApprove:
		res, err = a.deps.Controller.Approve(cctx, v.ActionID, actor)
	case buttonRevoke:
		res, err = a.deps.Controller.Revoke(cctx, v.ActionID, actor)
	case buttonExtend:
		res, err = a.deps.Controller.Extend(cctx, v.ActionID, actor, a.cfg.ExtendBy)
	}
	if err != nil {
		a.m.interactions.WithLabelValues("failed").Inc()
		row.State, row.Reason = models.StateFailed, "slack "+verb+" failed: "+err.Error()
		a.audit(ctx, row)
		a.log.Warn("Slack click failed", "actor", actor, "verb", verb, "action_id", v.ActionID, "err", err)
		_ = a.push(event{kind: evEphemeral, responseURL: cb.ResponseURL, text: fmt.Sprintf("❌ %s failed: %s", verb, code(err.Error()))})
		return
	}
	a.m.interactions.WithLabelValues("done").Inc()
	done := res
	done.Actor, done.Reason = actor, "slack "+verb+" clicked"
	a.audit(ctx, done)
	a.log.Info("Slack click applied", "actor", actor, "verb", verb, "action_id", res.ID, "state", res.State, "mode", res.Mode)
	if res.DetectionID == "" {
		res.DetectionID = v.DetectionID
	}
	_ = a.push(event{kind: evClick, a: res, responseURL: cb.ResponseURL})
}

// audit writes a click to the actions table. A write that fails is logged
// as an error; the click's effect (if any) is already done.
func (a *Alerter) audit(ctx context.Context, row models.Action) {
	row.At = a.clock.Now()
	if row.Kind == "" {
		row.Kind = "slack_click"
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := a.deps.Actions.WriteAction(ctx, storage.ActionToRow(row)); err != nil {
		a.m.errors.WithLabelValues("audit").Inc()
		a.log.Error("auditing a Slack click failed", "actor", row.Actor, "action_id", row.ID, "state", row.State, "err", err)
	}
}

// mayAct checks the team (alert.slack.team_id), then the allow-lists:
// the user ID exactly, then membership of an allowed user group. Names
// never count: any user can take any name, in any workspace.
func (a *Alerter) mayAct(ctx context.Context, cb slack.InteractionCallback) (bool, string) {
	u := cb.User
	if u.ID == "" {
		return false, "the request names no user"
	}
	if t := a.cfg.TeamID; t != "" {
		if cb.Team.ID != t || (u.TeamID != "" && u.TeamID != t) {
			return false, "the click comes from another Slack team than alert.slack.team_id"
		}
	}
	if a.allowed[u.ID] {
		return true, ""
	}
	if a.groups != nil {
		ok, err := a.groups.member(ctx, u.ID)
		if err != nil {
			return false, "group membership could not be checked (" + err.Error() + ")"
		}
		if ok {
			return true, ""
		}
	}
	return false, "user not in alert.slack.allowed_users or allowed_groups"
}

// groupCache resolves allowed_groups (IDs or handles) to member user IDs
// through the Web API and keeps them for groupTTL.
type groupCache struct {
	api    *slack.Client
	groups []string
	clock  Clock

	mu      sync.Mutex
	members map[string]bool
	fetched time.Time
}

func (g *groupCache) member(ctx context.Context, userID string) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.members == nil || g.clock.Now().Sub(g.fetched) > groupTTL {
		m, err := g.fetch(ctx)
		if err != nil {
			return false, err
		}
		g.members, g.fetched = m, g.clock.Now()
	}
	return g.members[userID], nil
}

func (g *groupCache) fetch(ctx context.Context) (map[string]bool, error) {
	ids := map[string]bool{}
	var handles []string
	for _, grp := range g.groups {
		if strings.HasPrefix(grp, "S") && strings.ToUpper(grp) == grp {
			ids[grp] = true
		} else {
			handles = append(handles, strings.TrimPrefix(grp, "@"))
		}
	}
	if len(handles) > 0 {
		all, err := g.api.GetUserGroupsContext(ctx)
		if err != nil {
			return nil, fmt.Errorf("usergroups.list: %w", err)
		}
		for _, h := range handles {
			for _, ug := range all {
				if strings.EqualFold(ug.Handle, h) || strings.EqualFold(ug.Name, h) {
					ids[ug.ID] = true
				}
			}
		}
	}
	members := map[string]bool{}
	for id := range ids {
		us, err := g.api.GetUserGroupMembersContext(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("usergroups.users.list %s: %w", id, err)
		}
		for _, u := range us {
			members[u] = true
		}
	}
	return members, nil
}
