package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"text/template"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/slack-go/slack"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/storage"
)

// Controller changes actions on behalf of a person who clicked a button.
// The responder implements it. Each method returns the action as it stands
// afterwards; an error means nothing changed (it is shown to the person
// and audited). Implementations are goroutine-safe.
type Controller interface {
	// Approve promotes a dry-run action to enforce.
	Approve(ctx context.Context, actionID, actor string) (models.Action, error)
	// Revoke removes the action's policy now.
	Revoke(ctx context.Context, actionID, actor string) (models.Action, error)
	// Extend moves the action's expiry later by `by`.
	Extend(ctx context.Context, actionID, actor string, by time.Duration) (models.Action, error)
}

// approveGate is an optional Controller method: a Controller that returns
// false refuses every Approve (respond.mode below enforce), and the
// messages offer no Approve button.
type approveGate interface{ ApproveAllowed() bool }

// Clock is the time source; tests replace it.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type wallClock struct{}

func (wallClock) Now() time.Time                         { return time.Now() }
func (wallClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Deps are the Alerter's collaborators. Log and Actions are required when
// Slack is enabled; the rest are optional.
type Deps struct {
	Log *slog.Logger
	// Actions audits every button click, refused ones included.
	Actions storage.ActionWriter
	// Controller acts on clicks; nil shows no buttons.
	Controller Controller
	// Registerer receives the meshguard_alert_* metrics; nil: none.
	Registerer prometheus.Registerer
	// Clock defaults to the wall clock.
	Clock Clock
	// HTTPClient is used for webhooks, response URLs and the Web API;
	// default: a client with a 10s timeout.
	HTTPClient *http.Client
}

// callTimeout bounds one Slack call.
const callTimeout = 10 * time.Second

// drainTimeout bounds how long Run keeps sending after its context ended.
const drainTimeout = 10 * time.Second

// maxIncidents bounds the incidents remembered for threading; the least
// recently touched are forgotten first (a later change then starts a new
// message).
const maxIncidents = 10_000

// Alerter sends detections and actions to Slack: one message per incident
// (or per storm), later changes in its thread. HandleDetection and
// HandleAction only enqueue; Run sends. Its methods are goroutine-safe.
type Alerter struct {
	cfg     SlackConfig
	log     *slog.Logger
	deps    Deps
	clock   Clock
	api     *slack.Client // bot mode
	http    *http.Client
	rend    renderer
	m       *metrics
	off     bool
	groups  *groupCache
	allowed map[string]bool // allowed_users: user IDs

	seenMu     sync.Mutex
	seenClicks map[string]time.Time // replay guard

	mu      sync.Mutex
	queue   []event
	stopped bool // Run has returned
	wake    chan struct{}
	// unreported counts drops not yet told to Slack.
	unreported atomic.Uint64

	// Owned by the Run goroutine.
	incidents map[string]*incident // by detection ID (storm members too)
	windows   map[string]*window   // open grouping windows by source
	outbox    []op
	lastSend  time.Time
}

type eventKind uint8

const (
	evDetection eventKind = iota + 1
	evAction
	evClick     // the Controller's result after a click
	evEphemeral // a message only the clicking user sees
)

type event struct {
	kind        eventKind
	d           models.Detection
	a           models.Action
	responseURL string
	text        string
}

// incident is one Slack message and what it shows.
type incident struct {
	lead    models.Detection
	storm   *storm // set for a storm summary
	actions []models.Action
	seen    map[string]bool // action events already shown
	touched time.Time

	postQueued bool
	posted     bool
	// held: a storm summary whose window is still open; it is posted when
	// the window closes.
	held    bool
	channel string // bot mode
	ts      string // bot mode
	// updateQueued: an edit of the parent is waiting in the outbox.
	updateQueued bool
}

// storm is a summary of detections from one source within a window.
type storm struct {
	source      string
	start       time.Time
	window      time.Duration
	count       int
	maxSev      models.Severity
	kinds       map[string]int
	dests       map[string]int
	ids         []string
	sev         map[string]models.Severity
	escalations int
}

type window struct {
	end     time.Time
	summary *incident // nil until a second detection arrives
}

type opKind uint8

const (
	opPost opKind = iota + 1
	opReply
	opUpdate
	opRespond
)

type op struct {
	kind        opKind
	inc         *incident
	text        string // reply text; respond text when inc is nil
	responseURL string
	ephemeral   bool
}

// New builds an Alerter. With Slack not configured it returns one that
// accepts and discards everything, so callers need no special case.
func New(cfg Config, deps Deps) (*Alerter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sc, err := cfg.Slack.resolved()
	if err != nil {
		return nil, err
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.Clock == nil {
		deps.Clock = wallClock{}
	}
	if deps.HTTPClient == nil {
		deps.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	a := &Alerter{
		cfg:       sc,
		log:       deps.Log.With("component", "alert.slack"),
		deps:      deps,
		clock:     deps.Clock,
		http:      deps.HTTPClient,
		off:       !sc.Enabled(),
		wake:      make(chan struct{}, 1),
		incidents: map[string]*incident{},
		windows:   map[string]*window{},
		allowed:   map[string]bool{},
	}
	a.m = newMetrics(func() float64 {
		a.mu.Lock()
		defer a.mu.Unlock()
		return float64(len(a.queue))
	}, sc.QueueSize)
	if deps.Registerer != nil {
		if err := a.m.register(deps.Registerer); err != nil {
			return nil, fmt.Errorf("alert: registering metrics: %w", err)
		}
	}
	if a.off {
		a.log.Info("Slack alerts are off: set alert.slack.webhook_url or alert.slack.token")
		return a, nil
	}
	if sc.SigningSecret != "" && deps.Actions == nil {
		return nil, errors.New("alert: Deps.Actions is required when alert.slack.signing_secret is set: every click is audited")
	}
	var link *template.Template
	if sc.LinkTemplate != "" {
		link, _ = parseLink(sc.LinkTemplate) // checked by Validate
	}
	a.rend = renderer{link: link, interactive: sc.SigningSecret != "" && deps.Controller != nil, extendBy: sc.ExtendBy, now: a.clock.Now}
	if c, ok := deps.Controller.(approveGate); ok && !c.ApproveAllowed() {
		// A button that can only fail is worse than none.
		a.rend.noApprove = true
	}
	if sc.Bot() {
		opts := []slack.Option{slack.OptionHTTPClient(deps.HTTPClient)}
		if sc.APIURL != "" {
			u := sc.APIURL
			if !strings.HasSuffix(u, "/") {
				u += "/"
			}
			opts = append(opts, slack.OptionAPIURL(u))
		}
		a.api = slack.New(sc.Token, opts...)
	}
	for _, u := range sc.AllowedUsers {
		a.allowed[strings.TrimSpace(u)] = true
	}
	if sc.SigningSecret != "" && sc.TeamID == "" {
		a.log.Warn("alert.slack.team_id is not set: clicks are matched by user ID alone; set it to your workspace's ID (T0123ABC) to refuse other teams")
	}
	if len(sc.AllowedGroups) > 0 {
		a.groups = &groupCache{api: a.api, groups: sc.AllowedGroups, clock: a.clock}
	}
	a.log.Info("Slack alerts on", "config", sc)
	return a, nil
}

// HandleDetection queues a new or updated detection (same ID: an update).
// It never blocks: when the queue is full the oldest event is dropped,
// counted and reported in the next message. The Alerter keeps its own copy.
func (a *Alerter) HandleDetection(_ context.Context, d models.Detection) error {
	if a.off {
		return nil
	}
	if d.ID == "" {
		a.m.invalid.Inc()
		return errors.New("alert: detection without an ID")
	}
	d.Evidence = copyEvidence(d.Evidence)
	return a.push(event{kind: evDetection, d: d})
}

// HandleAction queues a decision about detection d (applied, skipped,
// alerted, promoted, extended, expired, revoked, failed), shown in d's
// incident. It never blocks, like HandleDetection.
func (a *Alerter) HandleAction(_ context.Context, act models.Action, d models.Detection) error {
	if a.off {
		return nil
	}
	if d.ID == "" {
		d.ID = act.DetectionID
	}
	if act.ID == "" || d.ID == "" {
		a.m.invalid.Inc()
		return errors.New("alert: action without an action or detection ID")
	}
	d.Evidence = copyEvidence(d.Evidence)
	return a.push(event{kind: evAction, a: act, d: d})
}

func copyEvidence(e models.Evidence) models.Evidence {
	e.Features = append([]models.FeatureEvidence(nil), e.Features...)
	e.TopPaths = append([]models.Count(nil), e.TopPaths...)
	e.TopCodes = append([]models.Count(nil), e.TopCodes...)
	e.Destinations = append([]string(nil), e.Destinations...)
	e.SampleRequestIDs = append([]string(nil), e.SampleRequestIDs...)
	e.SampleTraceIDs = append([]string(nil), e.SampleTraceIDs...)
	return e
}

func (a *Alerter) queued() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.queue)
}

// ErrStopped is returned for events handed over after Run returned; they
// are counted as dropped.
var ErrStopped = errors.New("alert: the Slack sender has stopped")

// push appends ev, dropping the oldest event when the queue is full.
func (a *Alerter) push(ev event) error {
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		a.m.dropped.Inc()
		return ErrStopped
	}
	if len(a.queue) >= a.cfg.QueueSize {
		a.queue[0] = event{}
		a.queue = a.queue[1:]
		a.m.dropped.Inc()
		a.unreported.Add(1)
	}
	a.queue = append(a.queue, ev)
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
	return nil
}

func (a *Alerter) take() []event {
	a.mu.Lock()
	defer a.mu.Unlock()
	q := a.queue
	a.queue = make([]event, 0, min(len(q)*2, a.cfg.QueueSize))
	return q
}

// Run sends until ctx ends, then drains what is queued (and closes open
// storm windows) for at most 10 seconds. It returns nil after a drain; a
// second Run is not supported.
func (a *Alerter) Run(ctx context.Context) error {
	if a.off {
		<-ctx.Done()
		return nil
	}
	for {
		var timer <-chan time.Time
		if due, ok := a.nextClose(); ok {
			timer = a.clock.After(max(0, due.Sub(a.clock.Now())))
		}
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
			a.step(dctx, true)
			// Producers stopping after us may still have queued a few.
			for a.queued() > 0 && dctx.Err() == nil {
				a.step(dctx, true)
			}
			cancel()
			a.mu.Lock()
			a.stopped = true
			if n := len(a.queue); n > 0 {
				a.m.dropped.Add(float64(n))
				a.log.Warn("alert events still queued at shutdown were not sent", "events", n)
				a.queue = nil
			}
			a.mu.Unlock()
			if n := len(a.outbox); n > 0 {
				a.m.errors.WithLabelValues("drain").Add(float64(n))
				a.log.Warn("Slack messages not sent before shutdown", "messages", n)
			}
			if n := a.unreported.Load(); n > 0 {
				a.log.Warn("alert events dropped and never reported to Slack", "events", n)
			}
			return nil
		case <-a.wake:
		case <-timer:
		}
		a.step(ctx, false)
	}
}

// step applies the queued events to the incidents, closes due windows
// (all of them when final) and sends the resulting messages.
func (a *Alerter) step(ctx context.Context, final bool) {
	now := a.clock.Now()
	for _, ev := range a.take() {
		a.apply(ev, now)
	}
	for src, w := range a.windows {
		if final || !now.Before(w.end) {
			if s := w.summary; s != nil {
				s.held = false
				if s.storm.count == 1 {
					s.storm = nil // one more is no storm: its own message
				}
				a.queuePost(s)
			}
			delete(a.windows, src)
		}
	}
	a.evict()
	a.flush(ctx)
}

func (a *Alerter) nextClose() (time.Time, bool) {
	var due time.Time
	for _, w := range a.windows {
		if due.IsZero() || w.end.Before(due) {
			due = w.end
		}
	}
	return due, !due.IsZero()
}

// apply folds one event into the incidents and queues the messages it
// calls for.
func (a *Alerter) apply(ev event, now time.Time) {
	switch ev.kind {
	case evEphemeral:
		if ev.responseURL == "" {
			return
		}
		a.outbox = append(a.outbox, op{kind: opRespond, text: ev.text, responseURL: ev.responseURL, ephemeral: true})
		return
	case evClick:
		inc := a.incidents[ev.a.DetectionID]
		if inc == nil {
			// Not (or no longer) known here: answer in the channel.
			if ev.responseURL == "" {
				return
			}
			a.outbox = append(a.outbox, op{kind: opRespond, text: actionDetails(ev.a), responseURL: ev.responseURL})
			return
		}
		a.applyAction(inc, ev.a, inc.lead, now)
		if a.api == nil && ev.responseURL != "" {
			// Webhook mode cannot edit; the click's response URL can.
			a.outbox = append(a.outbox, op{kind: opRespond, inc: inc, responseURL: ev.responseURL})
		}
		return
	}
	inc := a.incidents[ev.d.ID]
	if inc == nil {
		inc = a.open(ev.d, now)
	} else if ev.kind == evDetection || ev.d.UpdatedAt.After(a.detection(inc, ev.d.ID).UpdatedAt) {
		a.updateDetection(inc, ev.d)
	}
	inc.touched = now
	if ev.kind == evAction {
		a.applyAction(inc, ev.a, ev.d, now)
	}
}

// detection returns what inc knows of detection id.
func (a *Alerter) detection(inc *incident, id string) models.Detection {
	if inc.lead.ID == id {
		return inc.lead
	}
	return models.Detection{}
}

// open starts an incident for a detection seen for the first time, or
// folds it into its source's storm.
func (a *Alerter) open(d models.Detection, now time.Time) *incident {
	// A later part of an incident whose head has a message goes into that
	// message's thread: one message per incident.
	if d.IncidentID != "" && d.IncidentID != d.ID {
		if head := a.incidents[d.IncidentID]; head != nil {
			a.incidents[d.ID] = head
			head.touched = now
			a.queueReply(head, partText(d), true)
			return head
		}
	}
	src := partyKey(d.Source)
	if w := a.windows[src]; w != nil && now.Before(w.end) {
		if w.summary == nil {
			w.summary = &incident{lead: d, seen: map[string]bool{}, held: true, storm: &storm{
				source: src, start: now, window: a.cfg.GroupWindow,
				kinds: map[string]int{}, dests: map[string]int{}, sev: map[string]models.Severity{},
			}}
		}
		s := w.summary.storm
		s.count++
		s.kinds[string(d.Kind)]++
		s.dests[partyKey(d.Destination)]++
		s.sev[d.ID] = d.Severity
		s.maxSev = max(s.maxSev, d.Severity)
		if len(s.ids) < maxEvidenceItems {
			s.ids = append(s.ids, d.ID)
		}
		w.summary.touched = now
		a.incidents[d.ID] = w.summary
		return w.summary
	}
	inc := &incident{lead: d, seen: map[string]bool{}, touched: now}
	a.incidents[d.ID] = inc
	if a.cfg.GroupWindow > 0 {
		a.windows[src] = &window{end: now.Add(a.cfg.GroupWindow)}
	}
	a.queuePost(inc)
	return inc
}

// updateDetection applies a later version of a known detection.
func (a *Alerter) updateDetection(inc *incident, d models.Detection) {
	if s := inc.storm; s != nil {
		if prev, ok := s.sev[d.ID]; ok && d.Severity > prev {
			s.sev[d.ID] = d.Severity
			s.maxSev = max(s.maxSev, d.Severity)
			if inc.posted {
				s.escalations++
			}
			a.queueReply(inc, fmt.Sprintf("Detection %s from %s to %s: ", code(d.ID), code(partyKey(d.Source)), code(partyKey(d.Destination)))+escalationText(d, prev), true)
		}
		return
	}
	if inc.lead.ID != d.ID {
		return // a part of the lead's incident: its own changes stay in the thread
	}
	if d.UpdatedAt.Before(inc.lead.UpdatedAt) {
		return // an older version arriving late
	}
	prev := inc.lead.Severity
	inc.lead = d
	if d.Severity > prev {
		a.queueReply(inc, escalationText(d, prev), true)
		return
	}
	a.queueUpdate(inc)
}

// laterChange: states reported in the thread, not only in the parent.
func laterChange(s models.ActionState) bool {
	switch s {
	case models.StatePromoted, models.StateExtended, models.StateExpired, models.StateRevoked, models.StateFailed:
		return true
	}
	return false
}

func (a *Alerter) applyAction(inc *incident, act models.Action, d models.Detection, now time.Time) {
	k := fmt.Sprintf("%s|%s|%s|%d", act.ID, act.State, act.Mode, act.At.UnixNano())
	if inc.seen[k] {
		return // the responder's report and a click's result are the same change
	}
	inc.seen[k] = true
	inc.touched = now
	replaced := false
	for i := range inc.actions {
		if inc.actions[i].ID == act.ID {
			if act.At.Before(inc.actions[i].At) {
				return // older than what is shown
			}
			inc.actions[i] = act
			replaced = true
		}
	}
	if !replaced {
		inc.actions = append(inc.actions, act)
	}
	member := inc.storm != nil || d.ID != inc.lead.ID
	// Bot mode: the parent shows every decision; the thread gets the later
	// changes. Webhook mode cannot edit, so every decision after the first
	// message is a new message.
	a.queueReply(inc, actionChangeText(act, d, member), laterChange(act.State) || a.api == nil)
}

func (a *Alerter) queuePost(inc *incident) {
	if inc.postQueued || inc.posted {
		a.queueUpdate(inc)
		return
	}
	inc.postQueued = true
	a.outbox = append(a.outbox, op{kind: opPost, inc: inc})
}

// queueReply reports a change: in the thread when thread is true (and the
// parent is out), and always by editing the parent. Before the parent is
// posted, the post shows the change and nothing else is needed.
func (a *Alerter) queueReply(inc *incident, text string, thread bool) {
	if !inc.posted {
		if !inc.postQueued && !inc.held {
			// Its post failed for good earlier: post it again, as it is now.
			a.queuePost(inc)
		}
		return
	}
	if thread {
		a.outbox = append(a.outbox, op{kind: opReply, inc: inc, text: text})
	}
	a.queueUpdate(inc)
}

func (a *Alerter) queueUpdate(inc *incident) {
	if !inc.posted || inc.updateQueued || a.api == nil {
		return
	}
	inc.updateQueued = true
	a.outbox = append(a.outbox, op{kind: opUpdate, inc: inc})
}

// evict forgets the least recently touched incidents beyond maxIncidents.
func (a *Alerter) evict() {
	if len(a.incidents) <= maxIncidents {
		return
	}
	type e struct {
		id string
		t  time.Time
	}
	var all []e
	for id, inc := range a.incidents {
		all = append(all, e{id, inc.touched})
	}
	// Partial selection would do; eviction is rare.
	for len(a.incidents) > maxIncidents*9/10 {
		oldest := 0
		for i := range all {
			if all[i].t.Before(all[oldest].t) {
				oldest = i
			}
		}
		delete(a.incidents, all[oldest].id)
		all[oldest] = all[len(all)-1]
		all = all[:len(all)-1]
	}
}

// flush sends the outbox in order. An op that failed for good is counted
// and logged; when ctx ends the rest stays for the drain.
func (a *Alerter) flush(ctx context.Context) {
	for len(a.outbox) > 0 {
		o := a.outbox[0]
		err := a.send(ctx, o)
		if err != nil && ctx.Err() != nil {
			return
		}
		a.outbox[0] = op{}
		a.outbox = a.outbox[1:]
		if err != nil {
			a.log.Error("Slack message not sent", "op", o.kind.String(), "err", err)
		}
	}
	a.outbox = nil
}

func (k opKind) String() string {
	return [...]string{"", "post", "reply", "update", "respond"}[k]
}

func (a *Alerter) send(ctx context.Context, o op) error {
	inc := o.inc
	switch o.kind {
	case opPost:
		inc.postQueued = false
		if inc.posted {
			return nil
		}
		n := a.unreported.Swap(0)
		blocks := a.rend.incidentBlocks(inc, n)
		err := a.call(ctx, "post", func(ctx context.Context) error {
			if a.api == nil {
				return a.webhook(ctx, a.cfg.WebhookURL, &slack.WebhookMessage{Text: fallback(inc), Blocks: &slack.Blocks{BlockSet: blocks}})
			}
			ch, ts, err := a.api.PostMessageContext(ctx, a.cfg.Channel, msgOpts(fallback(inc), blocks)...)
			var se slack.SlackErrorResponse
			if errors.As(err, &se) && (se.Err == "invalid_blocks" || se.Err == "msg_too_long" || se.Err == "invalid_blocks_format") {
				// Better a plain message than none: the incident still gets
				// its thread.
				a.log.Error("Slack refused the incident's blocks; posting it as text", "err", err, "detection_id", inc.lead.ID)
				text := fallback(inc) + " · detection " + code(inc.lead.ID) + " (the full message was refused by Slack: " + code(se.Err) + ")"
				ch, ts, err = a.api.PostMessageContext(ctx, a.cfg.Channel, msgOpts(text, []slack.Block{slack.NewSectionBlock(mrkdwn(text), nil, nil)})...)
			}
			if err == nil {
				inc.channel, inc.ts = ch, ts
			}
			return err
		})
		if err != nil {
			a.unreported.Add(n)
			return err
		}
		inc.posted = true
		return nil
	case opReply:
		n := a.unreported.Swap(0)
		text := "meshguard: update to " + fallback(inc)
		blocks := a.rend.replyBlocks(inc, o.text, a.api == nil, n)
		err := a.call(ctx, "reply", func(ctx context.Context) error {
			if a.api == nil {
				return a.webhook(ctx, a.cfg.WebhookURL, &slack.WebhookMessage{Text: text, Blocks: &slack.Blocks{BlockSet: blocks}})
			}
			_, _, err := a.api.PostMessageContext(ctx, inc.channel, append(msgOpts(text, blocks), slack.MsgOptionTS(inc.ts))...)
			return err
		})
		if err != nil {
			a.unreported.Add(n)
		}
		return err
	case opUpdate:
		inc.updateQueued = false
		blocks := a.rend.incidentBlocks(inc, 0)
		return a.call(ctx, "update", func(ctx context.Context) error {
			_, _, _, err := a.api.UpdateMessageContext(ctx, inc.channel, inc.ts, msgOpts(fallback(inc), blocks)...)
			return err
		})
	case opRespond:
		msg := &slack.WebhookMessage{}
		switch {
		case o.ephemeral:
			msg.ResponseType, msg.Text = "ephemeral", o.text
			msg.Blocks = &slack.Blocks{BlockSet: []slack.Block{slack.NewSectionBlock(mrkdwn(o.text), nil, nil)}}
		case inc != nil:
			msg.ReplaceOriginal, msg.Text = true, fallback(inc)
			msg.Blocks = &slack.Blocks{BlockSet: a.rend.incidentBlocks(inc, 0)}
		default:
			msg.ResponseType, msg.Text = "in_channel", o.text
			msg.Blocks = &slack.Blocks{BlockSet: []slack.Block{slack.NewSectionBlock(mrkdwn(o.text), nil, nil)}}
		}
		return a.call(ctx, "respond", func(ctx context.Context) error { return a.webhook(ctx, o.responseURL, msg) })
	}
	return nil
}

func msgOpts(text string, blocks []slack.Block) []slack.MsgOption {
	return []slack.MsgOption{
		slack.MsgOptionText(text, false), // already escaped
		slack.MsgOptionBlocks(blocks...),
		slack.MsgOptionDisableLinkUnfurl(),
		slack.MsgOptionDisableMediaUnfurl(),
	}
}

// webhook posts msg to an incoming webhook or a response URL. Both URLs
// are credentials (whoever has one may post to the channel), and the HTTP
// client's errors quote the URL ("Post \"https://hooks...\": dial tcp:
// ..."), so the error is returned with the URL's path cut off.
func (a *Alerter) webhook(ctx context.Context, u string, msg *slack.WebhookMessage) error {
	return redactURL(slack.PostWebhookCustomHTTPContext(ctx, u, a.http, msg), u)
}

// redactURL returns err with every mention of secretURL replaced by its
// scheme and host. The error's chain (rate limits, status codes) stays
// intact for errors.As.
func redactURL(err error, secretURL string) error {
	if err == nil {
		return nil
	}
	shown := "[redacted URL]"
	if p, perr := url.Parse(secretURL); perr == nil && p.Host != "" {
		shown = p.Scheme + "://" + p.Host + "/[redacted]"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = shown
	}
	if msg := err.Error(); secretURL != "" && strings.Contains(msg, secretURL) {
		return &redactedError{msg: strings.ReplaceAll(msg, secretURL, shown), err: err}
	}
	return err
}

// redactedError shows msg in place of err's text.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// call runs one Slack call: paced by send_interval, waiting out every 429
// for its Retry-After (the message is kept), retrying other transient
// errors twice, and giving up at once on errors Slack will repeat.
func (a *Alerter) call(ctx context.Context, name string, f func(context.Context) error) error {
	failures := 0
	for {
		if gap := a.cfg.SendInterval - a.clock.Now().Sub(a.lastSend); gap > 0 && !a.lastSend.IsZero() {
			if err := a.sleep(ctx, gap); err != nil {
				return err
			}
		}
		// A call under way is not cut by ctx (the request may already have
		// reached Slack, and sending it again would post twice); it is
		// bounded by callTimeout instead.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
		err := f(cctx)
		cancel()
		a.lastSend = a.clock.Now()
		if err == nil {
			a.m.sent.WithLabelValues(name).Inc()
			return nil
		}
		var rl *slack.RateLimitedError
		var sc slack.StatusCodeError
		switch {
		case errors.As(err, &rl):
			a.m.rateLimited.Inc()
			wait := max(rl.RetryAfter, time.Second)
			a.log.Warn("Slack rate limit; waiting as asked", "op", name, "retry_after", wait)
			if err := a.sleep(ctx, wait); err != nil {
				return err
			}
			continue
		case errors.As(err, &sc) && sc.Code == http.StatusTooManyRequests:
			a.m.rateLimited.Inc()
			if err := a.sleep(ctx, time.Second); err != nil {
				return err
			}
			continue
		}
		a.m.errors.WithLabelValues(name).Inc()
		failures++
		if permanent(err) || failures == 3 {
			return err
		}
		a.log.Warn("Slack call failed; retrying", "op", name, "err", err, "attempt", failures)
		if err := a.sleep(ctx, time.Duration(failures)*time.Second); err != nil {
			return err
		}
	}
}

// permanent: errors a retry would only repeat (Slack said ok:false, such
// as channel_not_found or invalid_blocks; a 4xx other than 429).
func permanent(err error) bool {
	var se slack.SlackErrorResponse
	var sc slack.StatusCodeError
	switch {
	case errors.As(err, &se):
		return true
	case errors.As(err, &sc):
		return sc.Code >= 400 && sc.Code < 500
	}
	return false
}

func (a *Alerter) sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-a.clock.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
