package detect

import (
	"errors"
	"fmt"
	"time"
)

// Config is the `detect:` section.
type Config struct {
	// Window is the tumbling event-time window flows are counted in.
	Window time.Duration `yaml:"window"`
	// LearningPeriod is how much event time an edge, source or destination
	// must have been seen for before statistical detectors judge it.
	LearningPeriod time.Duration `yaml:"learning_period"`
	// AllowedLateness is how far behind the newest event time a flow may
	// arrive and still be counted in its own window, at most. Later flows
	// are counted as late and dropped from detection (they are still
	// stored). Each partition allows less when its records show less
	// disorder (MinLateness).
	AllowedLateness time.Duration `yaml:"allowed_lateness"`
	// MinLateness is the least lateness a partition allows. A partition
	// allows twice the largest delay behind its newest event time that
	// its records showed in its last 30 windows, between MinLateness and
	// AllowedLateness, and AllowedLateness for its first 6 windows; a
	// window closes that much after its end. Set it to AllowedLateness
	// for a fixed lateness.
	MinLateness time.Duration `yaml:"min_lateness"`
	// IdleAfter is how long of wall-clock time a partition may send
	// nothing before its event time is carried forward by the wall clock,
	// so that its last windows close without waiting for traffic.
	IdleAfter time.Duration `yaml:"idle_after"`
	// EarlyFiring scores a live partition's open window every second and
	// raises at once what is already beyond doubt (a first-seen edge from
	// an established source, plaintext into a strict namespace, a surge
	// EarlyFactor times over the threshold); the detection keeps its id
	// and is updated when the window closes.
	EarlyFiring bool `yaml:"early_firing"`
	// EarlyFactor is how many times the threshold a surge's score must
	// reach to be raised before its window closes.
	EarlyFactor float64 `yaml:"early_factor"`
	// MaxFuture is how far ahead of the wall clock an event time may be
	// and still count: a flow dated later (a skewed clock, or a forged
	// record dated 2098) would move its partition's watermark past every
	// real window, making them all late. Such flows are not counted and
	// never move a watermark.
	MaxFuture time.Duration `yaml:"max_future"`
	// StrictMTLSNamespaces are namespaces where any plaintext request is a
	// detection from the first window (Istio PeerAuthentication STRICT).
	StrictMTLSNamespaces []string `yaml:"strict_mtls_namespaces"`
	// Threshold is the surprise (-log10 of the tail probability) a
	// feature must reach to count as anomalous; 8 is one in 10^8, which
	// keeps false detections under one per 1000 service-hours with a dozen
	// features tested every 10 s.
	Threshold float64 `yaml:"threshold"`
	// Hold is how long an attack may pause and still update the same
	// detection rather than raise a new one.
	Hold time.Duration `yaml:"hold"`
	// History is how far back start-up warm-starts baselines from
	// ClickHouse's edge_minute table; 0 disables the warm start.
	History time.Duration `yaml:"history"`
}

// DefaultConfig is what an empty `detect:` section means.
func DefaultConfig() Config {
	return Config{
		Window:          10 * time.Second,
		LearningPeriod:  time.Hour,
		AllowedLateness: 20 * time.Second,
		MinLateness:     2 * time.Second,
		IdleAfter:       5 * time.Second,
		EarlyFiring:     true,
		EarlyFactor:     3,
		MaxFuture:       2 * time.Minute,
		Threshold:       8,
		Hold:            5 * time.Minute,
		History:         3 * time.Hour,
	}
}

// Validate reports every problem at once, each with its key and the fix.
func (c *Config) Validate() error {
	var errs []error
	if c.Window < time.Second || c.Window > time.Hour {
		errs = append(errs, fmt.Errorf("detect.window: %s; use 1s to 1h (default 10s)", c.Window))
	}
	if c.LearningPeriod < 0 {
		errs = append(errs, fmt.Errorf("detect.learning_period: %s; use 0 or a positive duration (default 1h)", c.LearningPeriod))
	}
	if c.AllowedLateness < 0 || c.AllowedLateness > 24*time.Hour {
		errs = append(errs, fmt.Errorf("detect.allowed_lateness: %s; use 0 to 24h (default 20s)", c.AllowedLateness))
	}
	if c.MinLateness < 0 || c.MinLateness > c.AllowedLateness {
		errs = append(errs, fmt.Errorf("detect.min_lateness: %s; use 0 to detect.allowed_lateness (%s) (default 2s)", c.MinLateness, c.AllowedLateness))
	}
	if c.IdleAfter < 100*time.Millisecond || c.IdleAfter > time.Hour {
		errs = append(errs, fmt.Errorf("detect.idle_after: %s; use 100ms to 1h (default 5s)", c.IdleAfter))
	}
	if c.EarlyFactor < 1 || c.EarlyFactor > 100 {
		errs = append(errs, fmt.Errorf("detect.early_factor: %v; use 1 to 100 (default 3: a surge three times over detect.threshold)", c.EarlyFactor))
	}
	if c.MaxFuture <= 0 || c.MaxFuture > 24*time.Hour {
		errs = append(errs, fmt.Errorf("detect.max_future: %s; use more than 0 and at most 24h (default 2m)", c.MaxFuture))
	}
	if c.Threshold < 2 || c.Threshold > 100 {
		errs = append(errs, fmt.Errorf("detect.threshold: %v; use 2 to 100 (default 8, a one in 10^8 surprise)", c.Threshold))
	}
	if c.Hold < c.Window {
		errs = append(errs, fmt.Errorf("detect.hold: %s; use at least detect.window (default 5m)", c.Hold))
	}
	if c.History < 0 {
		errs = append(errs, fmt.Errorf("detect.history: %s; use 0 (no warm start) or a positive duration (default 3h)", c.History))
	}
	for i, ns := range c.StrictMTLSNamespaces {
		if ns == "" {
			errs = append(errs, fmt.Errorf("detect.strict_mtls_namespaces[%d]: empty; remove it or name a namespace", i))
		}
	}
	return errors.Join(errs...)
}
