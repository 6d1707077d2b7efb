package storage

import (
	"context"
	"time"

	"github.com/meshguard/meshguard/models"
)

// DetectionRow is one version of a detection as stored in the detections
// table. Writing the same DetectionID again with a higher Version replaces
// it: that is how an ongoing attack updates its one detection.
type DetectionRow struct {
	DetectionID string
	// Version orders the writes of one detection; the highest wins. Zero
	// means "now": the writer uses the current time in Unix nanoseconds,
	// which increases from one update to the next in one process.
	Version     uint64
	DetectedAt  time.Time
	WindowStart time.Time
	WindowEnd   time.Time
	Kind        string
	Severity    string
	Score       float64

	SourcePrincipal      string
	SourceWorkload       string
	SourceNamespace      string
	DestinationWorkload  string
	DestinationNamespace string

	// Evidence is a JSON document; writers reject anything else.
	Evidence string
	// IncidentID is the incident's head detection (models.Detection).
	IncidentID string
}

// ActionRow is one entry of the append-only actions audit log.
type ActionRow struct {
	ActionID    string
	At          time.Time
	DetectionID string
	Kind        string // e.g. "deny", "alert"
	Mode        string // e.g. "dry-run", "enforce"
	State       string // e.g. "applied", "expired", "failed"
	Actor       string // who or what acted: "meshguard", a user name
	Reason      string
	Target      string
	// PolicyName and PolicyNamespace name the AuthorizationPolicy written,
	// if any.
	PolicyName      string
	PolicyNamespace string
	// ExpiresAt is when the action lapses; zero means never.
	ExpiresAt time.Time
}

// DetectionWriter stores detections. Implementations are goroutine-safe.
type DetectionWriter interface {
	WriteDetection(ctx context.Context, d DetectionRow) error
}

// ActionWriter appends to the actions audit log. Implementations are
// goroutine-safe.
type ActionWriter interface {
	WriteAction(ctx context.Context, a ActionRow) error
}

// EdgeCounts are the additive totals of an edge over some time, as the
// edge_minute rollup keeps them per minute.
type EdgeCounts struct {
	Requests      uint64 // sum of Flow.Count
	Responses2xx  uint64
	Responses3xx  uint64
	Responses4xx  uint64
	Responses5xx  uint64
	Responses401  uint64
	Responses403  uint64
	BytesSent     uint64
	BytesReceived uint64
}

// Add counts f the way the edge_minute view does.
func (c *EdgeCounts) Add(f *models.Flow) {
	n := uint64(f.Count)
	c.Requests += n
	switch code := f.ResponseCode; {
	case code >= 200 && code < 300:
		c.Responses2xx += n
	case code >= 300 && code < 400:
		c.Responses3xx += n
	case code >= 400 && code < 500:
		c.Responses4xx += n
		switch code {
		case 401:
			c.Responses401 += n
		case 403:
			c.Responses403 += n
		}
	case code >= 500 && code < 600:
		c.Responses5xx += n
	}
	c.BytesSent += f.BytesSent
	c.BytesReceived += f.BytesReceived
}

// EdgeMinute is one minute of one edge, read from edge_minute.
type EdgeMinute struct {
	Minute   time.Time
	Reporter string

	SourcePrincipal string
	SourceWorkload  string
	SourceNamespace string
	// SourceIP is set only for callers with neither workload nor principal.
	SourceIP string

	DestinationWorkload  string
	DestinationNamespace string
	DestinationService   string

	EdgeCounts
	// Duration quantiles in milliseconds, weighted by Count (t-digest:
	// approximate).
	DurationP50, DurationP90, DurationP99 float64
}
