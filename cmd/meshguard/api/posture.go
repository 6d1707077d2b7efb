package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/meshguard/meshguard/posture"
)

// PostureSource computes the zero-trust posture of [from, to);
// *posture.Reader is one.
type PostureSource interface {
	Posture(ctx context.Context, from, to time.Time) (*posture.Posture, error)
}

// maxPostureSince bounds ?since= of the posture: a week of flows.
const maxPostureSince = 7 * 24 * time.Hour

// posture serves GET /api/v1/posture?since=24h.
func (s *Server) posture(w http.ResponseWriter, r *http.Request) {
	if s.deps.Posture == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "this meshguard computes no posture (no ClickHouse)"})
		return
	}
	since := 24 * time.Hour
	if v := r.URL.Query().Get("since"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute || d > maxPostureSince {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("since %q: want a duration from 1m to %v, e.g. 24h", v, maxPostureSince)})
			return
		}
		since = d
	}
	to := s.now().UTC()
	p, err := s.deps.Posture.Posture(r.Context(), to.Add(-since), to)
	if err != nil {
		s.storeError(w, "posture", err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}
