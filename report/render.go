package report

import (
	"encoding/json"
	"fmt"
	htmltemplate "html/template"
	"io"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/meshguard/meshguard/posture"
)

// Formats Render writes.
var Formats = []string{"json", "md", "html", "pdf"}

// ContentType is the media type of a format.
func ContentType(format string) string {
	switch format {
	case "md":
		return "text/markdown; charset=utf-8"
	case "html":
		return "text/html; charset=utf-8"
	case "pdf":
		return "application/pdf"
	}
	return "application/json"
}

// Render writes r in format (json, md, html or pdf).
func Render(w io.Writer, r *Report, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "md":
		return mdTemplate.Execute(w, r)
	case "html":
		return htmlTemplate.Execute(w, r)
	case "pdf":
		return renderPDF(w, r)
	}
	return fmt.Errorf("report format %q: want one of %s", format, strings.Join(Formats, ", "))
}

// mdEscape makes telemetry inert in Markdown: no markup, no table cell
// breaks, no raw HTML (Markdown passes HTML through), one line.
var mdEscape = strings.NewReplacer(
	`\`, `\\`, "`", "\\`", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`, "|", `\|`, "#", `\#`,
	"<", "&lt;", ">", "&gt;", "&", "&amp;", "\r", " ", "\n", " ", "\t", " ",
)

func seconds(s float64) string { return (time.Duration(s) * time.Second).String() }

var funcs = map[string]any{
	"pct":   pct,
	"ts":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	"tsp":   func(t *time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	"secs":  seconds,
	"join":  strings.Join,
	"party": func(p posture.Party) string { return p.Name() },
	"ttr": func(s *float64) string {
		if s == nil {
			return "no response"
		}
		return seconds(*s)
	},
	"upper": strings.ToUpper,
}

var mdTemplate = texttemplate.Must(texttemplate.New("md").Funcs(funcs).Funcs(map[string]any{
	"e": func(s string) string { return mdEscape.Replace(s) },
}).Parse(mdText))

var htmlTemplate = htmltemplate.Must(htmltemplate.New("html").Funcs(funcs).Parse(htmlText))

const mdText = `# {{e .Title}}

Period: {{ts .From}} to {{ts .To}} (UTC). Generated {{ts .GeneratedAt}}.
Controls: **{{.Passed}} pass, {{.Gapped}} gap**.{{if not .ClusterRead}} The cluster's policies were not read: modes and coverage are unknown.{{end}}

## Controls

| Framework | Control | Requirement (paraphrase) | Verdict | Why | Evidence |
| --- | --- | --- | --- | --- | --- |
{{range .Controls}}| {{e .Framework}} | {{e .ID}} | {{e .Requirement}} | **{{upper .Verdict}}** | {{e .Why}} | {{range $i, $v := .Evidence}}{{if $i}}; {{end}}{{e $v}}{{end}} |
{{end}}
Sources:
{{range .Controls}}- {{e .Framework}} {{e .ID}}: {{e .Source}}
{{end}}
## mTLS coverage

{{.Coverage.Requests}} requests: {{pct .Coverage.MTLSShare}} mTLS, {{pct .Coverage.PlaintextShare}} plaintext, {{pct .Coverage.UnknownShare}} unknown (no TLS evidence).

| Day | Requests | mTLS | Plaintext | Unknown |
| --- | --- | --- | --- | --- |
{{range .Trend}}| {{.Day}} | {{.Requests}} | {{pct .MTLSShare}} | {{pct .PlaintextShare}} | {{pct .UnknownShare}} |
{{end}}
## Plaintext flows

| Source | Destination | Port | Plaintext requests | First seen | Last seen | Sample request ids |
| --- | --- | --- | --- | --- | --- | --- |
{{range .PlaintextEdges}}| {{e (party .Source)}} | {{e (party .Destination)}} | {{.Port}} | {{.Plaintext}} | {{tsp .PlaintextFirstSeen}} | {{tsp .PlaintextLastSeen}} | {{e (join .SampleRequestIDs ", ")}} |
{{end}}
## Identities

| Workload | Identity | Principals |
| --- | --- | --- |
{{range .Identities}}| {{e .Namespace}}/{{e .Workload}} | {{e .Identity}} | {{e (join .Principals ", ")}} |
{{end}}
No mesh identity: {{range $i, $p := .NoIdentity}}{{if $i}}, {{end}}{{e (party $p)}}{{else}}none{{end}}.

## Policies in force

| Kind | Namespace | Name | Setting | Scope |
| --- | --- | --- | --- | --- |
{{range .Policies}}| {{e .Kind}} | {{e .Namespace}} | {{e .Name}} | {{e .Setting}} | {{e .Scope}} |
{{end}}
Workloads no ALLOW policy covers: {{range $i, $p := .Uncovered}}{{if $i}}, {{end}}{{e (party $p)}}{{else}}none{{end}}.
Workloads not under STRICT mTLS: {{range $i, $p := .NotStrict}}{{if $i}}, {{end}}{{e (party $p)}}{{else}}none{{end}}.

### Changes to policies

| At | Action | State | Actor | Policy | Reason |
| --- | --- | --- | --- | --- | --- |
{{range .PolicyChanges}}| {{ts .At}} | {{e .Kind}} | {{e .State}} | {{e .Actor}} | {{e .Policy}} | {{e .Reason}} |
{{end}}
## Incidents

| Incident | Kinds | Severity | Detections | Started | Time to detect | Time to respond |
| --- | --- | --- | --- | --- | --- | --- |
{{range .Incidents}}| {{e .ID}} | {{e (join .Kinds ", ")}} | {{e .Severity}} | {{.Detections}} | {{ts .Started}} | {{secs .TimeToDetectSeconds}} | {{ttr .TimeToRespondSeconds}} |
{{end}}
## Detections

| Detected | Kind | Severity | Source | Destination | Time to detect |
| --- | --- | --- | --- | --- | --- |
{{range .Detections}}| {{ts .DetectedAt}} | {{e .Kind}} | {{e .Severity}} | {{e .Source}} | {{e .Destination}} | {{secs .TimeToDetectSeconds}} |
{{end}}
## Actions

| At | Action | Mode | State | Actor | Target | Reason |
| --- | --- | --- | --- | --- | --- | --- |
{{range .Actions}}| {{ts .At}} | {{e .Kind}} | {{e .Mode}} | {{e .State}} | {{e .Actor}} | {{e .Target}} | {{e .Reason}} |
{{end}}`

const htmlText = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>
body{font-family:sans-serif;margin:2em;color:#111}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}
th,td{border:1px solid #bbb;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#eee}.pass{color:#060;font-weight:bold}.gap{color:#a00;font-weight:bold}
</style></head><body>
<h1>{{.Title}}</h1>
<p>Period: {{ts .From}} to {{ts .To}} (UTC). Generated {{ts .GeneratedAt}}.
Controls: <strong>{{.Passed}} pass, {{.Gapped}} gap</strong>.{{if not .ClusterRead}} The cluster's policies were not read: modes and coverage are unknown.{{end}}</p>
<h2>Controls</h2>
<table><tr><th>Framework</th><th>Control</th><th>Requirement (paraphrase)</th><th>Verdict</th><th>Why</th><th>Evidence</th><th>Source</th></tr>
{{range .Controls}}<tr><td>{{.Framework}}</td><td>{{.ID}}</td><td>{{.Requirement}}</td><td class="{{.Verdict}}">{{upper .Verdict}}</td><td>{{.Why}}</td><td>{{range .Evidence}}<div>{{.}}</div>{{end}}</td><td>{{.Source}}</td></tr>
{{end}}</table>
<h2>mTLS coverage</h2>
<p>{{.Coverage.Requests}} requests: {{pct .Coverage.MTLSShare}} mTLS, {{pct .Coverage.PlaintextShare}} plaintext, {{pct .Coverage.UnknownShare}} unknown (no TLS evidence).</p>
<table><tr><th>Day</th><th>Requests</th><th>mTLS</th><th>Plaintext</th><th>Unknown</th></tr>
{{range .Trend}}<tr><td>{{.Day}}</td><td>{{.Requests}}</td><td>{{pct .MTLSShare}}</td><td>{{pct .PlaintextShare}}</td><td>{{pct .UnknownShare}}</td></tr>
{{end}}</table>
<h2>Plaintext flows</h2>
<table><tr><th>Source</th><th>Destination</th><th>Port</th><th>Plaintext requests</th><th>First seen</th><th>Last seen</th><th>Sample request ids</th></tr>
{{range .PlaintextEdges}}<tr><td>{{party .Source}}</td><td>{{party .Destination}}</td><td>{{.Port}}</td><td>{{.Plaintext}}</td><td>{{tsp .PlaintextFirstSeen}}</td><td>{{tsp .PlaintextLastSeen}}</td><td>{{join .SampleRequestIDs ", "}}</td></tr>
{{end}}</table>
<h2>Identities</h2>
<table><tr><th>Workload</th><th>Identity</th><th>Principals</th></tr>
{{range .Identities}}<tr><td>{{.Namespace}}/{{.Workload}}</td><td>{{.Identity}}</td><td>{{join .Principals ", "}}</td></tr>
{{end}}</table>
<p>No mesh identity: {{range $i, $p := .NoIdentity}}{{if $i}}, {{end}}{{party $p}}{{else}}none{{end}}.</p>
<h2>Policies in force</h2>
<table><tr><th>Kind</th><th>Namespace</th><th>Name</th><th>Setting</th><th>Scope</th></tr>
{{range .Policies}}<tr><td>{{.Kind}}</td><td>{{.Namespace}}</td><td>{{.Name}}</td><td>{{.Setting}}</td><td>{{.Scope}}</td></tr>
{{end}}</table>
<p>Workloads no ALLOW policy covers: {{range $i, $p := .Uncovered}}{{if $i}}, {{end}}{{party $p}}{{else}}none{{end}}.</p>
<p>Workloads not under STRICT mTLS: {{range $i, $p := .NotStrict}}{{if $i}}, {{end}}{{party $p}}{{else}}none{{end}}.</p>
<h3>Changes to policies</h3>
<table><tr><th>At</th><th>Action</th><th>State</th><th>Actor</th><th>Policy</th><th>Reason</th></tr>
{{range .PolicyChanges}}<tr><td>{{ts .At}}</td><td>{{.Kind}}</td><td>{{.State}}</td><td>{{.Actor}}</td><td>{{.Policy}}</td><td>{{.Reason}}</td></tr>
{{end}}</table>
<h2>Incidents</h2>
<table><tr><th>Incident</th><th>Kinds</th><th>Severity</th><th>Detections</th><th>Started</th><th>Time to detect</th><th>Time to respond</th></tr>
{{range .Incidents}}<tr><td>{{.ID}}</td><td>{{join .Kinds ", "}}</td><td>{{.Severity}}</td><td>{{.Detections}}</td><td>{{ts .Started}}</td><td>{{secs .TimeToDetectSeconds}}</td><td>{{ttr .TimeToRespondSeconds}}</td></tr>
{{end}}</table>
<h2>Detections</h2>
<table><tr><th>Detected</th><th>Kind</th><th>Severity</th><th>Source</th><th>Destination</th><th>Time to detect</th></tr>
{{range .Detections}}<tr><td>{{ts .DetectedAt}}</td><td>{{.Kind}}</td><td>{{.Severity}}</td><td>{{.Source}}</td><td>{{.Destination}}</td><td>{{secs .TimeToDetectSeconds}}</td></tr>
{{end}}</table>
<h2>Actions</h2>
<table><tr><th>At</th><th>Action</th><th>Mode</th><th>State</th><th>Actor</th><th>Target</th><th>Reason</th></tr>
{{range .Actions}}<tr><td>{{ts .At}}</td><td>{{.Kind}}</td><td>{{.Mode}}</td><td>{{.State}}</td><td>{{.Actor}}</td><td>{{.Target}}</td><td>{{.Reason}}</td></tr>
{{end}}</table>
</body></html>
`

// ParseTime reads a period bound as the CLI and the API take it: an RFC
// 3339 time, or a date (midnight UTC).
func ParseTime(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time (2026-01-31T00:00:00Z) or a date (2026-01-31)", v)
}
