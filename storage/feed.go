package storage

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// DetectionFeed reads detections written after a version (Unix
// nanoseconds of the write), oldest first: how respond and alert replicas
// learn of detections raised by detect replicas on other partitions.
type DetectionFeed interface {
	DetectionsSince(ctx context.Context, version uint64, limit int) ([]DetectionRow, error)
}

// DetectionsSince returns up to limit detections whose newest version is
// above version, in version order.
func (c *ClickHouse) DetectionsSince(ctx context.Context, version uint64, limit int) ([]DetectionRow, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	rows, err := c.conn.Query(ctx, detectionSelect(c.db)+" WHERE version > ? ORDER BY version LIMIT ?", version, limit)
	if err != nil {
		return nil, fmt.Errorf("detections since %d: %w", version, classify(err))
	}
	defer rows.Close()
	var out []DetectionRow
	for rows.Next() {
		d, err := scanDetection(rows)
		if err != nil {
			return nil, fmt.Errorf("detections since %d: %w", version, classify(err))
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("detections since %d: %w", version, classify(err))
	}
	return out, nil
}

// DetectionsSince is the in-memory equivalent.
func (m *Memory) DetectionsSince(_ context.Context, version uint64, limit int) ([]DetectionRow, error) {
	m.mu.Lock()
	var out []DetectionRow
	for _, d := range m.detections {
		if d.Version > version {
			out = append(out, d)
		}
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b DetectionRow) int {
		if a.Version != b.Version {
			if a.Version < b.Version {
				return -1
			}
			return 1
		}
		return strings.Compare(a.DetectionID, b.DetectionID)
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
