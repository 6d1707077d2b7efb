package api

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/meshguard/meshguard/test/testenv"
)

// TestKubernetesAuth: on the real kube-apiserver, a ServiceAccount bound
// to the viewer permission (ViewerAccess), with a token issued for
// meshguard's audience, reads the API and is refused (403, audited with
// its name) on an operator endpoint; a token the API server did not
// issue gets 401.
func TestKubernetesAuth(t *testing.T) {
	cfg := testenv.KubeConfig(t)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns, user := testenv.ViewerAccount(ctx, t, cs, ViewerAccess)
	token := testenv.AccountToken(ctx, t, cs, ns, DefaultAudience)

	e := newEnv(t, func(c *Config, d *Deps) {
		c.Auth = AuthConfig{Mode: AuthKubernetes, Audiences: DefaultConfig().Auth.Audiences}
		d.Kube = cfg
	})
	if w := do(e.h, "GET", "/api/v1/detections", token, nil); w.Code != http.StatusOK {
		t.Errorf("viewer reads detections: %d %s", w.Code, w.Body)
	}
	if w := do(e.h, "GET", "/api/v1/whoami", token, nil); w.Code != 200 || !strings.Contains(w.Body.String(), `"name":"`+user+`"`) || !strings.Contains(w.Body.String(), `"operator":false`) {
		t.Errorf("whoami: %d %s", w.Code, w.Body)
	}
	w := do(e.h, "POST", "/api/v1/actions/act-1/approve", token, http.Header{CSRFHeader: {"1"}})
	if w.Code != http.StatusForbidden {
		t.Errorf("viewer approves: %d %s; want 403", w.Code, w.Body)
	}
	if calls := e.op.Calls(); len(calls) != 0 {
		t.Errorf("operator called for a viewer: %+v", calls)
	}
	rows := e.audit.Actions()
	if len(rows) != 1 || rows[0].Actor != user || rows[0].State != "refused" || !strings.Contains(rows[0].Reason, "not an operator") {
		t.Errorf("audit %+v; want one refused row by %s", rows, user)
	}
	bogus := token[:len(token)-4] + "AAAA"
	if w := do(e.h, "GET", "/api/v1/detections", bogus, nil); w.Code != http.StatusUnauthorized {
		t.Errorf("a forged token: %d; want 401", w.Code)
	}
	if strings.Contains(e.logs.String(), token) {
		t.Error("the ServiceAccount token is in the log")
	}
}

// TestKubernetesAuthAudiences: the TokenReview asks for
// server.auth.audiences, and only a token issued for one of them gets
// in. A token for the API server (what a pod's default mounted token and
// `kubectl create token` without --audience give), one for another
// service, and the API server's static admin token are refused with
// 401, saying which audience to ask for; naming another audience in the
// config moves the acceptance with it.
func TestKubernetesAuthAudiences(t *testing.T) {
	cfg := testenv.KubeConfig(t)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns, user := testenv.ViewerAccount(ctx, t, cs, ViewerAccess)
	ours := testenv.AccountToken(ctx, t, cs, ns, DefaultAudience)
	apiServers := testenv.AccountToken(ctx, t, cs, ns)
	vault := testenv.AccountToken(ctx, t, cs, ns, "vault")
	both := testenv.AccountToken(ctx, t, cs, ns, "vault", DefaultAudience)

	server := func(audiences ...string) *env {
		return newEnv(t, func(c *Config, d *Deps) {
			c.Auth = AuthConfig{Mode: AuthKubernetes, Audiences: audiences}
			d.Kube = cfg
		})
	}
	e := server(DefaultConfig().Auth.Audiences...)
	for name, tok := range map[string]string{"for meshguard": ours, "for vault and meshguard": both} {
		if w := do(e.h, "GET", "/api/v1/whoami", tok, nil); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"name":"`+user+`"`) {
			t.Errorf("a token %s: %d %s; want 200 as %s", name, w.Code, w.Body, user)
		}
	}
	for name, tok := range map[string]string{"for the API server": apiServers, "for vault": vault, "the static admin token": cfg.BearerToken} {
		w := do(e.h, "GET", "/api/v1/detections", tok, nil)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("a token %s: %d %s; want 401", name, w.Code, w.Body)
		}
		if !strings.Contains(w.Body.String(), "--audience meshguard") {
			t.Errorf("a token %s: the 401 says %s; want which audience to ask for", name, w.Body)
		}
	}
	if cfg.BearerToken == "" {
		t.Error("the admin kubeconfig has no bearer token; the static-token case tested nothing")
	}

	v := server("vault")
	if w := do(v.h, "GET", "/api/v1/detections", vault, nil); w.Code != http.StatusOK {
		t.Errorf("server.auth.audiences [vault], a token for vault: %d %s", w.Code, w.Body)
	}
	if w := do(v.h, "GET", "/api/v1/detections", ours, nil); w.Code != http.StatusUnauthorized {
		t.Errorf("server.auth.audiences [vault], a token for meshguard: %d; want 401", w.Code)
	}
	for _, tok := range []string{ours, apiServers, vault, both} {
		if strings.Contains(e.logs.String()+v.logs.String(), tok) {
			t.Error("a ServiceAccount token is in the log")
		}
	}
}
