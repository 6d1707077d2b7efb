package api

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/meshguard/meshguard/posture"
	"github.com/meshguard/meshguard/report"
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

// ReportSource builds the compliance report of [from, to);
// *report.Reader is one.
type ReportSource interface {
	Report(ctx context.Context, from, to time.Time) (*report.Report, error)
}

// maxReportSpan bounds a report's period: a quarter.
const maxReportSpan = 92 * 24 * time.Hour

// reportTime reads ?name= (report.ParseTime); empty is def.
func reportTime(r *http.Request, name string, def time.Time) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	t, err := report.ParseTime(v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %w", name, err)
	}
	return t, nil
}

// report serves GET /api/v1/report?from=&to=&format=json|md|html|pdf
// (default the last 30 days, JSON). Other formats come as attachments,
// so a browser saves them rather than rendering telemetry in this
// origin.
func (s *Server) report(w http.ResponseWriter, r *http.Request) {
	if s.deps.Report == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "this meshguard builds no report (no ClickHouse)"})
		return
	}
	format := cmp.Or(r.URL.Query().Get("format"), "json")
	if !slices.Contains(report.Formats, format) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("format %q: want one of %s", format, strings.Join(report.Formats, ", "))})
		return
	}
	to, err := reportTime(r, "to", s.now().UTC())
	if err == nil {
		var from time.Time
		if from, err = reportTime(r, "from", to.Add(-30*24*time.Hour)); err == nil {
			err = checkSpan(from, to)
		}
		if err == nil {
			s.serveReport(w, r, from, to, format)
			return
		}
	}
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
}

func checkSpan(from, to time.Time) error {
	switch {
	case !from.Before(to):
		return fmt.Errorf("from %s is not before to %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	case to.Sub(from) > maxReportSpan:
		return fmt.Errorf("from %s to %s spans more than %v", from.Format(time.RFC3339), to.Format(time.RFC3339), maxReportSpan)
	}
	return nil
}

func (s *Server) serveReport(w http.ResponseWriter, r *http.Request, from, to time.Time, format string) {
	rep, err := s.deps.Report.Report(r.Context(), from, to)
	if err != nil {
		s.storeError(w, "report", err)
		return
	}
	var buf bytes.Buffer
	if err := report.Render(&buf, rep, format); err != nil {
		s.log.Error("api: rendering the report failed", "format", format, "err", err)
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "rendering the report failed; see the server log"})
		return
	}
	w.Header().Set("Content-Type", report.ContentType(format))
	if format != "json" {
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="meshguard-report-%s.%s"`, to.Format("20060102"), format))
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}
