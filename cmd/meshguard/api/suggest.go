package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/meshguard/meshguard/policy"
)

// SuggestFunc learns least-privilege ALLOW policies for scope over the
// since before now (policy.Learn with the server's store, resolver and
// guardrails).
type SuggestFunc func(ctx context.Context, scope policy.Scope, since time.Duration) ([]policy.Suggestion, error)

// maxSuggestSince bounds what one request may make the store scan.
const maxSuggestSince = 31 * 24 * time.Hour

// suggestions is GET /api/v1/policies/suggestions?namespace=&workload=&since=7d:
// the suggestions as JSON, for viewers (it reads; applying is a
// person's, through the CLI or git).
func (s *Server) suggestions(w http.ResponseWriter, r *http.Request) {
	if s.deps.Suggest == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "suggestions need ClickHouse (this server has no store for them)"})
		return
	}
	q := r.URL.Query()
	since := 7 * 24 * time.Hour
	if v := q.Get("since"); v != "" {
		d, err := policy.ParseSince(v)
		if err != nil || d <= 0 || d > maxSuggestSince {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("since %q: want a duration from 1m to 31d, e.g. 7d or 36h", v)})
			return
		}
		since = d
	}
	ss, err := s.deps.Suggest(r.Context(), policy.Scope{Namespace: q.Get("namespace"), Workload: q.Get("workload")}, since)
	if err != nil {
		s.storeError(w, "suggestions", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"suggestions": ss})
}
