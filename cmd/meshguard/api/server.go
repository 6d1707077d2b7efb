// Package api is meshguard's HTTP server: health and readiness probes,
// Prometheus metrics, the JSON API (detections, actions, edges, and the
// operator's approve/revoke/extend), the dashboard page, and the Slack
// interactivity endpoint.
//
// Who may do what (issue 8): /healthz, /readyz, the page's static files
// (which carry no data) and /slack/interactions (Slack signs its requests)
// are open; everything else needs `Authorization: Bearer TOKEN` of a
// viewer, and the POST endpoints an operator's, plus a CSRF defence: the
// header X-Meshguard-CSRF: 1 and a same-origin request (Sec-Fetch-Site,
// else Origin against Host). Every operator request is written to the
// actions audit log with the identity; refused ones at most 20 a minute
// (all are counted). Before any of this, the Host header must be a name
// the server is known by (server.listen, server.public_hosts, an IP):
// the DNS rebinding defence. An approve never exceeds respond.mode
// without a named operator's audited override.
package api

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/rest"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/respond"
	"github.com/meshguard/meshguard/storage"
)

// Store is what the API reads. *storage.ClickHouse and *storage.Memory
// are Stores.
type Store interface {
	// RecentDetections returns the newest version of the limit most
	// recently detected detections, newest first.
	RecentDetections(ctx context.Context, limit int) ([]storage.DetectionRow, error)
	// RecentActions returns the limit newest audit rows, newest first.
	RecentActions(ctx context.Context, limit int) ([]storage.ActionRow, error)
	// EdgeSummary returns every edge with traffic since since, with its
	// totals, busiest first.
	EdgeSummary(ctx context.Context, since time.Time) ([]storage.EdgeSummary, error)
}

// Operator changes actions on behalf of a person; *respond.Responder is
// one. Each method audits what it did itself; the API audits the request
// too (kind "api").
type Operator interface {
	Approve(ctx context.Context, actionID, actor string) (models.Action, error)
	Revoke(ctx context.Context, actionID, actor string) (models.Action, error)
	Extend(ctx context.Context, actionID, actor string, by time.Duration) (models.Action, error)
	// List returns the actions in force (policies the backend holds).
	List(ctx context.Context) ([]models.Action, error)
}

// Deps are what the server works with. Only Store is required.
type Deps struct {
	Store Store
	// Operator, when nil (not a typed nil pointer), makes the operator
	// endpoints answer 503.
	Operator Operator
	// Ready reports whether the process can do its work (Kafka and
	// ClickHouse reachable, baselines loaded); nil means always.
	Ready func() error
	// Registry is served at /metrics; nil: 404.
	Registry *prometheus.Registry
	// Slack, when set, is mounted at /slack/interactions; it checks
	// Slack's signatures itself, so no bearer token is asked there.
	Slack http.Handler
	// ActionWriter audits operator requests, refused ones included; nil
	// writes no audit rows (and New says so in the log).
	ActionWriter storage.ActionWriter
	Log          *slog.Logger
	// Kube is the client config for server.auth.mode kubernetes.
	Kube *rest.Config
	// RespondMode is respond.mode, the ceiling of approvals: below
	// enforce, approve needs ?override=respond.mode from a named
	// operator. Empty: no ceiling (the caller enforces its own).
	RespondMode models.Mode
	// Posture serves GET /api/v1/posture; nil: 503.
	Posture PostureSource
	// Report serves GET /api/v1/report; nil: 503.
	Report ReportSource

	// Suggest answers GET /api/v1/policies/suggestions; nil: 503.
	Suggest SuggestFunc
}

// ShutdownTimeout bounds how long Run waits for requests in flight once
// its context ends.
const ShutdownTimeout = 10 * time.Second

// CSRFHeader must be on every state-changing request, with value "1". A
// page of another origin cannot set it without a CORS preflight, which
// this server never grants.
const CSRFHeader = "X-Meshguard-CSRF"

// Server is meshguard's HTTP server. Build it with New.
type Server struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	auth    authenticator
	handler http.Handler
	cop     *http.CrossOriginProtection
	m       *metrics
	now     func() time.Time
	hosts   *hostGuard
	// refusals bounds the audit rows of refused operator requests;
	// hostLogs the log lines of requests for a foreign Host.
	refusals, hostLogs refusalAudit
}

// New validates cfg and builds the server; it does not listen (Run does).
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Store == nil {
		return nil, errors.New("api: Deps.Store is required")
	}
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, deps: deps, log: log, cop: http.NewCrossOriginProtection(), now: time.Now, hosts: newHostGuard(cfg)}
	switch cfg.Auth.Mode {
	case AuthToken:
		entries, err := loadTokens(cfg.Auth.TokensFile)
		if err != nil {
			return nil, fmt.Errorf("server.auth.tokens_file: %w", err)
		}
		s.auth = &tokenAuth{entries: entries}
	case AuthKubernetes:
		ka, err := newKubeAuth(deps.Kube, cfg.Auth.Audiences)
		if err != nil {
			return nil, err
		}
		s.auth = ka
	case AuthNone:
		// Validate allows it on a loopback listener only.
		s.auth = noAuth{}
	}
	if deps.ActionWriter == nil {
		log.Warn("api: no ActionWriter; operator requests are not audited")
	}
	s.m = newMetrics()
	if deps.Registry != nil {
		if err := s.m.register(deps.Registry); err != nil {
			return nil, fmt.Errorf("api metrics: %w", err)
		}
	}
	s.handler = s.routes()
	return s, nil
}

// loopback reports whether a listen address binds a loopback interface
// only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Handler returns the server's handler, security headers included.
func (s *Server) Handler() http.Handler { return s.handler }

// Run listens on server.listen (HTTPS when server.tls is set) and serves
// until ctx ends, then shuts down, waiting at most ShutdownTimeout for
// requests in flight. It returns nil after a shutdown ctx asked for.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("server.listen %s: %w", s.cfg.Listen, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a listener the caller opened; it closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	scheme := "http"
	if s.cfg.TLS.Enabled() {
		scheme = "https"
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	errc := make(chan error, 1)
	go func() {
		if s.cfg.TLS.Enabled() {
			errc <- srv.ServeTLS(ln, s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	s.log.Info("http server listening", "url", scheme+"://"+ln.Addr().String(), "auth", s.cfg.Auth.Mode)
	select {
	case err := <-errc:
		return fmt.Errorf("http server on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		// Requests still running after the bound are cut.
		s.log.Warn("http server: requests cut at shutdown", "err", err)
		_ = srv.Close()
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("http server on %s: %w", ln.Addr(), serr)
	}
	s.log.Info("http server stopped")
	return nil
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { text(w, http.StatusOK, "ok\n") })
	mux.HandleFunc("GET /readyz", s.readyz)
	if s.deps.Registry != nil {
		mux.Handle("GET /metrics", s.viewer(promhttp.HandlerFor(s.deps.Registry, promhttp.HandlerOpts{})))
	}
	mux.Handle("GET /api/v1/whoami", s.viewer(http.HandlerFunc(s.whoami)))
	mux.Handle("GET /api/v1/detections", s.viewer(http.HandlerFunc(s.detections)))
	mux.Handle("GET /api/v1/incidents", s.viewer(http.HandlerFunc(s.incidents)))
	mux.Handle("GET /api/v1/actions", s.viewer(http.HandlerFunc(s.actions)))
	mux.Handle("GET /api/v1/actions/current", s.viewer(http.HandlerFunc(s.currentActions)))
	mux.Handle("GET /api/v1/edges", s.viewer(http.HandlerFunc(s.edges)))
	mux.Handle("GET /api/v1/posture", s.viewer(http.HandlerFunc(s.posture)))
	mux.Handle("GET /api/v1/report", s.viewer(http.HandlerFunc(s.report)))
	mux.Handle("GET /api/v1/policies/suggestions", s.viewer(http.HandlerFunc(s.suggestions)))
	mux.Handle("GET /api/v1/graph", s.viewer(http.HandlerFunc(s.graph)))
	mux.Handle("GET /api/v1/graph/edge", s.viewer(http.HandlerFunc(s.graphEdge)))
	mux.Handle("GET /api/v1/audit", s.viewer(http.HandlerFunc(s.auditLog)))
	mux.Handle("GET /api/v1/ingest", s.viewer(http.HandlerFunc(s.ingestLag)))
	mux.HandleFunc("POST /api/v1/actions/{id}/{verb}", s.operate)
	if s.deps.Slack != nil {
		mux.Handle("/slack/interactions", s.deps.Slack)
	}
	mux.HandleFunc("GET /{$}", s.static("index.html"))
	for _, f := range uiFiles {
		mux.HandleFunc("GET /ui/"+f, s.static(f))
	}
	return securityHeaders(s.guardHost(mux))
}

// contentSecurityPolicy: only this origin's own files; no inline script
// or style, no plugins, no framing, no form posts, fetches to self only.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// securityHeaders sets the headers every response carries.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		// Detections and tokens never sit in a cache; the page is small.
		h.Set("Cache-Control", "no-store")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.deps.Ready == nil {
		text(w, http.StatusOK, "ok\n")
		return
	}
	if err := s.deps.Ready(); err != nil {
		// The reason goes to the log, not to whoever can reach the port.
		s.log.Info("readyz: not ready", "err", err)
		text(w, http.StatusServiceUnavailable, "not ready\n")
		return
	}
	text(w, http.StatusOK, "ok\n")
}

type identityKey struct{}

// viewer lets through requests of a viewer (or operator); others get 401
// (no or bad credentials) or 403.
func (s *Server) viewer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, status, why := s.check(r, RoleViewer)
		if status != 0 {
			s.log.Info("api: request refused", "path", r.URL.Path, "actor", id.Name, "status", status, "why", why, "remote", r.RemoteAddr)
			s.refuse(w, status, why)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
	})
}

// check authenticates r and checks it has role need. It returns the
// identity ("anonymous" when unknown) and, when refused, the status and
// why.
func (s *Server) check(r *http.Request, need Role) (Identity, int, string) {
	token, ok := bearer(r)
	if _, none := s.auth.(noAuth); !ok && !none {
		s.m.refused.WithLabelValues("unauthenticated").Inc()
		return Identity{Name: anonymous}, http.StatusUnauthorized, "missing bearer token (Authorization: Bearer TOKEN)"
	}
	id, allowed, err := s.auth.authorize(r.Context(), token, need)
	switch {
	case errors.Is(err, errUnauthenticated):
		s.m.refused.WithLabelValues("unauthenticated").Inc()
		why := "invalid bearer token"
		if ka, ok := s.auth.(*kubeAuth); ok {
			why += ka.hint()
		}
		return Identity{Name: anonymous}, http.StatusUnauthorized, why
	case err != nil:
		s.log.Error("api: cannot check credentials", "err", err)
		return Identity{Name: anonymous}, http.StatusServiceUnavailable, "cannot check credentials now; try again"
	case !allowed:
		s.m.refused.WithLabelValues("forbidden").Inc()
		return id, http.StatusForbidden, id.Name + " is not a" + article(need) + " " + need.String()
	}
	return id, 0, ""
}

func article(r Role) string {
	if r == RoleOperator {
		return "n"
	}
	return ""
}

func (s *Server) refuse(w http.ResponseWriter, status int, why string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="meshguard"`)
	}
	writeJSON(w, status, map[string]string{"error": why})
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	id := r.Context().Value(identityKey{}).(Identity)
	token, _ := bearer(r)
	_, operator, err := s.auth.authorize(r.Context(), token, RoleOperator)
	writeJSON(w, http.StatusOK, map[string]any{
		"name": id.Name, "operator": err == nil && operator, "controller": s.deps.Operator != nil,
	})
}

// limitParam reads ?limit=, default def, at most storage.MaxRecent.
func limitParam(r *http.Request, def int) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > storage.MaxRecent {
		return 0, fmt.Errorf("limit %q: want a whole number from 1 to %d", v, storage.MaxRecent)
	}
	return n, nil
}

func (s *Server) detections(w http.ResponseWriter, r *http.Request) {
	limit, err := limitParam(r, 100)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	rows, err := s.deps.Store.RecentDetections(r.Context(), limit)
	if err != nil {
		s.storeError(w, "detections", err)
		return
	}
	out := make([]detectionJSON, len(rows))
	for i := range rows {
		out[i] = toDetectionJSON(&rows[i])
	}
	writeJSON(w, http.StatusOK, map[string]any{"detections": out})
}

// incidents serves GET /api/v1/incidents: the recent detections (limit,
// default 500) grouped by incident, newest first.
func (s *Server) incidents(w http.ResponseWriter, r *http.Request) {
	limit, err := limitParam(r, 500)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	rows, err := s.deps.Store.RecentDetections(r.Context(), limit)
	if err != nil {
		s.storeError(w, "incidents", err)
		return
	}
	ds := make([]detectionJSON, len(rows))
	for i := range rows {
		ds[i] = toDetectionJSON(&rows[i])
	}
	writeJSON(w, http.StatusOK, map[string]any{"incidents": incidentsOf(ds)})
}

func (s *Server) actions(w http.ResponseWriter, r *http.Request) {
	limit, err := limitParam(r, 100)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	rows, err := s.deps.Store.RecentActions(r.Context(), limit)
	if err != nil {
		s.storeError(w, "actions", err)
		return
	}
	out := make([]actionJSON, len(rows))
	for i := range rows {
		out[i] = toActionJSON(&rows[i])
	}
	writeJSON(w, http.StatusOK, map[string]any{"actions": out})
}

func (s *Server) currentActions(w http.ResponseWriter, r *http.Request) {
	if s.deps.Operator == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "this meshguard runs no respond stage"})
		return
	}
	list, err := s.deps.Operator.List(r.Context())
	if err != nil && len(list) == 0 {
		s.log.Error("api: listing actions failed", "err", err)
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": "listing actions failed; see the server log"})
		return
	}
	if list == nil {
		list = []models.Action{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"actions": list, "complete": err == nil})
}

// maxSince bounds ?since= so that one request cannot scan the whole
// rollup.
const maxSince = 24 * time.Hour

func (s *Server) edges(w http.ResponseWriter, r *http.Request) {
	since := 15 * time.Minute
	if v := r.URL.Query().Get("since"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > maxSince {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("since %q: want a duration from 1m to %v, e.g. 15m", v, maxSince)})
			return
		}
		since = d
	}
	from := s.now().Add(-since).Truncate(time.Minute)
	rows, err := s.deps.Store.EdgeSummary(r.Context(), from)
	if err != nil {
		s.storeError(w, "edges", err)
		return
	}
	dets, err := s.deps.Store.RecentDetections(r.Context(), 500)
	if err != nil {
		s.storeError(w, "edges", err)
		return
	}
	out := make([]edgeJSON, len(rows))
	for i := range rows {
		out[i] = toEdgeJSON(&rows[i])
		for j := range dets {
			if d := &dets[j]; !d.WindowEnd.Before(from) && matches(d, &rows[i]) {
				out[i].Anomalous = true
				out[i].Detections = append(out[i].Detections, d.DetectionID)
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"since": from, "edges": out})
}

// matches reports whether detection d is about edge e: the same source
// (workload, else principal) and the same destination workload, or any
// destination when d names none (a scan).
func matches(d *storage.DetectionRow, e *storage.EdgeSummary) bool {
	switch {
	case d.SourceWorkload != "":
		if d.SourceWorkload != e.SourceWorkload || d.SourceNamespace != e.SourceNamespace {
			return false
		}
	case d.SourcePrincipal != "":
		if d.SourcePrincipal != e.SourcePrincipal {
			return false
		}
	default:
		return false
	}
	if d.DestinationWorkload == "" {
		return true
	}
	return d.DestinationWorkload == e.DestinationWorkload && d.DestinationNamespace == e.DestinationNamespace
}

func (s *Server) storeError(w http.ResponseWriter, what string, err error) {
	s.log.Error("api: reading "+what+" failed", "err", err)
	writeJSON(w, http.StatusBadGateway, map[string]string{"error": "reading " + what + " failed; see the server log"})
}

// maxExtend bounds ?by= of extend.
const maxExtend = 7 * 24 * time.Hour

// operate serves POST /api/v1/actions/{id}/{approve|revoke|extend}: an
// operator's, with the CSRF header, from this origin. Every outcome is
// audited.
func (s *Server) operate(w http.ResponseWriter, r *http.Request) {
	id, verb := r.PathValue("id"), r.PathValue("verb")
	if verb != "approve" && verb != "revoke" && verb != "extend" {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such operation " + strconv.Quote(verb) + "; use approve, revoke or extend"})
		return
	}
	row := models.Action{ID: id}
	refused := func(status int, actor, why string) {
		if ok, note := s.refusals.admit(s.now()); ok {
			row.State, row.Actor, row.Reason = "refused", actor, "api "+verb+" refused: "+why+note
			s.audit(r.Context(), row)
			s.log.Warn("api: operator request refused", "actor", actor, "verb", verb, "action_id", id, "status", status, "why", why, "remote", r.RemoteAddr)
		} else {
			s.m.unaudited.Inc()
		}
		s.refuse(w, status, why)
	}
	who, status, why := s.check(r, RoleOperator)
	if status != 0 {
		refused(status, who.Name, why)
		return
	}
	if r.Header.Get(CSRFHeader) != "1" {
		s.m.refused.WithLabelValues("csrf").Inc()
		refused(http.StatusForbidden, who.Name, "missing "+CSRFHeader+": 1 header")
		return
	}
	if err := s.cop.Check(r); err != nil {
		s.m.refused.WithLabelValues("csrf").Inc()
		refused(http.StatusForbidden, who.Name, "cross-origin request")
		return
	}
	by := time.Hour
	if verb == "extend" {
		if v := r.URL.Query().Get("by"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 || d > maxExtend {
				refused(http.StatusBadRequest, who.Name, fmt.Sprintf("by %q: want a duration from 1m to %v, e.g. 1h", v, maxExtend))
				return
			}
			by = d
		}
	}
	if s.deps.Operator == nil {
		refused(http.StatusServiceUnavailable, who.Name, "this meshguard runs no respond stage")
		return
	}
	// respond.mode is the ceiling for the whole installation: an approve
	// (dry-run to enforce) beyond it needs an operator who says so, by
	// name (never anonymous), and is audited as an override.
	override := ""
	if verb == "approve" && s.deps.RespondMode != "" && s.deps.RespondMode != models.ModeEnforce {
		switch {
		case r.URL.Query().Get("override") != "respond.mode":
			s.m.refused.WithLabelValues("mode").Inc()
			refused(http.StatusConflict, who.Name, fmt.Sprintf("respond.mode is %s: approving would enforce beyond it; "+
				"set respond.mode to enforce, or, as a named operator, repeat with ?override=respond.mode (audited)", s.deps.RespondMode))
			return
		case who.Name == anonymous:
			s.m.refused.WithLabelValues("mode").Inc()
			refused(http.StatusForbidden, who.Name, "overriding respond.mode needs an authenticated operator (server.auth.mode token or kubernetes)")
			return
		}
		override = fmt.Sprintf(" overriding respond.mode %s", s.deps.RespondMode)
		s.log.Warn("api: operator overrides respond.mode", "actor", who.Name, "action_id", id, "respond_mode", s.deps.RespondMode)
	}
	// The change outlives a client that hangs up: it was asked for.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Second)
	defer cancel()
	var res models.Action
	var err error
	switch verb {
	case "approve":
		res, err = s.deps.Operator.Approve(ctx, id, who.Name)
	case "revoke":
		res, err = s.deps.Operator.Revoke(ctx, id, who.Name)
	case "extend":
		res, err = s.deps.Operator.Extend(ctx, id, who.Name, by)
	}
	if err != nil {
		row.State, row.Actor, row.Reason = models.StateFailed, who.Name, "api "+verb+override+" failed: "+err.Error()
		s.audit(ctx, row)
		s.log.Warn("api: operator request failed", "actor", who.Name, "verb", verb, "action_id", id, "err", err)
		if errors.Is(err, respond.ErrNotFound) {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no action " + strconv.Quote(id)})
			return
		}
		// The backend's text (API server messages, addresses) stays in
		// the log and the audit row.
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": verb + " failed; the reason is in the server log and the audit log"})
		return
	}
	s.audit(ctx, models.Action{
		ID: id, DetectionID: res.DetectionID, Mode: res.Mode, State: res.State,
		Actor: who.Name, Reason: "api " + verb + " by " + who.Name + override, Target: res.Target,
		PolicyName: res.PolicyName, PolicyNamespace: res.PolicyNamespace, ExpiresAt: res.ExpiresAt,
	})
	s.log.Info("api: operator request applied", "actor", who.Name, "verb", verb, "action_id", id, "state", res.State, "mode", res.Mode)
	writeJSON(w, http.StatusOK, res)
}

// audit writes an operator request to the actions log (kind "api"). A
// failed write is logged and counted; the request's outcome stands.
func (s *Server) audit(ctx context.Context, row models.Action) {
	if s.deps.ActionWriter == nil {
		return
	}
	row.At = s.now()
	if row.Kind == "" {
		row.Kind = "api"
	}
	if row.ID == "" {
		row.ID = "unknown"
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.deps.ActionWriter.WriteAction(ctx, storage.ActionToRow(row)); err != nil {
		s.m.auditErrors.Inc()
		s.log.Error("api: audit write failed", "actor", row.Actor, "action_id", row.ID, "state", row.State, "err", err)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	// The encoder escapes <, > and & in strings: telemetry stays inert
	// even if a client renders it as HTML.
	_ = json.NewEncoder(w).Encode(v)
}

func text(w http.ResponseWriter, status int, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(s))
}

type metrics struct {
	refused     *prometheus.CounterVec
	auditErrors prometheus.Counter
	unaudited   prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshguard_api_refused_total",
			Help: "API requests refused, by reason: unauthenticated (401), forbidden (403, role), csrf (403), host (421, Host not in server.public_hosts), mode (approve beyond respond.mode).",
		}, []string{"reason"}),
		unaudited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshguard_api_refused_unaudited_total",
			Help: "Refused operator requests beyond the audit rate (20 a minute) that got no audit row of their own.",
		}),
		auditErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshguard_api_audit_errors_total",
			Help: "Operator requests whose audit row could not be written.",
		}),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.refused, m.auditErrors, m.unaudited} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}
