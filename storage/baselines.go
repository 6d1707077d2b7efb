package storage

import (
	"context"
	"fmt"
	"time"
)

// BaselineStore keeps the detector's learned state, one opaque snapshot
// per Kafka partition. Implementations are goroutine-safe.
type BaselineStore interface {
	// SaveBaseline replaces partition's snapshot.
	SaveBaseline(ctx context.Context, partition int32, state []byte) error
	// LoadBaselines returns the newest snapshot of every partition.
	LoadBaselines(ctx context.Context) (map[int32][]byte, error)
}

// SaveBaseline writes a new snapshot of partition.
func (c *ClickHouse) SaveBaseline(ctx context.Context, partition int32, state []byte) error {
	return c.insertRow(ctx, "baselines", "partition, saved_at, state",
		partition, uint64(time.Now().UnixNano()), string(state))
}

// LoadBaselines reads the newest snapshot of every partition.
func (c *ClickHouse) LoadBaselines(ctx context.Context) (map[int32][]byte, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	rows, err := c.conn.Query(ctx, "SELECT partition, state FROM "+c.db+".baselines FINAL")
	if err != nil {
		return nil, fmt.Errorf("load baselines: %w", classify(err))
	}
	defer rows.Close()
	out := map[int32][]byte{}
	for rows.Next() {
		var p int32
		var s string
		if err := rows.Scan(&p, &s); err != nil {
			return nil, fmt.Errorf("load baselines: %w", classify(err))
		}
		out[p] = []byte(s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load baselines: %w", classify(err))
	}
	return out, nil
}

// SaveBaseline keeps a copy of state.
func (m *Memory) SaveBaseline(_ context.Context, partition int32, state []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.baselines == nil {
		m.baselines = map[int32][]byte{}
	}
	m.baselines[partition] = append([]byte(nil), state...)
	return nil
}

// LoadBaselines returns copies of the saved snapshots.
func (m *Memory) LoadBaselines(context.Context) (map[int32][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[int32][]byte, len(m.baselines))
	for p, s := range m.baselines {
		out[p] = append([]byte(nil), s...)
	}
	return out, nil
}
