package policy

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/meshguard/meshguard/respond"
	"github.com/meshguard/meshguard/storage"
)

// Options shape a suggestion.
type Options struct {
	// From and To bound the soak period learned from.
	From, To time.Time
	// LearningPeriod is detect.learning_period: a caller whose edge is
	// younger than this at To is still being learned, and not admitted.
	LearningPeriod time.Duration
	// Margin widens each detection's window on both sides (detect.hold:
	// an attack pausing that long is still the same attack).
	Margin time.Duration
	// A method, path or port set larger than these is not constrained
	// (the rule admits any): it is not a stable set yet.
	MaxMethods, MaxPaths, MaxPorts int
}

// DefaultOptions are the limits `policies suggest` uses.
func DefaultOptions(from, to time.Time) Options {
	return Options{From: from, To: to, LearningPeriod: time.Hour, Margin: 5 * time.Minute,
		MaxMethods: 6, MaxPaths: 16, MaxPorts: 4}
}

// Evidence is what a suggestion is learned from (storage's suggest
// queries).
type Evidence struct {
	Traffic    []storage.CallerTraffic
	FirstSeen  []storage.EdgeFirstSeen
	Detections []storage.DetectionRow
}

// Why a caller is not admitted.
const (
	ExcludedDetected   = "detected"   // all its traffic here was part of a detection
	ExcludedLearning   = "learning"   // its edge is younger than detect.learning_period
	ExcludedUnattested = "unattested" // no mTLS-attested principal to admit it by
)

// Suggestion is one destination workload's ALLOW policy.
type Suggestion struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Workload  string            `json:"workload"`
	Selector  map[string]string `json:"selector,omitempty"`
	Rules     []Rule            `json:"rules"`
	// NotAdmitted are the callers the policy would deny, and why.
	NotAdmitted []Caller `json:"not_admitted,omitempty"`
	// Requests is every request the destination got in the period (one
	// reporter's count); BlastRequests those the suggested rules would
	// have denied, from BlastCallers callers.
	Requests      uint64    `json:"requests"`
	BlastRequests uint64    `json:"blast_requests"`
	BlastCallers  int       `json:"blast_callers"`
	From          time.Time `json:"from"`
	To            time.Time `json:"to"`
	// Skipped, when set, says why no policy is written for the workload.
	Skipped string `json:"skipped,omitempty"`
}

// Rule admits one principal, to the operations it used when they are a
// stable set.
type Rule struct {
	Principal string `json:"principal"`
	// Operations are one per method (or one for all), each with its
	// paths and ports; nil fields admit any.
	Operations []Operation `json:"operations,omitempty"`
	// Open says which dimensions are left unconstrained, and why.
	Open       []string  `json:"open,omitempty"`
	Requests   uint64    `json:"requests"`
	FirstSeen  time.Time `json:"first_seen"`
	LastSeen   time.Time `json:"last_seen"`
	Confidence float64   `json:"confidence"`
}

// Operation is Istio's rule.to.operation, the subset meshguard writes.
type Operation struct {
	Methods []string `json:"methods,omitempty"`
	Paths   []string `json:"paths,omitempty"`
	Ports   []string `json:"ports,omitempty"`
}

// Caller is a caller not admitted.
type Caller struct {
	Caller     string    `json:"caller"`
	Reason     string    `json:"reason"`
	Requests   uint64    `json:"requests"`
	FirstSeen  time.Time `json:"first_seen"`
	LastSeen   time.Time `json:"last_seen"`
	Detections []string  `json:"detections,omitempty"`
}

// DetectedSpans turns detections into the traffic spans to set apart,
// each widened by margin. Sourceless detections (a destination outage)
// are about no caller and set nothing apart.
func DetectedSpans(ds []storage.DetectionRow, margin time.Duration) []storage.DetectedTraffic {
	var out []storage.DetectedTraffic
	for _, d := range ds {
		if d.SourcePrincipal == "" && d.SourceWorkload == "" {
			continue
		}
		out = append(out, storage.DetectedTraffic{
			SourcePrincipal: d.SourcePrincipal, SourceNamespace: d.SourceNamespace, SourceWorkload: d.SourceWorkload,
			DestinationNamespace: d.DestinationNamespace, DestinationWorkload: d.DestinationWorkload,
			From: d.WindowStart.Add(-margin), To: d.WindowEnd.Add(margin),
		})
	}
	return out
}

type dstKey struct{ ns, wl string }

// Suggest learns one ALLOW policy per destination workload in ev.
// Suggestions come sorted by namespace and workload; Selector is left for
// the caller to resolve (Resolve).
func Suggest(ev Evidence, o Options) []Suggestion {
	byDst := map[dstKey][]storage.CallerTraffic{}
	for _, t := range ev.Traffic {
		if t.DestinationWorkload == "" || t.DestinationNamespace == "" {
			continue // nothing to select: an IP or an unknown destination
		}
		k := dstKey{t.DestinationNamespace, t.DestinationWorkload}
		byDst[k] = append(byDst[k], t)
	}
	firstSeen := map[dstKey]map[string]time.Time{}
	for _, e := range ev.FirstSeen {
		if e.SourcePrincipal == "" {
			continue
		}
		k := dstKey{e.DestinationNamespace, e.DestinationWorkload}
		m := firstSeen[k]
		if m == nil {
			m = map[string]time.Time{}
			firstSeen[k] = m
		}
		if t, ok := m[e.SourcePrincipal]; !ok || e.FirstSeen.Before(t) {
			m[e.SourcePrincipal] = e.FirstSeen
		}
	}
	out := make([]Suggestion, 0, len(byDst))
	valid := principalCheck{}
	for k, rows := range byDst {
		out = append(out, suggestOne(k, oneReporter(rows), firstSeen[k], ev.Detections, o, valid))
	}
	slices.SortFunc(out, func(a, b Suggestion) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Workload, b.Workload))
	})
	return out
}

// oneReporter keeps the destination proxy's records when there are any:
// it is the side that enforces the policy and the one that saw the
// caller's certificate; counting both sides would count requests twice.
func oneReporter(rows []storage.CallerTraffic) []storage.CallerTraffic {
	var dst []storage.CallerTraffic
	for _, r := range rows {
		if r.Reporter == "destination" {
			dst = append(dst, r)
		}
	}
	if len(dst) > 0 {
		return dst
	}
	return rows
}

// callerName is a caller as people read it.
func callerName(t storage.CallerTraffic) string {
	switch {
	case t.Attested:
		return t.SourcePrincipal
	case t.SourceWorkload != "":
		return t.SourceNamespace + "/" + t.SourceWorkload + " (no attested principal)"
	case t.SourcePrincipal != "":
		return t.SourcePrincipal + " (claimed, not attested)"
	case t.SourceIP != "":
		return t.SourceIP + " (plaintext)"
	}
	return "unknown caller"
}

// principalCheck remembers which principals validate: a mesh has far
// fewer principals than edges.
type principalCheck map[string]bool

func (c principalCheck) valid(p string) bool {
	v, ok := c[p]
	if !ok {
		v = validPrincipal(p)
		c[p] = v
	}
	return v
}

func suggestOne(k dstKey, rows []storage.CallerTraffic, firstSeen map[string]time.Time, ds []storage.DetectionRow, o Options, principals principalCheck) Suggestion {
	s := Suggestion{Name: Name(k.ns, k.wl), Namespace: k.ns, Workload: k.wl, From: o.From, To: o.To}
	byCaller := map[string][]storage.CallerTraffic{}
	for _, r := range rows {
		s.Requests += r.Requests
		name := callerName(r)
		byCaller[name] = append(byCaller[name], r)
	}
	learnedBy := o.To.Add(-o.LearningPeriod)
	for name, rs := range byCaller {
		total := sumRows(rs)
		if !rs[0].Attested || !principals.valid(rs[0].SourcePrincipal) {
			s.NotAdmitted = append(s.NotAdmitted, Caller{Caller: name, Reason: ExcludedUnattested,
				Requests: total.Requests, FirstSeen: total.FirstSeen, LastSeen: total.LastSeen})
			continue
		}
		clean := slices.DeleteFunc(slices.Clone(rs), func(r storage.CallerTraffic) bool { return r.Detected })
		if len(clean) == 0 {
			s.NotAdmitted = append(s.NotAdmitted, Caller{Caller: name, Reason: ExcludedDetected,
				Requests: total.Requests, FirstSeen: total.FirstSeen, LastSeen: total.LastSeen,
				Detections: detectionsOf(ds, rs[0], k)})
			continue
		}
		first, ok := firstSeen[rs[0].SourcePrincipal]
		if !ok || first.After(total.FirstSeen) {
			first = total.FirstSeen
		}
		if first.After(learnedBy) {
			s.NotAdmitted = append(s.NotAdmitted, Caller{Caller: name, Reason: ExcludedLearning,
				Requests: total.Requests, FirstSeen: first, LastSeen: total.LastSeen})
			continue
		}
		s.Rules = append(s.Rules, ruleFor(rs[0].SourcePrincipal, clean, o))
	}
	slices.SortFunc(s.Rules, func(a, b Rule) int { return cmp.Compare(a.Principal, b.Principal) })
	slices.SortFunc(s.NotAdmitted, func(a, b Caller) int {
		return cmp.Or(cmp.Compare(b.Requests, a.Requests), cmp.Compare(a.Caller, b.Caller))
	})
	s.BlastRequests, s.BlastCallers = blast(s.Rules, byCaller)
	if len(s.Rules) == 0 {
		s.Skipped = "no caller could be admitted: an ALLOW policy without rules would deny every request"
	}
	return s
}

func sumRows(rs []storage.CallerTraffic) storage.CallerTraffic {
	var t storage.CallerTraffic
	for i, r := range rs {
		t.Requests += r.Requests
		if i == 0 || r.FirstSeen.Before(t.FirstSeen) {
			t.FirstSeen = r.FirstSeen
		}
		if r.LastSeen.After(t.LastSeen) {
			t.LastSeen = r.LastSeen
		}
	}
	return t
}

// detectionsOf names the detections about the caller of r (to k).
func detectionsOf(ds []storage.DetectionRow, r storage.CallerTraffic, k dstKey) []string {
	var ids []string
	for _, d := range ds {
		bySource := d.SourcePrincipal != "" && d.SourcePrincipal == r.SourcePrincipal ||
			d.SourceWorkload != "" && d.SourceNamespace == r.SourceNamespace && d.SourceWorkload == r.SourceWorkload
		toDst := d.DestinationWorkload == "" || d.DestinationNamespace == k.ns && d.DestinationWorkload == k.wl
		if bySource && toDst && !slices.Contains(ids, d.DetectionID) {
			ids = append(ids, d.DetectionID)
		}
	}
	return ids
}

// ruleFor admits principal to what its clean traffic did, constraining
// each dimension only when its set is small and was complete before the
// last learning period (no value newer than that).
func ruleFor(principal string, rows []storage.CallerTraffic, o Options) Rule {
	t := sumRows(rows)
	r := Rule{Principal: principal, Requests: t.Requests, FirstSeen: t.FirstSeen, LastSeen: t.LastSeen}
	settled := o.To.Add(-o.LearningPeriod)
	type seen struct {
		first time.Time
		paths map[string]time.Time
	}
	methods := map[string]*seen{}
	ports := map[uint16]time.Time{}
	httpOnly := true
	for _, row := range rows {
		p := istioPath(row.PathTemplate)
		if row.Method != "" && !validMethod(row.Method) || p != "" && !validPath(strings.TrimSuffix(p, "*")) {
			continue // telemetry no policy may carry: denied, and counted in the blast radius
		}
		if row.Method == "" {
			httpOnly = false // TCP, or no method logged: HTTP fields would never match
		}
		m := methods[row.Method]
		if m == nil {
			m = &seen{first: row.FirstSeen, paths: map[string]time.Time{}}
			methods[row.Method] = m
		}
		m.first = minTime(m.first, row.FirstSeen)
		if f, ok := m.paths[p]; !ok || row.FirstSeen.Before(f) {
			m.paths[p] = row.FirstSeen
		}
		if f, ok := ports[row.Port]; !ok || row.FirstSeen.Before(f) {
			ports[row.Port] = row.FirstSeen
		}
	}
	var portList []string
	switch {
	case hasKey(ports, 0) || len(ports) == 0:
		r.Open = append(r.Open, "ports: a destination port was not logged")
	case len(ports) > o.MaxPorts:
		r.Open = append(r.Open, fmt.Sprintf("ports: %d distinct, more than %d", len(ports), o.MaxPorts))
	case newest(ports).After(settled):
		r.Open = append(r.Open, "ports: a port first seen within the last learning period")
	default:
		for p := range ports {
			portList = append(portList, strconv.Itoa(int(p)))
		}
		slices.Sort(portList)
	}
	methodsOpen := ""
	switch {
	case len(methods) == 0:
		methodsOpen = "methods and paths: no request with a method and path a policy can carry"
	case !httpOnly:
		methodsOpen = "methods and paths: TCP traffic, or no method logged"
	case len(methods) > o.MaxMethods:
		methodsOpen = fmt.Sprintf("methods: %d distinct, more than %d", len(methods), o.MaxMethods)
	default:
		for _, m := range methods {
			if m.first.After(settled) {
				methodsOpen = "methods: a method first seen within the last learning period"
			}
		}
	}
	if methodsOpen != "" {
		r.Open = append(r.Open, methodsOpen)
		if portList != nil {
			r.Operations = []Operation{{Ports: portList}}
		}
	} else {
		for _, name := range sortedKeys(methods) {
			op := Operation{Methods: []string{name}, Ports: portList}
			m := methods[name]
			_, unknown := m.paths[""]
			switch {
			case unknown:
				r.Open = append(r.Open, "paths of "+name+": a path was not logged")
			case len(m.paths) > o.MaxPaths:
				r.Open = append(r.Open, fmt.Sprintf("paths of %s: %d distinct, more than %d", name, len(m.paths), o.MaxPaths))
			case newest(m.paths).After(settled):
				r.Open = append(r.Open, "paths of "+name+": a path first seen within the last learning period")
			default:
				op.Paths = sortedKeys(m.paths)
			}
			r.Operations = append(r.Operations, op)
		}
	}
	r.Confidence = confidence(r, o)
	return r
}

// confidence grows with the evidence (requests, saturating past a few
// hundred) and with how much of the period the caller spans: a caller
// seen once an hour ago is admitted with less confidence than one seen
// all week.
func confidence(r Rule, o Options) float64 {
	volume := 1 - math.Exp(-float64(r.Requests)/100)
	period := o.To.Sub(o.From)
	span := 1.0
	if period > 0 {
		span = min(1, float64(r.LastSeen.Sub(r.FirstSeen))/float64(period/2))
	}
	return math.Round(volume*(0.5+0.5*span)*100) / 100
}

// istioPath turns a path template into what an AuthorizationPolicy
// matches: the template up to its first placeholder as a prefix
// ("/users/{id}/orders" -> "/users/*"), exact when it has none. Istio's
// own path templates ({*}, {**}) need Istio 1.22 or later; a prefix works
// on every version and admits no path outside the learned segment.
func istioPath(tpl string) string {
	if tpl == "" {
		return ""
	}
	if i := strings.Index(tpl, "{"); i >= 0 {
		return tpl[:i] + "*"
	}
	return tpl
}

// admits reports whether rule r lets a request of row through.
func (r Rule) admits(row storage.CallerTraffic) bool {
	if !row.Attested || row.SourcePrincipal != r.Principal {
		return false
	}
	if len(r.Operations) == 0 {
		return true
	}
	port := strconv.Itoa(int(row.Port))
	for _, op := range r.Operations {
		if op.Methods != nil && !slices.Contains(op.Methods, row.Method) {
			continue
		}
		if op.Ports != nil && !slices.Contains(op.Ports, port) {
			continue
		}
		if op.Paths != nil && !slices.ContainsFunc(op.Paths, func(p string) bool { return pathMatches(p, row.PathTemplate) }) {
			continue
		}
		return true
	}
	return false
}

// pathMatches is Istio's exact-or-prefix match of p against a template
// (whose placeholders stand for any segment, so a prefix ending before
// the first one matches every path of it).
func pathMatches(p, tpl string) bool {
	if prefix, ok := strings.CutSuffix(p, "*"); ok {
		return strings.HasPrefix(tpl, prefix)
	}
	return p == tpl
}

// blast counts the requests in byCaller that no rule admits, and their
// callers. A rule admits one principal, so each row meets only its
// principal's rule.
func blast(rules []Rule, byCaller map[string][]storage.CallerTraffic) (uint64, int) {
	byPrincipal := make(map[string]*Rule, len(rules))
	for i := range rules {
		byPrincipal[rules[i].Principal] = &rules[i]
	}
	var requests uint64
	callers := 0
	for _, rs := range byCaller {
		var denied uint64
		for _, row := range rs {
			if r := byPrincipal[row.SourcePrincipal]; r == nil || !r.admits(row) {
				denied += row.Requests
			}
		}
		if denied > 0 {
			requests += denied
			callers++
		}
	}
	return requests, callers
}

// Name is the policy name of workload ns/wl: deterministic, so a new
// suggestion replaces the last one, DNS-1123 and at most 63 characters.
func Name(ns, wl string) string {
	sum := sha256.Sum256([]byte(ns + "/" + wl))
	name := "mg-allow-"
	if slug := respond.Slug(wl, 40); slug != "" {
		name += slug + "-"
	}
	return name + hex.EncodeToString(sum[:])[:10]
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func newest[K comparable](m map[K]time.Time) time.Time {
	var t time.Time
	for _, v := range m {
		if v.After(t) {
			t = v
		}
	}
	return t
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func hasKey[K comparable, V any](m map[K]V, k K) bool {
	_, ok := m[k]
	return ok
}
