package api

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// hostGuard refuses requests whose Host header is not a name this server
// is known by (server.listen, server.public_hosts, an IP address, or
// localhost on a loopback listener). This is the DNS rebinding defence: a
// hostile page whose name was re-pointed at this address sends its own
// name as Host. It is checked before authentication, so that with
// server.auth.mode none the page gets nothing either.
type hostGuard struct {
	names    map[string]bool // lower-case host, and host:port as given
	loopback bool
}

func newHostGuard(cfg Config) *hostGuard {
	g := &hostGuard{names: map[string]bool{}, loopback: loopback(cfg.Listen)}
	if h, _, err := net.SplitHostPort(cfg.Listen); err == nil && h != "" {
		g.names[strings.ToLower(h)] = true
	}
	for _, h := range cfg.PublicHosts {
		h = strings.ToLower(strings.TrimSpace(h))
		g.names[h] = true
		if host, _, err := net.SplitHostPort(h); err == nil {
			// host:port listed: that port only is meant, but the Host
			// header of a default port (443, 80) carries none.
			g.names[host+":"] = true
		}
	}
	return g
}

func (g *hostGuard) allowed(hostHeader string) bool {
	h := strings.ToLower(hostHeader)
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		host, port = strings.Trim(h, "[]"), ""
	}
	if host == "" {
		return false
	}
	if net.ParseIP(host) != nil {
		// A page can only send an IP as Host when its own origin is that
		// IP: no rebinding.
		return true
	}
	if host == "localhost" && g.loopback {
		return true
	}
	if g.names[host] || g.names[h] {
		return true
	}
	return port == "" && g.names[host+":"]
}

// refusalAudit bounds the audit rows written for refused requests: at
// most refusedAuditPerMinute a minute. Refusals come from whoever can
// reach the port, unauthenticated, so one row each would let anyone fill
// the audit table and load ClickHouse with single-row inserts. Every
// refusal is still counted in meshguard_api_refused_total; the next
// audited refusal says how many were not audited one by one.
type refusalAudit struct {
	mu         sync.Mutex
	window     time.Time
	n          int
	suppressed int // in the current window
	unreported int // suppressed in earlier windows, not yet noted
}

const refusedAuditPerMinute = 20

// admit reports whether this refusal gets its own audit row, and the
// note to add to it about the refusals that did not.
func (r *refusalAudit) admit(now time.Time) (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.window) >= time.Minute {
		r.window, r.n = now, 0
		r.unreported += r.suppressed
		r.suppressed = 0
	}
	if r.n >= refusedAuditPerMinute {
		r.suppressed++
		return false, ""
	}
	r.n++
	note := ""
	if r.unreported > 0 {
		note = fmt.Sprintf(" (and %d more refused request(s) before %s, not audited one by one; see meshguard_api_refused_total)",
			r.unreported, now.UTC().Format(time.RFC3339))
		r.unreported = 0
	}
	return true, note
}

// guardHost wraps next with the Host check.
func (s *Server) guardHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hosts.allowed(r.Host) {
			s.m.refused.WithLabelValues("host").Inc()
			if ok, _ := s.hostLogs.admit(s.now()); ok {
				s.log.Warn("api: request for an unknown Host refused (add it to server.public_hosts if it is yours)", "host", r.Host, "path", r.URL.Path, "remote", r.RemoteAddr)
			}
			writeJSON(w, http.StatusMisdirectedRequest, map[string]string{
				"error": "this server does not answer for that Host; its operator can add the name to server.public_hosts",
			})
			return
		}
		next.ServeHTTP(w, r)
	})
}
