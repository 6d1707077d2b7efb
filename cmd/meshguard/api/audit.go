package api

import (
	"net/http"
	"time"

	"github.com/meshguard/meshguard/storage"
)

// auditGroupJSON is one run of identical audit rows (storage.AuditGroup):
// the row, how many times it was written, and when first and last.
type auditGroupJSON struct {
	actionJSON
	Count uint64    `json:"count"`
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
}

// auditLog serves GET /api/v1/audit?actor=&action=&since=&limit=: the audit
// log with repeats collapsed, the most recent first. action matches an
// action's id, kind or state.
func (s *Server) auditLog(w http.ResponseWriter, r *http.Request) {
	ds, ok := s.dashboard(w)
	if !ok {
		return
	}
	limit, err := limitParam(r, 200)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	f := storage.AuditFilter{Actor: r.URL.Query().Get("actor"), Action: r.URL.Query().Get("action"), Limit: limit}
	if r.URL.Query().Get("since") != "" {
		since, err := sinceParam(r)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		f.Since = s.now().Add(-since)
	}
	groups, err := ds.AuditSummary(r.Context(), f)
	if err != nil {
		s.storeError(w, "audit", err)
		return
	}
	out := make([]auditGroupJSON, len(groups))
	for i := range groups {
		g := &groups[i]
		out[i] = auditGroupJSON{actionJSON: toActionJSON(&g.Row), Count: g.Count, First: g.First, Last: g.Last}
	}
	writeJSON(w, http.StatusOK, map[string]any{"groups": out})
}
