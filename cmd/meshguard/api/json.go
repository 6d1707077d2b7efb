package api

import (
	"cmp"
	"embed"
	"encoding/json"
	"net/http"
	"time"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/storage"
)

// The JSON the API answers with. Field names are snake_case and stable;
// times are RFC 3339 UTC.

type partyJSON struct {
	Principal string `json:"principal,omitempty"`
	Workload  string `json:"workload,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Service   string `json:"service,omitempty"`
	IP        string `json:"ip,omitempty"`
}

type detectionJSON struct {
	ID          string    `json:"detection_id"`
	IncidentID  string    `json:"incident_id"`
	Version     uint64    `json:"version"`
	DetectedAt  time.Time `json:"detected_at"`
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	Kind        string    `json:"kind"`
	Severity    string    `json:"severity"`
	Score       float64   `json:"score"`
	Source      partyJSON `json:"source"`
	Destination partyJSON `json:"destination"`
	// Evidence is the stored JSON document (models.Evidence), as is.
	Evidence json.RawMessage `json:"evidence"`
}

func toDetectionJSON(d *storage.DetectionRow) detectionJSON {
	ev := json.RawMessage(d.Evidence)
	if !json.Valid(ev) {
		// Writers refuse anything but JSON; keep the response valid anyway.
		ev, _ = json.Marshal(d.Evidence)
	}
	return detectionJSON{
		ID: d.DetectionID, IncidentID: cmp.Or(d.IncidentID, d.DetectionID), Version: d.Version, DetectedAt: d.DetectedAt, WindowStart: d.WindowStart,
		WindowEnd: d.WindowEnd, Kind: d.Kind, Severity: d.Severity, Score: d.Score,
		Source:      partyJSON{Principal: d.SourcePrincipal, Workload: d.SourceWorkload, Namespace: d.SourceNamespace},
		Destination: partyJSON{Workload: d.DestinationWorkload, Namespace: d.DestinationNamespace},
		Evidence:    ev,
	}
}

// incidentJSON is one incident: its head detection (the first), its
// detections newest first, and what they add up to.
type incidentJSON struct {
	ID         string          `json:"incident_id"`
	Head       detectionJSON   `json:"head"`
	Severity   string          `json:"severity"`
	FirstSeen  time.Time       `json:"first_seen"`
	LastSeen   time.Time       `json:"last_seen"`
	Kinds      map[string]int  `json:"kinds"`
	Detections []detectionJSON `json:"detections"`
}

// incidentsOf groups detections (newest first) by incident, newest
// incident first. An incident whose head is older than the detections
// read is headed by its oldest detection read.
func incidentsOf(ds []detectionJSON) []incidentJSON {
	var out []incidentJSON
	at := map[string]int{}
	for _, d := range ds {
		i, ok := at[d.IncidentID]
		if !ok {
			i = len(out)
			at[d.IncidentID] = i
			out = append(out, incidentJSON{ID: d.IncidentID, Kinds: map[string]int{}, FirstSeen: d.WindowStart, LastSeen: d.WindowEnd})
		}
		inc := &out[i]
		inc.Detections = append(inc.Detections, d)
		inc.Kinds[d.Kind]++
		switch {
		case d.ID == d.IncidentID, inc.Head.ID == "":
			inc.Head = d
		case inc.Head.ID != inc.ID && d.WindowStart.Before(inc.Head.WindowStart):
			inc.Head = d // the real head is older than what was read
		}
		if d.WindowStart.Before(inc.FirstSeen) {
			inc.FirstSeen = d.WindowStart
		}
		if d.WindowEnd.After(inc.LastSeen) {
			inc.LastSeen = d.WindowEnd
		}
		if sev, err := models.ParseSeverity(d.Severity); err == nil {
			if cur, err := models.ParseSeverity(inc.Severity); err != nil || sev > cur {
				inc.Severity = d.Severity
			}
		}
	}
	return out
}

type actionJSON struct {
	ID              string     `json:"action_id"`
	At              time.Time  `json:"at"`
	DetectionID     string     `json:"detection_id,omitempty"`
	Kind            string     `json:"kind"`
	Mode            string     `json:"mode,omitempty"`
	State           string     `json:"state"`
	Actor           string     `json:"actor"`
	Reason          string     `json:"reason,omitempty"`
	Target          string     `json:"target,omitempty"`
	PolicyName      string     `json:"policy_name,omitempty"`
	PolicyNamespace string     `json:"policy_namespace,omitempty"`
	ExpiresAt       *time.Time `json:"expires_at,omitempty"`
}

func toActionJSON(a *storage.ActionRow) actionJSON {
	out := actionJSON{
		ID: a.ActionID, At: a.At, DetectionID: a.DetectionID, Kind: a.Kind, Mode: a.Mode, State: a.State,
		Actor: a.Actor, Reason: a.Reason, Target: a.Target, PolicyName: a.PolicyName, PolicyNamespace: a.PolicyNamespace,
	}
	if !a.ExpiresAt.IsZero() {
		t := a.ExpiresAt
		out.ExpiresAt = &t
	}
	return out
}

type edgeJSON struct {
	Source        partyJSON `json:"source"`
	Destination   partyJSON `json:"destination"`
	Reporter      string    `json:"reporter"`
	Requests      uint64    `json:"requests"`
	Responses2xx  uint64    `json:"responses_2xx"`
	Responses3xx  uint64    `json:"responses_3xx"`
	Responses4xx  uint64    `json:"responses_4xx"`
	Responses5xx  uint64    `json:"responses_5xx"`
	Responses401  uint64    `json:"responses_401"`
	Responses403  uint64    `json:"responses_403"`
	BytesSent     uint64    `json:"bytes_sent"`
	BytesReceived uint64    `json:"bytes_received"`
	LastSeen      time.Time `json:"last_seen"`
	// Anomalous: a recent detection is about this edge (Detections).
	Anomalous  bool     `json:"anomalous"`
	Detections []string `json:"detections,omitempty"`
}

func toEdgeJSON(e *storage.EdgeSummary) edgeJSON {
	return edgeJSON{
		Source:      partyJSON{Principal: e.SourcePrincipal, Workload: e.SourceWorkload, Namespace: e.SourceNamespace, IP: e.SourceIP},
		Destination: partyJSON{Workload: e.DestinationWorkload, Namespace: e.DestinationNamespace, Service: e.DestinationService},
		Reporter:    e.Reporter, Requests: e.Requests,
		Responses2xx: e.Responses2xx, Responses3xx: e.Responses3xx, Responses4xx: e.Responses4xx, Responses5xx: e.Responses5xx,
		Responses401: e.Responses401, Responses403: e.Responses403, BytesSent: e.BytesSent, BytesReceived: e.BytesReceived,
		LastSeen: e.LastSeen,
	}
}

// The page: plain HTML, its script and style sheet, and the graph layout
// libraries vendored from npm (ui/vendor/README.md), no build step.
//
//go:embed ui/index.html ui/app.js ui/zerotrust.js ui/app.css ui/vendor/*.js ui/vendor/*.LICENSE
var ui embed.FS

// uiFiles are the files served under /ui/.
var uiFiles = []string{"app.js", "zerotrust.js", "app.css",
	"vendor/cytoscape.min.js", "vendor/layout-base.js", "vendor/cose-base.js", "vendor/cytoscape-fcose.js",
	"vendor/cytoscape.LICENSE", "vendor/layout-base.LICENSE", "vendor/cose-base.LICENSE", "vendor/cytoscape-fcose.LICENSE"}

func (s *Server) static(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, ui, "ui/"+name)
	}
}
