package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/meshguard/meshguard/storage"
)

// The dashboard's service graph (GET /api/v1/graph): one node per
// workload, Service hosts folded into the workload they reached, each
// edge once (the side that saw more), with its rate, error rate and
// transport security, and the detections about it.

// DashboardStore is what the dashboard's graph and audit views read,
// besides Store; *storage.ClickHouse and *storage.Memory are ones. A
// Store that is not one answers those endpoints with 501.
type DashboardStore interface {
	GraphEdges(ctx context.Context, from, to time.Time) ([]storage.GraphEdge, error)
	ServiceWorkloads(ctx context.Context, from, to time.Time) ([]storage.ServiceWorkload, error)
	AuditSummary(ctx context.Context, f storage.AuditFilter) ([]storage.AuditGroup, error)
}

// Node kinds: a workload; a Service host no single workload stands for;
// a caller known only by its principal or its IP.
const (
	nodeWorkload  = "workload"
	nodeService   = "service"
	nodePrincipal = "principal"
	nodeIP        = "ip"
	nodeUnknown   = "unknown"
)

// TLS states of an edge: every request with evidence was mTLS; some were
// plaintext; no request carried evidence.
const (
	tlsMutual    = "mtls"
	tlsPlaintext = "plaintext"
	tlsUnknown   = "unknown"
)

type graphNodeJSON struct {
	ID        string `json:"id"`
	Label     string `json:"label"`
	Namespace string `json:"namespace"`
	Kind      string `json:"kind"`
	// Services are the hosts folded into this workload.
	Services []string `json:"services,omitempty"`
	// Anomalous: a detection in the span names this node as its source or
	// destination; Incidents are theirs.
	Anomalous bool     `json:"anomalous"`
	Incidents []string `json:"incidents,omitempty"`
}

type graphEdgeJSON struct {
	ID          string    `json:"id"`
	Source      string    `json:"source"`
	Destination string    `json:"destination"`
	Reporter    string    `json:"reporter"`
	Requests    uint64    `json:"requests"`
	RPS         float64   `json:"rps"`
	Errors5xx   uint64    `json:"errors_5xx"`
	Errors4xx   uint64    `json:"errors_4xx"`
	ErrorRate   float64   `json:"error_rate"`
	TLS         string    `json:"tls"`
	MTLS        uint64    `json:"mtls_requests"`
	Plaintext   uint64    `json:"plaintext_requests"`
	LastSeen    time.Time `json:"last_seen"`
	// Anomalous: a detection in the span is about this edge; Fanout when
	// only detections naming no destination (a scan's) are.
	Anomalous  bool     `json:"anomalous"`
	Fanout     bool     `json:"fanout,omitempty"`
	Detections []string `json:"detections,omitempty"`
	Incidents  []string `json:"incidents,omitempty"`
	Kinds      []string `json:"kinds,omitempty"`

	src, dst party
}

type graphJSON struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// DataFrom is the oldest flow in the span: rates are over DataFrom
	// to To, so that a store holding less than the span (a new install,
	// retention) does not dilute them.
	DataFrom   time.Time       `json:"data_from"`
	Namespaces []string        `json:"namespaces"`
	Kinds      []string        `json:"kinds"`
	Nodes      []graphNodeJSON `json:"nodes"`
	Edges      []graphEdgeJSON `json:"edges"`
}

// party is one end of a stored edge, as the graph names it.
type party struct {
	workload, namespace, principal, ip, service string
}

// nodeOf names the node a party is: its workload, else (a destination)
// the workload its Service host reached, else the host, its principal,
// its IP.
func nodeOf(p party) graphNodeJSON {
	ns := p.namespace
	switch {
	case p.workload != "":
		if ns == "" {
			ns = principalNamespace(p.principal)
		}
		return graphNodeJSON{ID: "wl:" + ns + "/" + p.workload, Label: p.workload, Namespace: ns, Kind: nodeWorkload}
	case p.service != "":
		return graphNodeJSON{ID: "svc:" + p.service, Label: p.service, Namespace: hostNamespace(p.service), Kind: nodeService}
	case p.principal != "":
		sa := p.principal
		if i := strings.LastIndex(sa, "/sa/"); i >= 0 {
			sa = "sa/" + sa[i+4:]
		}
		return graphNodeJSON{ID: "sa:" + p.principal, Label: sa, Namespace: principalNamespace(p.principal), Kind: nodePrincipal}
	case p.ip != "":
		return graphNodeJSON{ID: "ip:" + p.ip, Label: p.ip, Kind: nodeIP}
	}
	return graphNodeJSON{ID: "unknown", Label: "unknown", Kind: nodeUnknown}
}

// principalNamespace is the namespace of a SPIFFE-form principal
// (trust-domain/ns/NS/sa/SA), "" when it has none.
func principalNamespace(p string) string {
	_, rest, ok := strings.Cut(p, "/ns/")
	if !ok {
		return ""
	}
	ns, _, _ := strings.Cut(rest, "/")
	return ns
}

// hostNamespace is NS of a Kubernetes Service host name.svc.NS... ""
// for other hosts.
func hostNamespace(h string) string {
	parts := strings.Split(h, ".")
	if len(parts) >= 3 && parts[2] == "svc" {
		return parts[1]
	}
	return ""
}

// serviceFold says which workload each Service host stands for: the one
// workload the flows saw behind it. A host seen reaching several (a
// rollout) stands for none: its requests are counted on the destination
// side, which names the workload, or stay on the host's own node.
type serviceFold map[string]party

func newServiceFold(svcs []storage.ServiceWorkload) serviceFold {
	f := serviceFold{}
	ambiguous := map[string]bool{}
	for _, s := range svcs {
		if p, ok := f[s.Service]; ok && (p.workload != s.Workload || p.namespace != s.Namespace) {
			ambiguous[s.Service] = true
		}
		f[s.Service] = party{workload: s.Workload, namespace: s.Namespace}
	}
	for h := range ambiguous {
		delete(f, h)
	}
	return f
}

// destination is the graph's end of a stored edge's destination.
func (f serviceFold) destination(e *storage.GraphEdge) party {
	if e.DestinationWorkload != "" {
		return party{workload: e.DestinationWorkload, namespace: e.DestinationNamespace}
	}
	if p, ok := f[e.DestinationService]; ok {
		return p
	}
	return party{service: e.DestinationService, namespace: e.DestinationNamespace}
}

func source(e *storage.GraphEdge) party {
	return party{workload: e.SourceWorkload, namespace: e.SourceNamespace, principal: e.SourcePrincipal, ip: e.SourceIP}
}

// sideTotals are one reporter's totals of a folded edge.
type sideTotals struct {
	requests, e5, e4, mtls, plain, unknown uint64
	last                                   time.Time
}

func (t *sideTotals) add(e *storage.GraphEdge) {
	t.requests += e.Requests
	t.e5 += e.Errors5xx
	t.e4 += e.Errors4xx
	t.mtls += e.MTLS
	t.plain += e.Plaintext
	t.unknown += e.UnknownTLS
	if e.LastSeen.After(t.last) {
		t.last = e.LastSeen
	}
}

// foldedEdge is one graph edge before it is written out.
type foldedEdge struct {
	src, dst party
	sides    map[string]*sideTotals
}

// buildGraph folds the stored edges into the graph over [from, to):
// hosts into workloads, both reporters into the side that saw more (the
// destination on a tie), transport security from that side unless only
// the other carried evidence.
func buildGraph(rows []storage.GraphEdge, svcs []storage.ServiceWorkload, from, to time.Time) graphJSON {
	fold := newServiceFold(svcs)
	// A host's node also goes when the caller's requests to it are
	// counted on the destination side: the same requests, seen there.
	seenAt := map[[2]string]bool{} // source node, host: reported with a workload
	for i := range rows {
		if e := &rows[i]; e.DestinationWorkload != "" && e.DestinationService != "" {
			seenAt[[2]string{nodeOf(source(e)).ID, e.DestinationService}] = true
		}
	}
	nodes := map[string]*graphNodeJSON{}
	edges := map[[2]string]*foldedEdge{}
	var order [][2]string
	for i := range rows {
		e := &rows[i]
		src, dst := source(e), fold.destination(e)
		sn, dn := nodeOf(src), nodeOf(dst)
		if dn.Kind == nodeService && seenAt[[2]string{sn.ID, e.DestinationService}] {
			continue
		}
		for _, n := range []graphNodeJSON{sn, dn} {
			if nodes[n.ID] == nil {
				n := n
				nodes[n.ID] = &n
			}
		}
		if e.DestinationWorkload == "" && e.DestinationService != "" && dn.Kind == nodeWorkload {
			n := nodes[dn.ID]
			if !slices.Contains(n.Services, e.DestinationService) {
				n.Services = append(n.Services, e.DestinationService)
			}
		}
		k := [2]string{sn.ID, dn.ID}
		fe := edges[k]
		if fe == nil {
			fe = &foldedEdge{src: src, dst: dst, sides: map[string]*sideTotals{}}
			edges[k] = fe
			order = append(order, k)
		}
		side := fe.sides[e.Reporter]
		if side == nil {
			side = &sideTotals{}
			fe.sides[e.Reporter] = side
		}
		side.add(e)
	}
	dataFrom := to
	for i := range rows {
		if f := rows[i].FirstSeen; !f.IsZero() && f.Before(dataFrom) {
			dataFrom = f
		}
	}
	dataFrom = later(dataFrom, from)
	span := to.Sub(dataFrom).Seconds()
	g := graphJSON{From: from, To: to, DataFrom: dataFrom, Nodes: []graphNodeJSON{}, Edges: make([]graphEdgeJSON, 0, len(order))}
	for _, k := range order {
		g.Edges = append(g.Edges, edgeOut(k, edges[k], span))
	}
	sort.Slice(g.Edges, func(i, j int) bool {
		if a, b := g.Edges[i], g.Edges[j]; a.Requests != b.Requests {
			return a.Requests > b.Requests
		}
		return g.Edges[i].ID < g.Edges[j].ID
	})
	for _, n := range nodes {
		slices.Sort(n.Services)
		g.Nodes = append(g.Nodes, *n)
	}
	sort.Slice(g.Nodes, func(i, j int) bool { return g.Nodes[i].ID < g.Nodes[j].ID })
	return g
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// edgeOut writes one folded edge: the busier side's counts.
func edgeOut(k [2]string, fe *foldedEdge, span float64) graphEdgeJSON {
	var rep string
	var best *sideTotals
	for _, r := range []string{"destination", "source", ""} {
		if s := fe.sides[r]; s != nil && (best == nil || s.requests > best.requests) {
			rep, best = r, s
		}
	}
	if best == nil { // a reporter name outside the three: take any
		for r, s := range fe.sides {
			rep, best = r, s
		}
	}
	tls := *best
	if tls.mtls+tls.plain == 0 {
		for _, s := range fe.sides {
			if s.mtls+s.plain > 0 {
				tls = *s
			}
		}
	}
	out := graphEdgeJSON{
		ID: k[0] + " -> " + k[1], Source: k[0], Destination: k[1], Reporter: rep,
		Requests: best.requests, Errors5xx: best.e5, Errors4xx: best.e4, MTLS: tls.mtls, Plaintext: tls.plain, TLS: tlsUnknown,
		src: fe.src, dst: fe.dst,
	}
	for _, s := range fe.sides {
		if s.last.After(out.LastSeen) {
			out.LastSeen = s.last
		}
	}
	switch {
	case tls.plain > 0:
		out.TLS = tlsPlaintext
	case tls.mtls > 0:
		out.TLS = tlsMutual
	}
	if span > 0 {
		out.RPS = float64(best.requests) / span
	}
	if best.requests > 0 {
		out.ErrorRate = float64(best.e5) / float64(best.requests)
	}
	return out
}

// annotate marks the edges and nodes the detections (those whose window
// ends at or after from) are about, with their detections, incidents and
// kinds, and lists the kinds seen.
func annotate(g *graphJSON, dets []storage.DetectionRow, from time.Time) {
	at := map[string]int{}
	for i := range g.Nodes {
		at[g.Nodes[i].ID] = i
	}
	kinds := map[string]bool{}
	mark := func(id, incident string) {
		if i, ok := at[id]; ok {
			n := &g.Nodes[i]
			n.Anomalous = true
			if !slices.Contains(n.Incidents, incident) {
				n.Incidents = append(n.Incidents, incident)
			}
		}
	}
	for j := range dets {
		d := &dets[j]
		if d.WindowEnd.Before(from) {
			continue
		}
		incident := d.IncidentID
		if incident == "" {
			incident = d.DetectionID
		}
		kinds[d.Kind] = true
		if d.SourceWorkload != "" || d.SourcePrincipal != "" {
			mark(nodeOf(party{workload: d.SourceWorkload, namespace: d.SourceNamespace, principal: d.SourcePrincipal}).ID, incident)
		}
		if d.DestinationWorkload != "" {
			mark(nodeOf(party{workload: d.DestinationWorkload, namespace: d.DestinationNamespace}).ID, incident)
		}
		named := d.DestinationWorkload != ""
		listed := listedDestinations(d)
		for i := range g.Edges {
			e := &g.Edges[i]
			if !matches(d, &storage.EdgeSummary{SourceWorkload: e.src.workload, SourceNamespace: e.src.namespace,
				SourcePrincipal: e.src.principal, DestinationWorkload: e.dst.workload, DestinationNamespace: e.dst.namespace}) {
				continue
			}
			if !named && listed != nil && !listed[e.dst.namespace+"/"+e.dst.workload] {
				continue // a scan's fan-out: only the destinations it probed
			}
			e.Fanout = !named && (!e.Anomalous || e.Fanout)
			e.Anomalous = true
			e.Detections = append(e.Detections, d.DetectionID)
			if !slices.Contains(e.Incidents, incident) {
				e.Incidents = append(e.Incidents, incident)
			}
			if !slices.Contains(e.Kinds, d.Kind) {
				e.Kinds = append(e.Kinds, d.Kind)
			}
		}
	}
	g.Kinds = make([]string, 0, len(kinds))
	for k := range kinds {
		g.Kinds = append(g.Kinds, k)
	}
	slices.Sort(g.Kinds)
}

// listedDestinations are the destinations ("namespace/workload") a
// detection naming no destination lists in its evidence (a scan's
// probes), nil when it lists none.
func listedDestinations(d *storage.DetectionRow) map[string]bool {
	if d.DestinationWorkload != "" {
		return nil
	}
	var ev struct {
		Destinations []string `json:"destinations"`
	}
	if json.Unmarshal([]byte(d.Evidence), &ev) != nil || len(ev.Destinations) == 0 {
		return nil
	}
	out := make(map[string]bool, len(ev.Destinations))
	for _, x := range ev.Destinations {
		out[x] = true
	}
	return out
}

// filter keeps the edges with an end in one of namespaces (all when
// none) that, when kind is set, a detection of that kind is about, and
// the nodes they join. Namespaces lists every namespace before filtering,
// for the page's selector.
func filter(g *graphJSON, namespaces []string, kind string) {
	all := map[string]bool{}
	for _, n := range g.Nodes {
		all[n.Namespace] = true
	}
	g.Namespaces = make([]string, 0, len(all))
	for ns := range all {
		g.Namespaces = append(g.Namespaces, ns)
	}
	slices.Sort(g.Namespaces)
	if len(namespaces) == 0 && kind == "" {
		return
	}
	nsOf := map[string]string{}
	for _, n := range g.Nodes {
		nsOf[n.ID] = n.Namespace
	}
	keep := map[string]bool{}
	g.Edges = slices.DeleteFunc(g.Edges, func(e graphEdgeJSON) bool {
		if len(namespaces) > 0 && !slices.Contains(namespaces, nsOf[e.Source]) && !slices.Contains(namespaces, nsOf[e.Destination]) {
			return true
		}
		if kind != "" && !slices.Contains(e.Kinds, kind) {
			return true
		}
		keep[e.Source], keep[e.Destination] = true, true
		return false
	})
	g.Nodes = slices.DeleteFunc(g.Nodes, func(n graphNodeJSON) bool { return !keep[n.ID] })
}

// sinceParam reads ?since= (default 15m, at most maxSince).
func sinceParam(r *http.Request) (time.Duration, error) {
	since := 15 * time.Minute
	if v := r.URL.Query().Get("since"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute || d > maxSince {
			return 0, fmt.Errorf("since %q: want a duration from 1m to %v, e.g. 15m", v, maxSince)
		}
		since = d
	}
	return since, nil
}

// graphOver reads and builds the graph over [from, to), annotated with
// the recent detections.
func (s *Server) graphOver(ctx context.Context, ds DashboardStore, from, to time.Time) (graphJSON, []storage.DetectionRow, error) {
	rows, err := ds.GraphEdges(ctx, from, to)
	if err != nil {
		return graphJSON{}, nil, err
	}
	svcs, err := ds.ServiceWorkloads(ctx, from, to)
	if err != nil {
		return graphJSON{}, nil, err
	}
	dets, err := s.deps.Store.RecentDetections(ctx, 500)
	if err != nil {
		return graphJSON{}, nil, err
	}
	g := buildGraph(rows, svcs, from, to)
	annotate(&g, dets, from)
	return g, dets, nil
}

// dashboard returns the store's dashboard reads, or answers 501.
func (s *Server) dashboard(w http.ResponseWriter) (DashboardStore, bool) {
	ds, ok := s.deps.Store.(DashboardStore)
	if !ok {
		writeJSON(w, http.StatusNotImplemented, map[string]string{"error": "this store has no graph or audit queries"})
	}
	return ds, ok
}

// graphSpan is the store and the span [now-since, now) of a graph
// request; it answers the request itself when they are not to be had.
func (s *Server) graphSpan(w http.ResponseWriter, r *http.Request) (DashboardStore, time.Time, time.Time, bool) {
	ds, ok := s.dashboard(w)
	if !ok {
		return nil, time.Time{}, time.Time{}, false
	}
	since, err := sinceParam(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return nil, time.Time{}, time.Time{}, false
	}
	to := s.now().UTC().Truncate(time.Second)
	return ds, to.Add(-since), to, true
}

// graph serves GET /api/v1/graph?since=15m&namespace=a,b&kind=scan.
func (s *Server) graph(w http.ResponseWriter, r *http.Request) {
	ds, from, to, ok := s.graphSpan(w, r)
	if !ok {
		return
	}
	g, _, err := s.graphOver(r.Context(), ds, from, to)
	if err != nil {
		s.storeError(w, "graph", err)
		return
	}
	var namespaces []string
	if v := r.URL.Query().Get("namespace"); v != "" {
		namespaces = strings.Split(v, ",")
	}
	filter(&g, namespaces, r.URL.Query().Get("kind"))
	writeJSON(w, http.StatusOK, g)
}

// baselineSpan is how far before the span the edge view's baseline
// reaches: four spans, at least 6 hours, at most a day.
func baselineSpan(span time.Duration) time.Duration {
	return min(max(4*span, 6*time.Hour), maxSince)
}

type edgeViewJSON struct {
	Edge         *graphEdgeJSON  `json:"edge"`
	Baseline     *graphEdgeJSON  `json:"baseline"`
	BaselineFrom time.Time       `json:"baseline_from"`
	BaselineTo   time.Time       `json:"baseline_to"`
	Detections   []detectionJSON `json:"detections"`
}

// graphEdge serves GET /api/v1/graph/edge?source=ID&destination=ID&since=15m:
// the edge now and over the baseline span before, and the detections
// about it (whose evidence holds the detector's expected and observed
// values).
func (s *Server) graphEdge(w http.ResponseWriter, r *http.Request) {
	ds, from, to, ok := s.graphSpan(w, r)
	if !ok {
		return
	}
	src, dst := r.URL.Query().Get("source"), r.URL.Query().Get("destination")
	if src == "" || dst == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "source and destination: the node ids of the edge, as /api/v1/graph names them"})
		return
	}
	now, dets, err := s.graphOver(r.Context(), ds, from, to)
	if err != nil {
		s.storeError(w, "graph", err)
		return
	}
	bfrom := from.Add(-baselineSpan(to.Sub(from)))
	before, _, err := s.graphOver(r.Context(), ds, bfrom, from)
	if err != nil {
		s.storeError(w, "graph", err)
		return
	}
	out := edgeViewJSON{Edge: findEdge(&now, src, dst), Baseline: findEdge(&before, src, dst), BaselineFrom: before.DataFrom, BaselineTo: from,
		Detections: []detectionJSON{}}
	if out.Edge == nil && out.Baseline == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no edge from " + src + " to " + dst + " in the span or its baseline"})
		return
	}
	if out.Edge != nil {
		for _, id := range out.Edge.Detections {
			for i := range dets {
				if dets[i].DetectionID == id {
					out.Detections = append(out.Detections, toDetectionJSON(&dets[i]))
				}
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func findEdge(g *graphJSON, src, dst string) *graphEdgeJSON {
	for i := range g.Edges {
		if g.Edges[i].Source == src && g.Edges[i].Destination == dst {
			return &g.Edges[i]
		}
	}
	return nil
}
