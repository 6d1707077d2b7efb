package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/meshguard/meshguard/models"
)

// server.auth.mode none passes config validation on a loopback listener
// only, and the error names the key and the fix.
func TestAuthNoneOnlyOnLoopback(t *testing.T) {
	for listen, ok := range map[string]bool{
		"127.0.0.1:8080": true, "[::1]:8080": true, "localhost:8080": true,
		":8080": false, "0.0.0.0:8080": false, "10.1.2.3:8080": false, "meshguard.example:8080": false,
	} {
		c := DefaultConfig()
		c.Listen, c.Auth.Mode = listen, AuthNone
		err := c.Validate()
		if ok && err != nil {
			t.Errorf("%s: %v", listen, err)
		}
		if !ok && (err == nil || !strings.Contains(err.Error(), "server.auth.mode: none") || !strings.Contains(err.Error(), "127.0.0.1:PORT")) {
			t.Errorf("%s: error %v; want one naming server.auth.mode and the fix", listen, err)
		}
	}
	c := DefaultConfig()
	c.Listen, c.Auth.Mode, c.PublicHosts = "127.0.0.1:8080", AuthNone, []string{"https://mg.example/"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "server.public_hosts") {
		t.Errorf("a URL in public_hosts: %v", err)
	}
}

// The DNS rebinding case of the demo: a page on a rebound name posts an
// approve to a mode-none server on 127.0.0.1. Its Host is its own name,
// so it is refused (421) before anything else: no operator call, counted.
func TestHostHeaderChecked(t *testing.T) {
	e := newEnv(t, func(c *Config, _ *Deps) {
		c.Auth = AuthConfig{Mode: AuthNone}
		c.PublicHosts = []string{"example.com", "MG.example:8443"}
	})
	post := func(host string) int {
		r := httptest.NewRequest("POST", "/api/v1/actions/act-1/approve", nil)
		r.Host = host
		r.Header.Set(CSRFHeader, "1")
		r.Header.Set("Sec-Fetch-Site", "same-origin")
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		return w.Code
	}
	get := func(host, path string) int {
		r := httptest.NewRequest("GET", path, nil)
		r.Host = host
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		return w.Code
	}
	for _, host := range []string{"rebind.attacker.example", "rebind.attacker.example:8080", "mg.example:9999", "example.com.attacker.example", ""} {
		if code := post(host); code != http.StatusMisdirectedRequest {
			t.Errorf("approve with Host %q: %d, want 421", host, code)
		}
		if code := get(host, "/api/v1/detections"); code != http.StatusMisdirectedRequest {
			t.Errorf("detections with Host %q: %d, want 421", host, code)
		}
	}
	if calls := e.op.Calls(); len(calls) != 0 {
		t.Fatalf("a request for a foreign Host reached the operator: %+v", calls)
	}
	for _, host := range []string{"127.0.0.1:8080", "localhost:8080", "[::1]:8080", "EXAMPLE.COM", "mg.example:8443", "mg.example"} {
		if code := get(host, "/api/v1/detections"); code != http.StatusOK {
			t.Errorf("detections with Host %q: %d, want 200", host, code)
		}
	}
	if v := counterValue(t, e.srv.m.refused.WithLabelValues("host")); v != 10 {
		t.Errorf("refused{host} = %v, want 10", v)
	}
	// On all interfaces, localhost is no name of this server.
	wide := newEnv(t, func(c *Config, _ *Deps) { c.Listen = ":8080" })
	if code := do(wide.h, "GET", "/healthz", "", nil); code.Code != http.StatusOK {
		t.Errorf("public host: %d", code.Code)
	}
	r := httptest.NewRequest("GET", "/healthz", nil)
	r.Host = "localhost:8080"
	w := httptest.NewRecorder()
	wide.h.ServeHTTP(w, r)
	if w.Code != http.StatusMisdirectedRequest {
		t.Errorf("localhost on a wide listener: %d, want 421", w.Code)
	}
}

// A manual approve does not exceed respond.mode: in dry-run it is refused
// (409) unless a named operator overrides, which is audited as such; the
// anonymous of mode none cannot override. Revoke is not capped.
func TestApproveCappedByRespondMode(t *testing.T) {
	same := http.Header{CSRFHeader: {"1"}, "Sec-Fetch-Site": {"same-origin"}}
	e := newEnv(t, func(_ *Config, d *Deps) { d.RespondMode = models.ModeDryRun })
	w := do(e.h, "POST", "/api/v1/actions/act-1/approve", operatorToken, same)
	if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "respond.mode is dry-run") {
		t.Fatalf("approve in dry-run: %d %s; want 409 naming respond.mode", w.Code, w.Body)
	}
	if calls := e.op.Calls(); len(calls) != 0 {
		t.Fatalf("approve beyond respond.mode reached the operator: %+v", calls)
	}
	if w := do(e.h, "POST", "/api/v1/actions/act-1/approve?override=respond.mode", operatorToken, same); w.Code != http.StatusOK {
		t.Fatalf("override: %d %s", w.Code, w.Body)
	}
	if w := do(e.h, "POST", "/api/v1/actions/act-1/revoke", operatorToken, same); w.Code != http.StatusOK {
		t.Fatalf("revoke in dry-run: %d %s", w.Code, w.Body)
	}
	rows := e.audit.Actions()
	var got []string
	for _, r := range rows {
		got = append(got, r.State+" "+r.Actor+": "+r.Reason)
	}
	if len(rows) != 3 || rows[0].State != "refused" || !strings.Contains(rows[0].Reason, "respond.mode is dry-run") ||
		rows[1].State != "promoted" || rows[1].Actor != "otto" || !strings.Contains(rows[1].Reason, "overriding respond.mode dry-run") ||
		rows[2].State != "revoked" {
		t.Errorf("audit:\n%s", strings.Join(got, "\n"))
	}

	none := newEnv(t, func(c *Config, d *Deps) { c.Auth = AuthConfig{Mode: AuthNone}; d.RespondMode = models.ModeDryRun })
	if w := do(none.h, "POST", "/api/v1/actions/act-1/approve?override=respond.mode", "", same); w.Code != http.StatusForbidden {
		t.Errorf("anonymous override: %d, want 403", w.Code)
	}
	if calls := none.op.Calls(); len(calls) != 0 {
		t.Errorf("anonymous override reached the operator: %+v", calls)
	}
	enforce := newEnv(t, func(_ *Config, d *Deps) { d.RespondMode = models.ModeEnforce })
	if w := do(enforce.h, "POST", "/api/v1/actions/act-1/approve", operatorToken, same); w.Code != http.StatusOK {
		t.Errorf("approve in enforce: %d", w.Code)
	}
}

// 50 unauthenticated POSTs: 50 refusals counted, at most 20 audit rows a
// minute; the next audited refusal says how many were not audited.
func TestRefusedRequestsAuditedAtBoundedRate(t *testing.T) {
	e := newEnv(t, nil)
	now := time.Now()
	e.srv.now = func() time.Time { return now }
	for range 50 {
		if w := do(e.h, "POST", "/api/v1/actions/act-1/approve", "", nil); w.Code != http.StatusUnauthorized {
			t.Fatalf("unauthenticated: %d", w.Code)
		}
	}
	if n := len(e.audit.Actions()); n != refusedAuditPerMinute {
		t.Errorf("%d audit rows for 50 refusals in a minute, want %d", n, refusedAuditPerMinute)
	}
	if v := counterValue(t, e.srv.m.refused.WithLabelValues("unauthenticated")); v != 50 {
		t.Errorf("refused{unauthenticated} = %v, want 50", v)
	}
	if v := counterValue(t, e.srv.m.unaudited); v != 30 {
		t.Errorf("unaudited = %v, want 30", v)
	}
	now = now.Add(time.Minute)
	do(e.h, "POST", "/api/v1/actions/act-1/approve", "", nil)
	rows := e.audit.Actions()
	if last := rows[len(rows)-1]; len(rows) != refusedAuditPerMinute+1 || !strings.Contains(last.Reason, "30 more refused request(s)") {
		t.Errorf("after a minute: %d rows, last %q", len(rows), last.Reason)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// A failing backend's text (API server addresses, messages) is logged
// and audited, not sent to the client.
func TestNoUpstreamErrorTextInResponses(t *testing.T) {
	same := http.Header{CSRFHeader: {"1"}, "Sec-Fetch-Site": {"same-origin"}}
	e := newEnv(t, nil)
	e.op.fail = errors.New(`Patch "https://10.96.0.1:443/apis/security.istio.io/v1/namespaces/billing": x509: internal-detail`)
	w := do(e.h, "POST", "/api/v1/actions/act-1/revoke", operatorToken, same)
	if w.Code != http.StatusBadGateway || strings.Contains(w.Body.String(), "10.96.0.1") || strings.Contains(w.Body.String(), "internal-detail") {
		t.Errorf("failure answer: %d %s", w.Code, w.Body)
	}
	if rows := e.audit.Actions(); len(rows) != 1 || !strings.Contains(rows[0].Reason, "internal-detail") {
		t.Errorf("audit should keep the reason: %+v", rows)
	}
}
