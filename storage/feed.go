package storage

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/models"
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

// Feed hands detections written to the store, by any replica, to a sink:
// respond and alert replicas act on every partition's detections while
// detect replicas each see only theirs. Detections are delivered at least
// once, in write order; sinks are idempotent per detection id.
type Feed struct {
	Store DetectionFeed
	Sink  consumer.Detections
	// Active, when set, gates delivery: a follower replica keeps its
	// place in the feed but hands nothing on.
	Active func() bool
	Every  time.Duration
	Log    *slog.Logger
}

// Run polls until ctx ends, starting with detections written in the
// lookback before now, so that a restart does not miss what was raised
// while it was down.
func (f *Feed) Run(ctx context.Context, lookback time.Duration) error {
	after := uint64(time.Now().Add(-lookback).UnixNano())
	every := f.Every
	if every <= 0 {
		every = 2 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		rows, err := f.Store.DetectionsSince(ctx, after, 1000)
		if err != nil && ctx.Err() == nil {
			f.Log.Warn("reading new detections failed; retrying", "err", err)
		}
		for _, r := range rows {
			after = max(after, r.Version)
			if f.Active != nil && !f.Active() {
				continue
			}
			d, err := DetectionFromRow(r)
			if err != nil {
				f.Log.Warn("unreadable detection skipped", "detection_id", r.DetectionID, "err", err)
				continue
			}
			if err := f.Sink.HandleDetection(ctx, d); err != nil {
				f.Log.Warn("detection not handled", "detection_id", d.ID, "err", err)
			}
		}
		if len(rows) == 1000 {
			continue // more waiting
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// DetectionSink writes each detection (and each update, which replaces the
// row of the same id) to the detections table.
func DetectionSink(w DetectionWriter) consumer.Detections {
	return consumer.DetectionsFunc(func(ctx context.Context, d models.Detection) error {
		row, err := DetectionToRow(d)
		if err != nil {
			return err
		}
		return w.WriteDetection(ctx, row)
	})
}
