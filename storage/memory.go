package storage

import (
	"context"
	"sync"

	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/models"
)

// Memory is an in-memory store for tests and the demo: a consumer.Flows,
// DetectionWriter and ActionWriter, safe for concurrent use. It keeps the
// newest flows up to a fixed capacity, dropping (and counting) the oldest,
// every detection's newest version, and every action.
type Memory struct {
	mu         sync.Mutex
	flows      []models.Flow // ring buffer, len == capacity once full
	next       int           // where the next flow goes once full
	dropped    uint64
	detections map[string]DetectionRow
	actions    []ActionRow
	baselines  map[int32]Baseline
}

// NewMemory returns a store that keeps at most capacity flows (at least 1).
func NewMemory(capacity int) *Memory {
	return &Memory{
		flows:      make([]models.Flow, 0, max(capacity, 1)),
		detections: map[string]DetectionRow{},
	}
}

// ConsumeFlows copies flows in; it never fails.
func (m *Memory) ConsumeFlows(_ context.Context, flows []models.Flow) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := cap(m.flows)
	if len(flows) > c {
		// Only the newest c can stay; the rest pass straight through.
		m.dropped += uint64(len(flows) - c)
		flows = flows[len(flows)-c:]
	}
	if room := c - len(m.flows); room > 0 {
		n := min(room, len(flows))
		m.flows = append(m.flows, flows[:n]...)
		flows = flows[n:]
	}
	for len(flows) > 0 {
		n := copy(m.flows[m.next:], flows)
		m.dropped += uint64(n)
		m.next = (m.next + n) % c
		flows = flows[n:]
	}
	return nil
}

// Flows returns a copy of the flows kept, oldest first.
func (m *Memory) Flows() []models.Flow {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]models.Flow, 0, len(m.flows))
	out = append(out, m.flows[m.next:]...)
	return append(out, m.flows[:m.next]...)
}

// Len returns how many flows are kept.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.flows)
}

// Dropped returns how many flows were dropped to stay within capacity.
func (m *Memory) Dropped() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dropped
}

// DistinctFlowIDs returns how many different flow ids are kept: fewer
// than Len when a batch was delivered twice.
func (m *Memory) DistinctFlowIDs() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := make(map[models.FlowID]struct{}, len(m.flows))
	for i := range m.flows {
		seen[m.flows[i].ID] = struct{}{}
	}
	return len(seen)
}

// EdgeTotals returns the totals of every edge over the flows kept,
// counted as edge_minute counts them (both reporters included).
func (m *Memory) EdgeTotals() map[models.Edge]EdgeCounts {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[models.Edge]EdgeCounts{}
	for i := range m.flows {
		f := &m.flows[i]
		e := f.Edge()
		c := out[e]
		c.Add(f)
		out[e] = c
	}
	return out
}

// WriteDetection keeps d unless a higher version of it is kept already,
// as the detections table does once merged.
func (m *Memory) WriteDetection(_ context.Context, d DetectionRow) error {
	d, err := prepareDetection(d)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.detections[d.DetectionID]; !ok || d.Version >= old.Version {
		m.detections[d.DetectionID] = d
	}
	return nil
}

// Detection returns the newest version of detection id.
func (m *Memory) Detection(_ context.Context, id string) (DetectionRow, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.detections[id]
	return d, ok, nil
}

// WriteAction appends a.
func (m *Memory) WriteAction(_ context.Context, a ActionRow) error {
	if a.ActionID == "" {
		return consumer.Permanent(errEmptyActionID)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.actions = append(m.actions, a)
	return nil
}

// Actions returns a copy of the actions, in the order written.
func (m *Memory) Actions() []ActionRow {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]ActionRow(nil), m.actions...)
}
