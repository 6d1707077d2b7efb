package detect

import (
	"time"

	"github.com/meshguard/meshguard/models"
)

// An incident is what one attacker did within detect.hold: every
// detection whose source is that endpoint while the incident is open.
// Detections are the detectors' view (one per kind and edge); incidents
// are the people's and the responder's (one message, one action). Shards
// are keyed by Kafka partition and the collector keys records by the
// sending pod, so one attacker's records, and its incident, stay in one
// shard.
type incident struct {
	id      string // the head detection's ID
	head    activeKey
	lastEnd time.Time // end of the newest window that added to it
	parts   []activeKey
}

// maxIncidentParts bounds what a head lists; the detections table holds
// every part whatever the bound.
const maxIncidentParts = 32

// incidentFor returns the open incident of src at window start wStart,
// or nil.
func (s *shard) incidentFor(src models.EndpointID, wStart time.Time) *incident {
	inc := s.incidents[src]
	if inc == nil || wStart.Sub(inc.lastEnd) > s.det.cfg.Hold {
		return nil
	}
	return inc
}

// join files det (raised under key) into its source's incident, opening
// one with det as its head when none is open, and returns the incident.
func (s *shard) join(key activeKey, det *models.Detection) *incident {
	if key.src == (models.EndpointID{}) {
		// No attacker (a destination's outage): its own incident.
		det.IncidentID = det.ID
		return &incident{id: det.ID, head: key, parts: []activeKey{key}}
	}
	inc := s.incidentFor(key.src, det.WindowStart)
	if inc == nil {
		inc = &incident{id: det.ID, head: key}
		s.incidents[key.src] = inc
	}
	if det.WindowEnd.After(inc.lastEnd) {
		inc.lastEnd = det.WindowEnd
	}
	known := false
	for _, p := range inc.parts {
		known = known || p == key
	}
	if !known && len(inc.parts) < maxIncidentParts {
		inc.parts = append(inc.parts, key)
	}
	det.IncidentID = inc.id
	return inc
}

// absorbs reports whether the incident's head is a scan still running
// when a first-seen edge of its source is found: the probe is the scan's,
// not a new lateral movement, and is folded into it.
func (s *shard) absorbs(f finding, wStart time.Time) (*models.Detection, bool) {
	if f.kind != models.LateralMovement {
		return nil, false
	}
	inc := s.incidentFor(f.src, wStart)
	if inc == nil || inc.head.kind != models.Scan {
		return nil, false
	}
	scan := s.active[inc.head]
	if scan == nil || wStart.Sub(scan.WindowEnd) > s.det.cfg.Hold {
		return nil, false
	}
	return scan, true
}

// absorb folds a probed edge into the running scan: the scan is updated
// (its window, severity, destinations and count) and delivered again.
func (s *shard) absorb(scan *models.Detection, f finding, wEnd, now time.Time) {
	if wEnd.After(scan.WindowEnd) {
		scan.WindowEnd = wEnd
		scan.Updates++
	}
	scan.UpdatedAt = now
	scan.Severity = max(scan.Severity, f.severity)
	scan.Evidence.Absorbed++
	if dst := f.destination.String(); len(scan.Evidence.Destinations) < 2*maxDestinationsListed {
		scan.Evidence.Destinations = append(scan.Evidence.Destinations, dst)
	}
	if inc := s.incidents[f.src]; inc != nil && wEnd.After(inc.lastEnd) {
		inc.lastEnd = wEnd
	}
}

// maxDestinationsListed is how many destinations a scan lists from its
// first window (sourceFinding); absorbed probes may add as many again.
const maxDestinationsListed = 20

// partsOf lists the incident's detections for its head's evidence.
func (s *shard) partsOf(inc *incident) []models.IncidentPart {
	out := make([]models.IncidentPart, 0, len(inc.parts))
	for _, k := range inc.parts {
		d := s.active[k]
		if d == nil {
			continue
		}
		out = append(out, models.IncidentPart{DetectionID: d.ID, Kind: d.Kind, Destination: d.Destination.String(),
			FirstWindow: d.WindowStart, Updates: d.Updates})
	}
	return out
}

// expireIncidents forgets incidents quiet for Hold.
func (s *shard) expireIncidents(now time.Time) {
	for k, inc := range s.incidents {
		if now.Sub(inc.lastEnd) > s.det.cfg.Hold {
			delete(s.incidents, k)
		}
	}
}
