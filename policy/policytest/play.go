// Package policytest plays a realistic mesh with attacks into a store, as
// serve would (scenario -> OTLP -> ingest's decoder -> detect -> storage's
// insert path), and keeps the ground truth a least-privilege suggestion
// is checked against: who really called whom, and who only attacked.
package policytest

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/detect"
	"github.com/meshguard/meshguard/ingest"
	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/scenario"
	"github.com/meshguard/meshguard/storage"
)

// Store is what Play writes to.
type Store interface {
	consumer.Flows
	WriteDetection(ctx context.Context, d storage.DetectionRow) error
}

// Config is one play.
type Config struct {
	Start    time.Time
	Duration time.Duration
	// Learning is detect.learning_period; attacks are spread after it.
	Learning time.Duration
	Scale    float64
	Seed     uint64
	Kinds    []models.DetectionKind
}

// Truth is what the played mesh really did, per destination
// ("namespace/workload") and attested caller principal.
type Truth struct {
	Attacks []scenario.Attack
	Calls   map[string]map[string]*Calls
	// Detections is how many detections the detector raised.
	Detections int
	Flows      int
}

// Calls is one caller's requests to one destination, as the destination
// proxy logged them.
type Calls struct {
	Clean, Attack uint64
	FirstSeen     time.Time
	// CleanPaths are the path templates of its clean requests.
	CleanPaths map[string]bool
}

// Play generates cfg's mesh into store and returns its truth.
func Play(ctx context.Context, store Store, cfg Config) (*Truth, error) {
	attacks, err := scenario.Spread(cfg.Kinds, cfg.Start, cfg.Learning, cfg.Duration-10*time.Minute, 1)
	if err != nil {
		return nil, err
	}
	gen, err := scenario.NewWith(scenario.RealisticMesh(), cfg.Start, cfg.Seed,
		scenario.Options{Dynamics: true, Scale: cfg.Scale, Attacks: attacks})
	if err != nil {
		return nil, err
	}
	truth := &Truth{Attacks: attacks, Calls: map[string]map[string]*Calls{}}
	dcfg := detect.DefaultConfig()
	dcfg.LearningPeriod = cfg.Learning
	det, err := detect.New(dcfg, consumer.DetectionsFunc(func(ctx context.Context, d models.Detection) error {
		row, err := storage.DetectionToRow(d)
		if err != nil {
			return err
		}
		truth.Detections++
		return store.WriteDetection(ctx, row)
	}), nil)
	if err != nil {
		return nil, err
	}
	dec := ingest.NewDecoder(ingest.DecoderConfig{Encoding: ingest.EncodingProto})
	var pending, flows []models.Flow
	var offset int64
	end := cfg.Start.Add(cfg.Duration)
	for gen.Now().Before(end) {
		values, err := scenario.Marshal(gen.Next(10*time.Second), 1<<20)
		if err != nil {
			return nil, err
		}
		for _, v := range values {
			flows, err = dec.Decode(ingest.SignalLogs, v, models.NewFlowIDBase("policytest", 0, offset), flows[:0])
			offset++
			if err != nil {
				return nil, fmt.Errorf("decoding generated telemetry: %w", err)
			}
			pending = append(pending, flows...)
		}
		slices.SortFunc(pending, func(a, b models.Flow) int { return cmp.Compare(a.TimestampMs, b.TimestampMs) })
		if err := det.ConsumeFlows(ctx, pending); err != nil {
			return nil, err
		}
		truth.observe(pending)
		if len(pending) >= 20_000 || !gen.Now().Before(end) {
			if err := store.ConsumeFlows(ctx, pending); err != nil {
				return nil, err
			}
			truth.Flows += len(pending)
			pending = pending[:0]
		}
	}
	if err := det.Flush(ctx); err != nil {
		return nil, err
	}
	return truth, nil
}

// observe files each destination-side, attested flow under its caller.
func (t *Truth) observe(flows []models.Flow) {
	for i := range flows {
		f := &flows[i]
		if f.Reporter != models.ReporterDestination || f.TLS != models.TLSMutual || f.Source.Principal == "" || f.Destination.Workload == "" {
			continue
		}
		dst := f.Destination.Namespace + "/" + f.Destination.Workload
		m := t.Calls[dst]
		if m == nil {
			m = map[string]*Calls{}
			t.Calls[dst] = m
		}
		c := m[f.Source.Principal]
		if c == nil {
			c = &Calls{FirstSeen: f.Time(), CleanPaths: map[string]bool{}}
			m[f.Source.Principal] = c
		}
		if t.attack(f) {
			c.Attack += uint64(f.Count)
		} else {
			c.Clean += uint64(f.Count)
			c.CleanPaths[f.PathTemplate] = true
		}
		if f.Time().Before(c.FirstSeen) {
			c.FirstSeen = f.Time()
		}
	}
}

// attack reports whether f is from an attack's source, to its
// destination (any, for a scan), while it ran.
func (t *Truth) attack(f *models.Flow) bool {
	src := f.Source.Namespace + "/" + f.Source.Workload
	dst := f.Destination.Namespace + "/" + f.Destination.Workload
	for _, a := range t.Attacks {
		if a.Source == src && (a.Destination == "" || a.Destination == dst) && a.Active(f.Time()) {
			return true
		}
	}
	return false
}
