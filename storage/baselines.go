package storage

import (
	"context"
	"fmt"
	"time"
)

// BaselineStore keeps the detector's learned state, one opaque snapshot
// per Kafka partition. Implementations are goroutine-safe.
type BaselineStore interface {
	// SaveBaseline replaces partition's snapshot (a periodic save).
	SaveBaseline(ctx context.Context, partition int32, state []byte) error
	// ReleaseBaseline replaces partition's snapshot with the one its
	// owner saved as it gave the partition up: what the next owner waits
	// for (Baseline.Released).
	ReleaseBaseline(ctx context.Context, partition int32, state []byte) error
	// LoadBaselines returns the newest snapshot of every partition.
	LoadBaselines(ctx context.Context) (map[int32][]byte, error)
	// LatestBaselines returns the newest snapshot of every partition,
	// with when and how it was saved.
	LatestBaselines(ctx context.Context) (map[int32]Baseline, error)
}

// Baseline is a partition's newest snapshot.
type Baseline struct {
	State   []byte
	SavedAt time.Time
	// Released: saved by ReleaseBaseline, as its owner let the partition
	// go, so nothing newer is coming from that owner. A periodic save may
	// be behind what its owner holds.
	Released bool
}

// SaveBaseline writes a new snapshot of partition.
func (c *ClickHouse) SaveBaseline(ctx context.Context, partition int32, state []byte) error {
	return c.insertRow(ctx, "baselines", "partition, saved_at, state, released",
		partition, uint64(time.Now().UnixNano()), string(state), uint8(0))
}

// ReleaseBaseline writes partition's snapshot as released.
func (c *ClickHouse) ReleaseBaseline(ctx context.Context, partition int32, state []byte) error {
	return c.insertRow(ctx, "baselines", "partition, saved_at, state, released",
		partition, uint64(time.Now().UnixNano()), string(state), uint8(1))
}

// LoadBaselines reads the newest snapshot of every partition.
func (c *ClickHouse) LoadBaselines(ctx context.Context) (map[int32][]byte, error) {
	all, err := c.LatestBaselines(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[int32][]byte, len(all))
	for p, b := range all {
		out[p] = b.State
	}
	return out, nil
}

// LatestBaselines reads the newest snapshot of every partition. FINAL
// collapses the versions of a partition to the newest saved_at.
func (c *ClickHouse) LatestBaselines(ctx context.Context) (map[int32]Baseline, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	rows, err := c.conn.Query(ctx, "SELECT partition, state, saved_at, released FROM "+c.db+".baselines FINAL")
	if err != nil {
		return nil, fmt.Errorf("load baselines: %w", classify(err))
	}
	defer rows.Close()
	out := map[int32]Baseline{}
	for rows.Next() {
		var (
			p        int32
			s        string
			at       uint64
			released uint8
		)
		if err := rows.Scan(&p, &s, &at, &released); err != nil {
			return nil, fmt.Errorf("load baselines: %w", classify(err))
		}
		out[p] = Baseline{State: []byte(s), SavedAt: time.Unix(0, int64(at)), Released: released != 0}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load baselines: %w", classify(err))
	}
	return out, nil
}

// SaveBaseline keeps a copy of state.
func (m *Memory) SaveBaseline(_ context.Context, partition int32, state []byte) error {
	m.keepBaseline(partition, state, false)
	return nil
}

// ReleaseBaseline keeps a copy of state, marked released.
func (m *Memory) ReleaseBaseline(_ context.Context, partition int32, state []byte) error {
	m.keepBaseline(partition, state, true)
	return nil
}

func (m *Memory) keepBaseline(partition int32, state []byte, released bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.baselines == nil {
		m.baselines = map[int32]Baseline{}
	}
	m.baselines[partition] = Baseline{State: append([]byte(nil), state...), SavedAt: time.Now(), Released: released}
}

// LoadBaselines returns copies of the saved snapshots.
func (m *Memory) LoadBaselines(ctx context.Context) (map[int32][]byte, error) {
	all, _ := m.LatestBaselines(ctx)
	out := make(map[int32][]byte, len(all))
	for p, b := range all {
		out[p] = b.State
	}
	return out, nil
}

// LatestBaselines returns copies of the saved snapshots.
func (m *Memory) LatestBaselines(context.Context) (map[int32]Baseline, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[int32]Baseline, len(m.baselines))
	for p, b := range m.baselines {
		b.State = append([]byte(nil), b.State...)
		out[p] = b
	}
	return out, nil
}
