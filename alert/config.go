package alert

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"text/template"
	"time"

	"github.com/meshguard/meshguard/internal/secret"
)

// Config is the `alert:` section. Only Slack exists for now.
type Config struct {
	Slack SlackConfig `yaml:"slack"`
}

// SlackConfig is `alert.slack`. Exactly one of the two modes is used:
//
//   - bot mode: Token (or TokenFile) and Channel. Messages go through the Web
//     API (chat.postMessage with Block Kit); later changes are posted in the
//     incident's thread and the parent message is edited (chat.update).
//   - webhook mode: WebhookURL (or WebhookURLFile). An incoming webhook can
//     only post: later changes arrive as new messages that name the incident,
//     and a parent is edited only through the response_url of a button click.
//
// Neither set means Slack alerts are off. Secrets (token, webhook URL,
// signing secret) are better read from files (the *_file keys, e.g. a
// mounted Kubernetes Secret); they are never logged (see String).
type SlackConfig struct {
	WebhookURL     string `yaml:"webhook_url"`
	WebhookURLFile string `yaml:"webhook_url_file"`
	Token          string `yaml:"token"`
	TokenFile      string `yaml:"token_file"`
	// Channel is the channel ID (C0123...) or name the bot posts to.
	Channel string `yaml:"channel"`
	// APIURL replaces https://slack.com/api/ (a proxy, Slack GovSlack, a
	// test server).
	APIURL string `yaml:"api_url"`

	// SigningSecret verifies the interactivity requests (button clicks)
	// Slack sends to /slack/interactions. Without it no buttons are shown.
	SigningSecret     string `yaml:"signing_secret"`
	SigningSecretFile string `yaml:"signing_secret_file"`
	// AllowedUsers may click Approve, Revoke and Extend: Slack user IDs
	// (U0123ABC or W0123ABC), matched exactly. Names are not accepted: a
	// user chooses their own name, and another workspace has its own.
	AllowedUsers []string `yaml:"allowed_users"`
	// TeamID is the Slack workspace (team) ID, T0123ABC, whose users may
	// click. When set, a click from any other team is refused, whoever
	// it names.
	TeamID string `yaml:"team_id"`
	// AllowedGroups are Slack user groups (IDs S0123ABC or handles such as
	// security-oncall) whose members may act. Resolving members needs the
	// Web API (bot mode, scope usergroups:read); membership is cached for
	// five minutes.
	AllowedGroups []string `yaml:"allowed_groups"`

	// LinkTemplate builds the "Open" button's URL, as a Go text/template
	// over LinkData, e.g.
	//   https://grafana.example/d/mesh?var-detection={{.DetectionID | urlquery}}&from={{.FromMillis}}&to={{.ToMillis}}
	// The placeholder {detection_id} is accepted as a shorthand for
	// {{.DetectionID | urlquery}}. Empty: no link.
	LinkTemplate string `yaml:"link_template"`

	// QueueSize bounds the events waiting to be sent; when full the oldest
	// is dropped, counted and reported in the next message.
	QueueSize int `yaml:"queue_size"`
	// GroupWindow: the first new detection from a source is posted at once;
	// further new detections from the same source within the window are
	// folded into one summary message when it closes (a storm; a single
	// one is posted on its own). A storm that outlasts the window gets a
	// message for its next first detection and a summary per window. 0
	// disables grouping.
	GroupWindow time.Duration `yaml:"group_window"`
	// ExtendBy is how much the Extend TTL button adds.
	ExtendBy time.Duration `yaml:"extend_by"`
	// SendInterval is the least time between two Slack calls (Slack allows
	// about one message per second per channel). 0 disables pacing; a 429
	// is honoured either way.
	SendInterval time.Duration `yaml:"send_interval"`
}

// DefaultConfig is what an empty `alert:` section means: Slack off, the
// tuning keys at their defaults.
func DefaultConfig() Config {
	return Config{Slack: SlackConfig{
		QueueSize:    1000,
		GroupWindow:  30 * time.Second,
		ExtendBy:     time.Hour,
		SendInterval: time.Second,
	}}
}

// Validate reports every problem at once, each with its key.
func (c *Config) Validate() error { return c.Slack.Validate() }

// Enabled reports whether a webhook or a bot token is configured.
func (c *SlackConfig) Enabled() bool {
	return c.WebhookURL != "" || c.WebhookURLFile != "" || c.Token != "" || c.TokenFile != ""
}

// Bot reports whether Slack is used through the Web API (threads, edits).
func (c *SlackConfig) Bot() bool { return c.Token != "" || c.TokenFile != "" }

const key = "alert.slack."

// Validate reports every problem at once, each with its key. It reads the
// *_file secrets to check they are usable, and never quotes them.
func (c *SlackConfig) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, p := range [][2]string{{"webhook_url", c.WebhookURL}, {"token", c.Token}, {"signing_secret", c.SigningSecret}} {
		file := map[string]string{"webhook_url": c.WebhookURLFile, "token": c.TokenFile, "signing_secret": c.SigningSecretFile}[p[0]]
		if p[1] != "" && file != "" {
			add("%s%s and %s%s_file are both set; set one", key, p[0], key, p[0])
		}
		if file != "" {
			if _, err := secret.ReadFile(file); err != nil {
				add("%s%s_file: %v", key, p[0], err)
			}
		}
	}
	webhook := c.WebhookURL != "" || c.WebhookURLFile != ""
	if webhook && c.Bot() {
		add("%swebhook_url and %stoken are both set; use a webhook or a bot token, not both", key, key)
	}
	if c.WebhookURL != "" {
		// The URL holds a secret: say what is wrong, never what it is.
		if u, err := url.Parse(c.WebhookURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			add("%swebhook_url: not an http(s) URL (value not shown: it is a secret)", key)
		}
	}
	if c.Bot() && c.Channel == "" {
		add("%schannel: empty; bot mode (%stoken) needs the channel to post to", key, key)
	}
	if c.APIURL != "" {
		if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			add("%sapi_url: %q is not an http(s) URL", key, c.APIURL)
		}
	}
	interactive := c.SigningSecret != "" || c.SigningSecretFile != ""
	if interactive && len(c.AllowedUsers) == 0 && len(c.AllowedGroups) == 0 {
		add("%sallowed_users: empty while %ssigning_secret is set; name who may approve, revoke and extend (or set %sallowed_groups)", key, key, key)
	}
	if len(c.AllowedGroups) > 0 && !c.Bot() {
		add("%sallowed_groups: resolving group members needs bot mode (%stoken); use %sallowed_users with a webhook", key, key, key)
	}
	for _, u := range c.AllowedUsers {
		switch u = strings.TrimSpace(u); {
		case u == "":
			add("%sallowed_users: an empty entry", key)
		case !slackID(u, "UW"):
			add("%sallowed_users: %q is not a Slack user ID; list user IDs (U0123ABC: the profile's \"Copy member ID\"), not names", key, u)
		}
	}
	if c.TeamID != "" && !slackID(c.TeamID, "T") {
		add("%steam_id: %q is not a Slack team ID; use the workspace's ID, T0123ABC (empty: any team)", key, c.TeamID)
	}
	if c.LinkTemplate != "" {
		if _, err := parseLink(c.LinkTemplate); err != nil {
			add("%slink_template: %v", key, err)
		}
	}
	if c.QueueSize < 1 || c.QueueSize > 1_000_000 {
		add("%squeue_size: %d; use 1 to 1000000 (default 1000)", key, c.QueueSize)
	}
	if c.GroupWindow < 0 || c.GroupWindow > time.Hour {
		add("%sgroup_window: %s; use 0 (no grouping) to 1h (default 30s)", key, c.GroupWindow)
	}
	if c.ExtendBy < time.Minute || c.ExtendBy > 7*24*time.Hour {
		add("%sextend_by: %s; use 1m to 168h (default 1h)", key, c.ExtendBy)
	}
	if c.SendInterval < 0 || c.SendInterval > time.Minute {
		add("%ssend_interval: %s; use 0 to 1m (default 1s)", key, c.SendInterval)
	}
	return errors.Join(errs...)
}

// slackID reports whether s looks like a Slack ID: one of the prefix
// letters, then upper-case letters and digits.
func slackID(s, prefixes string) bool {
	if len(s) < 2 || !strings.ContainsRune(prefixes, rune(s[0])) {
		return false
	}
	for _, r := range s[1:] {
		if (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}

// resolved returns c with every *_file secret read into its value.
func (c SlackConfig) resolved() (SlackConfig, error) {
	var errs []error
	for _, p := range []struct {
		name string
		file string
		dst  *string
	}{{"webhook_url_file", c.WebhookURLFile, &c.WebhookURL}, {"token_file", c.TokenFile, &c.Token}, {"signing_secret_file", c.SigningSecretFile, &c.SigningSecret}} {
		if p.file == "" {
			continue
		}
		v, err := secret.ReadFile(p.file)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s%s: %w", key, p.name, err))
			continue
		}
		*p.dst = v
	}
	return c, errors.Join(errs...)
}

func redact(s string) string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// String shows the config with every secret replaced by [redacted], so
// that printing or logging it (%v, %+v) leaks nothing.
func (c SlackConfig) String() string {
	return fmt.Sprintf("{webhook_url:%s webhook_url_file:%s token:%s token_file:%s channel:%s api_url:%s signing_secret:%s signing_secret_file:%s allowed_users:%v team_id:%s allowed_groups:%v link_template:%q queue_size:%d group_window:%s extend_by:%s send_interval:%s}",
		redact(c.WebhookURL), c.WebhookURLFile, redact(c.Token), c.TokenFile, c.Channel, c.APIURL,
		redact(c.SigningSecret), c.SigningSecretFile, c.AllowedUsers, c.TeamID, c.AllowedGroups, c.LinkTemplate,
		c.QueueSize, c.GroupWindow, c.ExtendBy, c.SendInterval)
}

// GoString keeps %#v from printing the secrets too.
func (c SlackConfig) GoString() string { return "alert.SlackConfig" + c.String() }

// LogValue makes slog print the config redacted.
func (c SlackConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("mode", c.mode()),
		slog.String("webhook_url", redact(c.WebhookURL)),
		slog.String("webhook_url_file", c.WebhookURLFile),
		slog.String("token", redact(c.Token)),
		slog.String("token_file", c.TokenFile),
		slog.String("channel", c.Channel),
		slog.String("api_url", c.APIURL),
		slog.String("signing_secret", redact(c.SigningSecret)),
		slog.String("signing_secret_file", c.SigningSecretFile),
		slog.Any("allowed_users", c.AllowedUsers),
		slog.String("team_id", c.TeamID),
		slog.Any("allowed_groups", c.AllowedGroups),
		slog.String("link_template", c.LinkTemplate),
		slog.Int("queue_size", c.QueueSize),
		slog.Duration("group_window", c.GroupWindow),
	)
}

// String and LogValue of the whole section redact the same way.
func (c Config) String() string       { return "{slack:" + c.Slack.String() + "}" }
func (c Config) GoString() string     { return "alert.Config" + c.String() }
func (c Config) LogValue() slog.Value { return slog.GroupValue(slog.Any("slack", c.Slack)) }
func (c *SlackConfig) mode() string   { return modeName(c.Enabled(), c.Bot()) }
func modeName(on, bot bool) string {
	switch {
	case !on:
		return "off"
	case bot:
		return "bot"
	}
	return "webhook"
}

// LinkData is what link_template sees.
type LinkData struct {
	DetectionID string
	Kind        string
	Severity    string
	// Source and Destination are "namespace/workload" (or the principal or
	// IP when that is all there is). They come from telemetry: pass them
	// through urlquery.
	Source, Destination string
	// FromMillis and ToMillis bracket the detection's window with five
	// minutes either side, in Unix milliseconds (Grafana's from/to).
	FromMillis, ToMillis int64
}

func parseLink(s string) (*template.Template, error) {
	s = strings.ReplaceAll(s, "{detection_id}", "{{.DetectionID | urlquery}}")
	t, err := template.New("link").Option("missingkey=error").Parse(s)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	if err := t.Execute(&b, LinkData{DetectionID: "d-1", Kind: "scan", Severity: "high", Source: "a/b", Destination: "c/d", FromMillis: 1, ToMillis: 2}); err != nil {
		return nil, err
	}
	if u, err := url.Parse(b.String()); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("%q does not produce an http(s) URL", s)
	}
	return t, nil
}
