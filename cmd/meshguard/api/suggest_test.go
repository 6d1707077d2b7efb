package api

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/meshguard/meshguard/policy"
	"github.com/meshguard/meshguard/storage"
)

// GET /api/v1/policies/suggestions: viewers get the suggestions of the
// scope and period they ask for (learned by policy.Suggest from the
// evidence the store would return); a bad since is refused with the
// accepted forms, no token is refused, and no store answers 503.
func TestSuggestions(t *testing.T) {
	var asked policy.Scope
	var askedSince time.Duration
	suggest := func(_ context.Context, scope policy.Scope, since time.Duration) ([]policy.Suggestion, error) {
		asked, askedSince = scope, since
		to := time.Now()
		ev := policy.Evidence{Traffic: []storage.CallerTraffic{{DestinationNamespace: "billing", DestinationWorkload: "payments",
			Reporter: "destination", SourcePrincipal: "cluster.local/ns/shop/sa/checkout", Attested: true, Method: "POST",
			PathTemplate: "/charge", Port: 8080, Requests: 40, FirstSeen: to.Add(-since), LastSeen: to}}}
		return policy.Suggest(ev, policy.DefaultOptions(to.Add(-since), to)), nil
	}
	e := newEnv(t, func(_ *Config, d *Deps) { d.Suggest = suggest })
	w := do(e.h, http.MethodGet, "/api/v1/policies/suggestions?namespace=billing&since=3d", viewerToken, nil)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var body struct {
		Suggestions []policy.Suggestion `json:"suggestions"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || len(body.Suggestions) != 1 ||
		body.Suggestions[0].Rules[0].Principal != "cluster.local/ns/shop/sa/checkout" {
		t.Fatalf("body %s: %v", w.Body, err)
	}
	if asked.Namespace != "billing" || askedSince != 72*time.Hour {
		t.Errorf("asked %+v over %v, want billing over 72h", asked, askedSince)
	}
	if w := do(e.h, http.MethodGet, "/api/v1/policies/suggestions?since=forever", viewerToken, nil); w.Code != http.StatusBadRequest {
		t.Errorf("since=forever: %d", w.Code)
	}
	if w := do(e.h, http.MethodGet, "/api/v1/policies/suggestions", "", nil); w.Code != http.StatusUnauthorized {
		t.Errorf("no token: %d", w.Code)
	}
	none := newEnv(t, nil)
	if w := do(none.h, http.MethodGet, "/api/v1/policies/suggestions", viewerToken, nil); w.Code != http.StatusServiceUnavailable {
		t.Errorf("without a store: %d", w.Code)
	}
}
