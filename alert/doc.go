// Package alert tells people about detections and actions, in Slack, and
// lets them act from there.
//
// One Slack message per incident carries the evidence (kind, severity,
// source and destination identities, expected vs observed features, top
// paths and codes, sample request and trace ids), the action taken (mode,
// policy, expiry, blast radius), a link built from link_template and, when
// interactivity is set up, the buttons Approve (dry-run to enforce), Revoke
// and Extend TTL. A storm (many new detections from one source within
// group_window) becomes one summary message.
//
// Two modes:
//
//   - bot (token + channel, chat.postMessage): later changes (promoted,
//     extended, expired, revoked, failed, escalated) are replies in the
//     incident's thread and the parent is edited to show the current state.
//   - webhook (an incoming webhook URL): a webhook can only post, so later
//     changes are new messages naming their incident; a parent is edited
//     only after a click, through the click's response_url.
//
// Delivery: HandleDetection and HandleAction never block; they put the
// event in a bounded queue (queue_size) that drops the oldest event when
// full, counts it (meshguard_alert_dropped_total) and says so in the next
// message. Run is the only sender: it paces calls (send_interval), waits out
// every 429 for its Retry-After without losing the message, and on shutdown
// drains the queue and closes open storm windows for at most ten seconds.
//
// Every string that comes from telemetry (paths, user agents, workload
// names, principals, reasons and targets built from them) is rendered as
// inline code with &, <, > escaped, backticks and line breaks replaced and
// control and format characters removed, in text objects marked verbatim:
// no <!channel>, @mention, link or formatting can be injected.
//
// Configuration (root config key `alert`; every key also as
// MESHGUARD_ALERT_SLACK_<KEY>):
//
//	alert:
//	  slack:
//	    token_file: /var/run/secrets/slack/token      # bot mode (or webhook_url_file)
//	    channel: C0123SECOPS
//	    signing_secret_file: /var/run/secrets/slack/signing-secret
//	    allowed_users: [U0123ALICE, U0456BOB]          # user IDs, matched exactly (never names)
//	    team_id: T0123MESH                            # clicks from other workspaces refused
//	    allowed_groups: [security-oncall]             # user group handles or S... IDs (bot mode)
//	    link_template: https://grafana.example/d/mesh?var-detection={detection_id}&from={{.FromMillis}}&to={{.ToMillis}}
//	    queue_size: 1000
//	    group_window: 30s
//	    extend_by: 1h
//	    send_interval: 1s
//
// The Slack app needs the bot scopes chat:write (and usergroups:read for
// allowed_groups) and, for the buttons, Interactivity with the Request URL
// https://<meshguard>/slack/interactions. Socket Mode is not used.
package alert
