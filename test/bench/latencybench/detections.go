package main

import (
	"context"
	"encoding/json"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// detection is one detection serve stored, as polling saw it.
type detection struct {
	id, kind, source string
	// raised is when the detector raised it: the updated_at of its first
	// version (nanoseconds, in the evidence), or detected_at (whole
	// seconds) when polling met only later versions.
	raised time.Time
	exact  bool      // raised is the first version's updated_at
	stored time.Time // when polling first saw it in ClickHouse
}

// detectionPoll keeps every detection of db.detections, polling every
// 200 ms from one goroutine.
type detectionPoll struct {
	conn driver.Conn
	db   string
	seen map[string]*detection
}

func (p *detectionPoll) poll(ctx context.Context) error {
	rows, err := p.conn.Query(ctx, "SELECT detection_id, version, detected_at, kind, source_workload, evidence FROM "+p.db+".detections")
	if err != nil {
		return err
	}
	defer rows.Close()
	now := time.Now()
	for rows.Next() {
		var id, kind, src, evidence string
		var version uint64
		var detectedAt time.Time
		if err := rows.Scan(&id, &version, &detectedAt, &kind, &src, &evidence); err != nil {
			return err
		}
		d := p.seen[id]
		if d == nil {
			d = &detection{id: id, kind: kind, source: src, stored: now, raised: detectedAt}
			p.seen[id] = d
		}
		if version != 1 || d.exact {
			continue
		}
		var ev struct {
			UpdatedAt time.Time `json:"updated_at"`
		}
		if json.Unmarshal([]byte(evidence), &ev) == nil && !ev.UpdatedAt.IsZero() {
			d.raised, d.exact = ev.UpdatedAt, true
		}
	}
	return rows.Err()
}

// run polls until ctx ends.
func (p *detectionPoll) run(ctx context.Context) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		// Errors until serve has migrated (no table yet), or while
		// chserver restarts: the next poll tries again.
		_ = p.poll(ctx)
	}
}
