package alert

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/slack-go/slack"

	"github.com/meshguard/meshguard/models"
)

// Limits that keep a message inside Slack's: 50 blocks, 3000 characters a
// section, 25 elements an actions block.
const (
	maxFeatures      = 8
	maxEvidenceItems = 5
	maxActionsShown  = 5
	maxSectionText   = 2900
)

// Button action_ids. Slack sends them back in the interaction payload.
const (
	buttonApprove = "mg_approve"
	buttonRevoke  = "mg_revoke"
	buttonExtend  = "mg_extend"
	buttonOpen    = "mg_open"
)

// buttonValue is the value of an action button. It comes back signed by
// Slack; the Controller still checks the action exists.
type buttonValue struct {
	ActionID    string `json:"a"`
	DetectionID string `json:"d"`
}

// renderer turns incidents into Block Kit.
type renderer struct {
	link        *template.Template // nil: no link button
	interactive bool               // show Approve/Revoke/Extend
	noApprove   bool               // the Controller refuses approvals
	extendBy    time.Duration
	now         func() time.Time
}

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, cut(s, maxSectionText), false, true)
}

func ptext(s string, max int) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, plainText(s, max), false, false)
}

// cut bounds a mrkdwn text we assembled; it cuts between lines so that no
// code span or entity is broken.
func cut(s string, max int) string {
	if len(s) <= max {
		return s
	}
	i := strings.LastIndexByte(s[:max], '\n')
	if i < 0 {
		return "…"
	}
	return s[:i] + "\n…"
}

var sevEmoji = map[models.Severity]string{
	models.SeverityLow: "🔵", models.SeverityMedium: "🟡", models.SeverityHigh: "🟠", models.SeverityCritical: "🔴",
}

// partyText renders one side: namespace/workload first, then the
// principal, service or IP, all as code.
func partyText(p models.Party) string {
	var parts []string
	if p.Workload != "" || p.Namespace != "" {
		parts = append(parts, code(joinNonEmpty("/", p.Namespace, p.Workload)))
	}
	if p.Principal != "" {
		parts = append(parts, "principal "+code(p.Principal))
	}
	if p.Service != "" {
		parts = append(parts, "service "+code(p.Service))
	}
	if p.IP != "" {
		parts = append(parts, "ip "+code(p.IP))
	}
	if len(parts) == 0 {
		return "unknown"
	}
	return strings.Join(parts, " · ")
}

// partyKey names a party in one string (grouping, links, summaries).
func partyKey(p models.Party) string {
	switch {
	case p.Workload != "" || p.Namespace != "":
		return joinNonEmpty("/", p.Namespace, p.Workload)
	case p.Principal != "":
		return p.Principal
	case p.Service != "":
		return p.Service
	case p.IP != "":
		return p.IP
	}
	return "unknown"
}

func joinNonEmpty(sep string, xs ...string) string {
	var out []string
	for _, x := range xs {
		if x != "" {
			out = append(out, x)
		}
	}
	return strings.Join(out, sep)
}

func utc(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func num(x float64) string {
	switch {
	case x == float64(int64(x)) && x < 1e15 && x > -1e15:
		return fmt.Sprintf("%d", int64(x))
	case x >= 100 || x <= -100:
		return fmt.Sprintf("%.0f", x)
	}
	return fmt.Sprintf("%.2f", x)
}

// title is the one-line, escaped description used in fallback text and in
// webhook-mode updates.
func title(d models.Detection) string {
	return fmt.Sprintf("%s %s %s from %s to %s", sevEmoji[d.Severity], d.Severity, d.Kind, code(partyKey(d.Source)), code(partyKey(d.Destination)))
}

// incidentBlocks renders an incident's parent message.
func (r *renderer) incidentBlocks(inc *incident, dropped uint64) []slack.Block {
	d := inc.lead
	var blocks []slack.Block
	if inc.storm != nil {
		blocks = append(blocks, r.stormBlocks(inc)...)
	} else {
		blocks = append(blocks, r.detectionBlocks(d)...)
	}
	blocks = append(blocks, r.actionBlocks(inc.actions)...)
	if link := r.linkButton(d); link != nil {
		blocks = append(blocks, slack.NewActionBlock("links", link))
	}
	ctx := fmt.Sprintf("meshguard · detection %s · detected %s · updated %s", code(d.ID), utc(d.DetectedAt), utc(d.UpdatedAt))
	blocks = append(blocks, slack.NewContextBlock("meta", mrkdwn(ctx)))
	if dropped > 0 {
		blocks = append(blocks, dropBlock(dropped))
	}
	return blocks
}

func dropBlock(n uint64) slack.Block {
	return slack.NewContextBlock("dropped", mrkdwn(fmt.Sprintf("⚠️ %d alert event(s) were dropped since the last message: the Slack queue was full (see meshguard_alert_dropped_total).", n)))
}

func (r *renderer) detectionBlocks(d models.Detection) []slack.Block {
	head := fmt.Sprintf("%s %s · %s", sevEmoji[d.Severity], strings.ToUpper(d.Severity.String()), d.Kind)
	blocks := []slack.Block{slack.NewHeaderBlock(ptext(head, 150))}

	var who strings.Builder
	fmt.Fprintf(&who, "*Source* %s\n*Destination* %s", partyText(d.Source), partyText(d.Destination))
	if d.Evidence.Summary != "" {
		fmt.Fprintf(&who, "\n%s", code(d.Evidence.Summary))
	}
	fields := []*slack.TextBlockObject{
		mrkdwn("*Score*\n" + num(d.Score)),
		mrkdwn(fmt.Sprintf("*Window*\n%s – %s", utc(d.WindowStart), d.WindowEnd.UTC().Format("15:04:05"))),
		mrkdwn(fmt.Sprintf("*Windows folded in*\n%d", d.Updates)),
		mrkdwn("*Detection*\n" + code(d.ID)),
	}
	blocks = append(blocks, slack.NewSectionBlock(mrkdwn(who.String()), fields, nil))

	if fs := d.Evidence.Features; len(fs) > 0 {
		fs = append([]models.FeatureEvidence(nil), fs...)
		sort.SliceStable(fs, func(i, j int) bool { return fs[i].Score > fs[j].Score })
		var b strings.Builder
		b.WriteString("*Expected vs observed*")
		for i, f := range fs {
			if i == maxFeatures {
				fmt.Fprintf(&b, "\n… %d more", len(fs)-i)
				break
			}
			fmt.Fprintf(&b, "\n• %s: expected %s, observed *%s* (surprise %s", code(f.Feature), num(f.Expected), num(f.Observed), num(f.Score))
			if f.Model != "" {
				fmt.Fprintf(&b, ", %s", code(f.Model))
			}
			b.WriteString(")")
		}
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(b.String()), nil, nil))
	}

	if ev := evidenceText(d.Evidence); ev != "" {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn("*Evidence*"+ev), nil, nil))
	}
	return blocks
}

func evidenceText(e models.Evidence) string {
	var b strings.Builder
	counts := func(label string, cs []models.Count) {
		if len(cs) == 0 {
			return
		}
		fmt.Fprintf(&b, "\n%s:", label)
		for i, c := range cs {
			if i == maxEvidenceItems {
				fmt.Fprintf(&b, " … %d more", len(cs)-i)
				break
			}
			fmt.Fprintf(&b, " %s ×%d", code(c.Value), c.Count)
		}
	}
	list := func(label string, xs []string) {
		if len(xs) == 0 {
			return
		}
		fmt.Fprintf(&b, "\n%s:", label)
		for i, x := range xs {
			if i == maxEvidenceItems {
				fmt.Fprintf(&b, " … %d more", len(xs)-i)
				break
			}
			fmt.Fprintf(&b, " %s", code(x))
		}
	}
	counts("Top paths", e.TopPaths)
	counts("Response codes", e.TopCodes)
	list("Destinations", e.Destinations)
	list("Sample requests", e.SampleRequestIDs)
	list("Sample traces", e.SampleTraceIDs)
	return b.String()
}

var stateEmoji = map[models.ActionState]string{
	models.StateApplied: "🛡️", models.StateSkipped: "⏭️", models.StatePromoted: "⏫", models.StateExtended: "⏳",
	models.StateExpired: "⌛", models.StateRevoked: "↩️", models.StateFailed: "❌", models.StateAlerted: "📣",
}

// actionLine is one action's state in one line (used in threads too).
func actionLine(a models.Action) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s *%s* %s · mode %s", stateEmoji[a.State], a.State, code(string(a.Kind)), code(string(a.Mode)))
	if a.Actor != "" {
		fmt.Fprintf(&b, " · by %s", code(a.Actor))
	}
	return b.String()
}

func actionDetails(a models.Action) string {
	var b strings.Builder
	b.WriteString(actionLine(a))
	if a.Target != "" {
		fmt.Fprintf(&b, "\nTarget %s", code(a.Target))
	}
	if a.PolicyName != "" {
		fmt.Fprintf(&b, "\nPolicy %s", code(joinNonEmpty("/", a.PolicyNamespace, a.PolicyName)))
	}
	if !a.ExpiresAt.IsZero() {
		fmt.Fprintf(&b, " · expires %s", utc(a.ExpiresAt))
	}
	if a.BlastRequests > 0 || a.BlastCallers > 0 {
		fmt.Fprintf(&b, "\nBlast radius: would have denied %d request(s) from %d caller(s) over the last 24h", a.BlastRequests, a.BlastCallers)
	}
	if a.Reason != "" {
		fmt.Fprintf(&b, "\nReason %s", code(a.Reason))
	}
	return b.String()
}

// live: the action still has an effect that a human may change.
func live(a models.Action) bool {
	switch a.State {
	case models.StateApplied, models.StatePromoted, models.StateExtended, models.StateAlerted:
		return a.Kind != models.ActionAlert && a.Mode != models.ModeAlert
	}
	return false
}

func (r *renderer) actionBlocks(actions []models.Action) []slack.Block {
	var blocks []slack.Block
	for i, a := range actions {
		if i == maxActionsShown {
			blocks = append(blocks, slack.NewContextBlock("more-actions", mrkdwn(fmt.Sprintf("… and %d more action(s); see the actions table.", len(actions)-i))))
			break
		}
		blocks = append(blocks, slack.NewDividerBlock(), slack.NewSectionBlock(mrkdwn("*Action*\n"+actionDetails(a)), nil, nil))
		if btns := r.buttons(a); len(btns) > 0 {
			blocks = append(blocks, slack.NewActionBlock(blockID(a.ID), btns...))
		}
	}
	return blocks
}

// blockID keeps Slack's 255-character limit and uniqueness per message.
func blockID(actionID string) string {
	id := "act:" + actionID
	if len(id) > 255 {
		id = id[:255]
	}
	return id
}

func (r *renderer) buttons(a models.Action) []slack.BlockElement {
	if !r.interactive || !live(a) {
		return nil
	}
	v, _ := json.Marshal(buttonValue{ActionID: a.ID, DetectionID: a.DetectionID})
	val := string(v)
	var els []slack.BlockElement
	if a.Mode == models.ModeDryRun && !r.noApprove {
		els = append(els, slack.NewButtonBlockElement(buttonApprove, val, ptext("Approve (enforce)", 75)).
			WithStyle(slack.StylePrimary).
			WithConfirm(slack.NewConfirmationBlockObject(ptext("Enforce this policy?", 100),
				ptext("The dry-run policy becomes enforcing: matching requests will be denied. Target: "+a.Target, 300),
				ptext("Enforce", 30), ptext("Cancel", 30))))
	}
	els = append(els, slack.NewButtonBlockElement(buttonRevoke, val, ptext("Revoke", 75)).
		WithStyle(slack.StyleDanger).
		WithConfirm(slack.NewConfirmationBlockObject(ptext("Revoke this action?", 100),
			ptext("The policy is removed and traffic flows again. Target: "+a.Target, 300),
			ptext("Revoke", 30), ptext("Cancel", 30))))
	if !a.ExpiresAt.IsZero() {
		els = append(els, slack.NewButtonBlockElement(buttonExtend, val, ptext("Extend TTL by "+shortDuration(r.extendBy), 75)))
	}
	return els
}

func shortDuration(d time.Duration) string {
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	return strings.TrimSuffix(s, "0m")
}

func (r *renderer) linkButton(d models.Detection) slack.BlockElement {
	if r.link == nil {
		return nil
	}
	var b strings.Builder
	err := r.link.Execute(&b, LinkData{
		DetectionID: d.ID, Kind: string(d.Kind), Severity: d.Severity.String(),
		Source: partyKey(d.Source), Destination: partyKey(d.Destination),
		FromMillis: d.WindowStart.Add(-5 * time.Minute).UnixMilli(), ToMillis: d.WindowEnd.Add(5 * time.Minute).UnixMilli(),
	})
	// A template that puts telemetry in without urlquery can make a URL
	// Slack refuses (invalid_blocks would lose the whole message): then
	// the link is left out.
	link := b.String()
	if u, perr := url.Parse(link); err != nil || perr != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		len(link) > 3000 || strings.IndexFunc(link, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return nil
	}
	return slack.NewButtonBlockElement(buttonOpen, "open", ptext("Open", 75)).WithURL(link)
}

// stormBlocks renders a summary of many detections from one source.
func (r *renderer) stormBlocks(inc *incident) []slack.Block {
	s := inc.storm
	head := fmt.Sprintf("🌩️ %s · storm of %d detections from one source", strings.ToUpper(s.maxSev.String()), s.count)
	var b strings.Builder
	fmt.Fprintf(&b, "*%d more detection(s)* from %s within %s (since %s), grouped into this message.", s.count, code(s.source), shortDuration(s.window), utc(s.start))
	fmt.Fprintf(&b, "\n*Kinds:* %s", topCounts(s.kinds, 8))
	fmt.Fprintf(&b, "\n*Destinations* (%d): %s", len(s.dests), topCounts(s.dests, 10))
	b.WriteString("\n*Detections:*")
	for i, id := range s.ids {
		if i == maxEvidenceItems {
			fmt.Fprintf(&b, " … %d more", s.count-i)
			break
		}
		fmt.Fprintf(&b, " %s", code(id))
	}
	if s.escalations > 0 {
		fmt.Fprintf(&b, "\n%d escalation(s) since; see the thread.", s.escalations)
	}
	return []slack.Block{slack.NewHeaderBlock(ptext(head, 150)), slack.NewSectionBlock(mrkdwn(b.String()), nil, nil)}
}

// topCounts lists the most frequent values, escaped, most frequent first.
func topCounts(m map[string]int, n int) string {
	type kv struct {
		k string
		v int
	}
	var xs []kv
	for k, v := range m {
		xs = append(xs, kv{k, v})
	}
	sort.Slice(xs, func(i, j int) bool {
		if xs[i].v != xs[j].v {
			return xs[i].v > xs[j].v
		}
		return xs[i].k < xs[j].k
	})
	var parts []string
	for i, x := range xs {
		if i == n {
			parts = append(parts, fmt.Sprintf("… %d more", len(xs)-i))
			break
		}
		parts = append(parts, fmt.Sprintf("%s ×%d", code(x.k), x.v))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// fallback is the notification text (and what clients without Block Kit
// show); escaped like the blocks.
func fallback(inc *incident) string {
	if inc.storm != nil {
		return fmt.Sprintf("meshguard: storm of %d %s detections from %s", inc.storm.count, inc.storm.maxSev, code(inc.storm.source))
	}
	return "meshguard: " + title(inc.lead)
}

// replyBlocks renders a thread reply (or, in webhook mode, a follow-up
// message that names its incident).
func (r *renderer) replyBlocks(inc *incident, text string, webhook bool, dropped uint64) []slack.Block {
	var blocks []slack.Block
	if webhook {
		blocks = append(blocks, slack.NewContextBlock("incident", mrkdwn("Update to "+fallback(inc)+" · detection "+code(inc.lead.ID))))
	}
	blocks = append(blocks, slack.NewSectionBlock(mrkdwn(text), nil, nil))
	if webhook {
		// A webhook cannot edit the first message, so its buttons may be
		// scrolled far away or show a stale choice: every update carries
		// the buttons of the incident's actions as they stand now.
		for i, a := range inc.actions {
			if i == maxActionsShown {
				break
			}
			if btns := r.buttons(a); len(btns) > 0 {
				blocks = append(blocks, slack.NewActionBlock(blockID(a.ID), btns...))
			}
		}
	}
	if dropped > 0 {
		blocks = append(blocks, dropBlock(dropped))
	}
	return blocks
}

// partText announces a later detection of the same incident in its
// thread.
func partText(d models.Detection) string {
	return fmt.Sprintf("➕ Same incident: %s (*%s*) %s → %s, window %s: %s", code(string(d.Kind)), d.Severity,
		code(partyKey(d.Source)), code(partyKey(d.Destination)), utc(d.WindowStart), code(d.Evidence.Summary))
}

func escalationText(d models.Detection, from models.Severity) string {
	return fmt.Sprintf("⬆️ %s escalated from *%s* to *%s* (score %s, %d window(s), last window ends %s)", code(string(d.Kind)), from, d.Severity, num(d.Score), d.Updates, utc(d.WindowEnd))
}

func actionChangeText(a models.Action, d models.Detection, member bool) string {
	s := actionDetails(a)
	if member {
		s = fmt.Sprintf("Detection %s (%s → %s):\n", code(d.ID), code(partyKey(d.Source)), code(partyKey(d.Destination))) + s
	}
	return s
}
