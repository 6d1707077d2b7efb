package detect

import (
	"context"
	"encoding/hex"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/models"
)

// Detector windows flows by event time, scores every window against the
// baselines and raises detections. It implements consumer.Flows:
// put it last in a consumer.FanoutFlows, after the store, because it never
// fails a batch (a redelivered batch would be counted twice).
//
// State is sharded by the Kafka partition each flow arrived on, so that
// replicas of one consumer group split the work and a partition's windows
// close on that partition's own event time. Windows close when the
// shard's watermark (newest event time minus AllowedLateness) passes their
// end, so replaying a day at any speed gives the same detections as live.
//
// ConsumeFlows and Flush may be called from one goroutine at a time; the
// read-only accessors are safe from any goroutine.
type Detector struct {
	cfg      Config
	model    Model
	sink     consumer.Detections
	log      *slog.Logger
	now      func() time.Time
	windowMs int64
	strict   map[string]bool

	mu     sync.Mutex
	shards map[int32]*shard
	// saveMu orders saves of snapshots (periodic and released); handoff
	// is set by WithHandoff (handoff.go).
	saveMu  sync.Mutex
	handoff *handoff
	// warm and warmNodes hold what WarmStart learned from history; shards
	// copy an entry the first time they see its edge or node.
	warm      map[models.Edge]*edgeState
	warmNodes map[models.EndpointID]warmNode

	stats struct {
		flows, late, future, windows, raised, updated, absorbed, sinkErrors atomic.Int64
		early, earlyUnconfirmed                                             atomic.Int64
		handedOver, handoffTimeouts, handoffErrors, handoffWaited           atomic.Int64
	}
}

// Stats is a snapshot of the detector's counters.
type Stats struct {
	Flows      int64 // flows counted into windows
	Late       int64 // flows older than their shard's watermark, not counted
	Future     int64 // flows dated more than MaxFuture ahead of the wall clock, not counted
	Windows    int64 // windows closed, summed over shards
	Raised     int64 // new detections
	Updated    int64 // updates of ongoing detections
	Absorbed   int64 // first-seen edges folded into the scan probing them
	SinkErrors int64
	Edges      int64 // edges with a baseline
	// Early counts raises from windows still open (early.go), new or
	// updates; the close of their window confirms them without counting
	// them again in Raised or Updated.
	Early int64
	// EarlyUnconfirmed counts early raises their window's close did not
	// raise again; they stand as raised early.
	EarlyUnconfirmed int64
	// HandedOver counts partitions assigned to this replica that resumed
	// from the state their previous owner released (handoff.go);
	// HandoffTimeouts those that waited detect's hand-off wait for a
	// release that did not come and resumed from the newest periodic save
	// (or nothing); HandoffErrors snapshots not saved or not readable;
	// HandoffWaited sums the waits.
	HandedOver, HandoffTimeouts, HandoffErrors int64
	HandoffWaited                              time.Duration
}

// Option changes a Detector's defaults.
type Option func(*Detector)

// WithClock sets the wall clock used for detected_at (tests, replays).
func WithClock(now func() time.Time) Option { return func(d *Detector) { d.now = now } }

// WithModel replaces the statistical model's parameters.
func WithModel(m Model) Option { return func(d *Detector) { d.model = m } }

// New builds a detector from a validated config. sink may be nil.
func New(cfg Config, sink consumer.Detections, log *slog.Logger, opts ...Option) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if sink == nil {
		sink = consumer.DetectionsFunc(func(context.Context, models.Detection) error { return nil })
	}
	d := &Detector{
		cfg: cfg, model: DefaultModel(), sink: sink, log: log, now: time.Now,
		windowMs: cfg.Window.Milliseconds(),
		strict:   map[string]bool{},
		shards:   map[int32]*shard{},
	}
	for _, ns := range cfg.StrictMTLSNamespaces {
		d.strict[ns] = true
	}
	for _, o := range opts {
		o(d)
	}
	return d, nil
}

// Stats returns the counters.
func (d *Detector) Stats() Stats {
	s := Stats{
		Flows: d.stats.flows.Load(), Late: d.stats.late.Load(), Future: d.stats.future.Load(), Windows: d.stats.windows.Load(),
		Raised: d.stats.raised.Load(), Updated: d.stats.updated.Load(), Absorbed: d.stats.absorbed.Load(), SinkErrors: d.stats.sinkErrors.Load(),
		Early: d.stats.early.Load(), EarlyUnconfirmed: d.stats.earlyUnconfirmed.Load(),
		HandedOver: d.stats.handedOver.Load(), HandoffTimeouts: d.stats.handoffTimeouts.Load(),
		HandoffErrors: d.stats.handoffErrors.Load(), HandoffWaited: time.Duration(d.stats.handoffWaited.Load()),
	}
	d.mu.Lock()
	for _, sh := range d.shards {
		s.Edges += int64(len(sh.edges))
	}
	d.mu.Unlock()
	return s
}

// ConsumeFlows counts flows into their windows and closes every window
// the watermark has passed. Flows dated more than MaxFuture ahead of the
// wall clock are counted as Future and skipped, so that no record can
// push a watermark past the windows real traffic is still filling. It
// never returns an error: bad flows are counted, sink failures logged.
func (d *Detector) ConsumeFlows(ctx context.Context, flows []models.Flow) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	horizon := now.Add(d.cfg.MaxFuture).UnixMilli()
	var sh *shard
	touched := make(map[*shard]struct{}, 1)
	for i := range flows {
		f := &flows[i]
		if f.TimestampMs > horizon {
			d.stats.future.Add(1)
			continue
		}
		if sh == nil || sh.partition != f.Partition {
			sh = d.shard(f.Partition)
			touched[sh] = struct{}{}
		}
		sh.add(f)
	}
	for sh := range touched {
		sh.lastWall = now
		sh.advance(ctx, sh.maxTs-sh.latenessMs())
		if d.cfg.EarlyFiring {
			sh.fireEarly(ctx, now)
		}
	}
	return nil
}

// Tick closes the windows of partitions that went quiet: with no new
// flows a partition's event time stands still, and an attack's last window
// would wait for traffic to be reported. A shard idle for IdleAfter of
// wall-clock time has its event time carried forward by the idle time, so
// its windows close by the wall clock. Live runs call Tick every second
// (RunTicker); replays never need to.
func (d *Detector) Tick(ctx context.Context) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	for _, sh := range d.shards {
		if sh.lastWall.IsZero() || now.Sub(sh.lastWall) < d.cfg.IdleAfter {
			continue
		}
		sh.advance(ctx, sh.maxTs+now.Sub(sh.lastWall).Milliseconds()-sh.latenessMs())
	}
}

// RunTicker calls Tick every second, or every window if shorter, until
// ctx ends.
func (d *Detector) RunTicker(ctx context.Context) error {
	t := time.NewTicker(min(d.cfg.Window, time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			d.Tick(ctx)
		}
	}
}

// Flush closes every open window of every shard, as at the end of a
// replay. Later flows for those windows count as late.
func (d *Detector) Flush(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, sh := range d.shards {
		sh.advance(ctx, sh.maxTs+d.windowMs)
	}
	return nil
}

func (d *Detector) shard(p int32) *shard {
	sh, ok := d.shards[p]
	if !ok {
		sh = d.newShard(p)
		d.shards[p] = sh
	}
	return sh
}

func (d *Detector) newShard(p int32) *shard {
	return &shard{
		det: d, partition: p,
		windows:   map[int64]*window{},
		edges:     map[models.Edge]*edgeState{},
		sources:   map[models.EndpointID]*nodeState{},
		dests:     map[models.EndpointID]*nodeState{},
		active:    map[activeKey]*models.Detection{},
		early:     map[activeKey]earlyMark{},
		incidents: map[models.EndpointID]*incident{},
	}
}

// shard is the detector state of one Kafka partition.
type shard struct {
	det       *Detector
	partition int32
	maxTs     int64     // newest event time seen
	lastWall  time.Time // wall-clock time of the last flow
	lastEarly time.Time // wall-clock time the open window was last scored
	disorder  disorder  // how far behind maxTs records arrive
	closedTo  int64     // end of the newest closed window: older flows are late
	windows   map[int64]*window
	cur       *window

	edges   map[models.Edge]*edgeState
	sources map[models.EndpointID]*nodeState
	dests   map[models.EndpointID]*nodeState
	active  map[activeKey]*models.Detection
	// early: detections raised from a window still open (early.go).
	early map[activeKey]earlyMark
	// incidents: the open incident of each attacking source.
	incidents map[models.EndpointID]*incident
}

func (s *shard) add(f *models.Flow) {
	d := s.det
	ts := f.TimestampMs
	if ts < s.maxTs {
		s.disorder.observe(s.maxTs - ts)
	}
	if ts < s.closedTo {
		d.stats.late.Add(1)
		return
	}
	start := ts - mod(ts, d.windowMs)
	w := s.cur
	if w == nil || w.start != start {
		w = s.windows[start]
		if w == nil {
			w = newWindow(start)
			s.windows[start] = w
		}
		s.cur = w
	}
	e := f.Edge()
	a := w.edges[e]
	if a == nil {
		a = &edgeAcc{}
		w.edges[e] = a
	}
	a.add(f)
	if ts > s.maxTs {
		s.maxTs = ts
	}
	d.stats.flows.Add(1)
}

// advance closes, oldest first, every window that ends at or before wm.
func (s *shard) advance(ctx context.Context, wm int64) {
	for {
		var oldest *window
		for _, w := range s.windows {
			if w.start+s.det.windowMs <= wm && (oldest == nil || w.start < oldest.start) {
				oldest = w
			}
		}
		if oldest == nil {
			// Windows the watermark passed are closed even if empty: a flow
			// for one of them now is late.
			if b := wm - mod(wm, s.det.windowMs); b > s.closedTo {
				s.closedTo = b
			}
			return
		}
		delete(s.windows, oldest.start)
		if s.cur == oldest {
			s.cur = nil
		}
		s.close(ctx, oldest)
		s.disorder.roll()
		if end := oldest.start + s.det.windowMs; end > s.closedTo {
			s.closedTo = end
		}
	}
}

// activeKey identifies an ongoing attack: one detection per kind, source
// and destination.
type activeKey struct {
	kind models.DetectionKind
	src  models.EndpointID
	dst  models.EndpointID
}

// raise records a finding of window w: a new detection, or an update of
// the ongoing one with the same key. early: w is still open (early.go);
// the close will raise the same finding again, and counts it once.
func (s *shard) raise(ctx context.Context, w *window, f finding, early bool) {
	d := s.det
	key := activeKey{f.kind, f.src, f.dst}
	wStart, wEnd := time.UnixMilli(w.start).UTC(), time.UnixMilli(w.start+d.windowMs).UTC()
	now := d.now().UTC()
	if scan, ok := s.absorbs(f, wStart); ok {
		if early {
			return // the close folds the probe into the scan
		}
		s.absorb(scan, f, wEnd, now)
		d.stats.absorbed.Add(1)
		s.deliver(ctx, scan)
		return
	}
	det := s.active[key]
	mark, marked := s.early[key]
	wasEarly := marked && mark.start == w.start
	switch {
	case marked && early:
		return // raised already from an open window; its close updates it
	case marked && mark.start > w.start:
		// An older window raises what a newer one raised early (the
		// attack's first records arrived out of order): undo the early
		// raise, which stands as delivered, and go on as a replay would.
		d.stats.earlyUnconfirmed.Add(1)
		det = s.undoEarly(key, mark)
	case wasEarly:
		// The close of the window the early raise came from: start again
		// from the detection as it was before, so the window counts once.
		det = s.undoEarly(key, mark)
	case early:
		m := earlyMark{start: w.start, detectedAt: now}
		if det != nil {
			c := *det
			m.before = &c
		}
		s.early[key] = m
		d.stats.early.Add(1)
	}
	if det != nil && wStart.Sub(det.WindowEnd) <= d.cfg.Hold {
		det.WindowEnd = wEnd
		det.UpdatedAt = now
		det.Updates++
		if f.score > det.Score {
			det.Score = f.score
		}
		if f.severity > det.Severity {
			det.Severity = f.severity
		}
		absorbed := det.Evidence.Absorbed
		det.Evidence = f.evidence
		det.Evidence.Absorbed = absorbed
		if !wasEarly {
			d.stats.updated.Add(1)
		}
	} else {
		det = &models.Detection{
			ID:          detectionID(key, w.start),
			DetectedAt:  now,
			UpdatedAt:   now,
			WindowStart: wStart,
			WindowEnd:   wEnd,
			Kind:        f.kind,
			Severity:    f.severity,
			Score:       f.score,
			Source:      f.source,
			Destination: f.destination,
			Evidence:    f.evidence,
			Updates:     1,
			Partition:   s.partition,
		}
		if wasEarly {
			det.DetectedAt = mark.detectedAt // first raised then
		}
		s.active[key] = det
		if !wasEarly {
			d.stats.raised.Add(1)
		}
	}
	if early {
		det.Evidence.Summary = "window still open: " + det.Evidence.Summary
	}
	if inc := s.join(key, det); inc.id == det.ID {
		det.Evidence.Parts = s.partsOf(inc)
	}
	s.deliver(ctx, det)
}

// undoEarly puts the detection of key back as it was before its early
// raise and returns it (nil: the early raise created it).
func (s *shard) undoEarly(key activeKey, mark earlyMark) *models.Detection {
	delete(s.early, key)
	if mark.before == nil {
		delete(s.active, key)
	} else {
		s.active[key] = mark.before
	}
	return mark.before
}

func (s *shard) deliver(ctx context.Context, det *models.Detection) {
	d := s.det
	if err := d.sink.HandleDetection(ctx, *det); err != nil {
		d.stats.sinkErrors.Add(1)
		d.log.Warn("detection not delivered", "detection_id", det.ID, "kind", det.Kind, "err", err)
	}
}

// expireActive forgets ongoing detections that have been quiet for Hold.
func (s *shard) expireActive(now int64) {
	for k, det := range s.active {
		if time.UnixMilli(now).Sub(det.WindowEnd) > s.det.cfg.Hold {
			delete(s.active, k)
		}
	}
	s.expireIncidents(time.UnixMilli(now))
}

// detectionID is deterministic, so a replay raises the same ids.
func detectionID(k activeKey, start int64) string {
	h := xxhash.New()
	h.WriteString(string(k.kind))
	for _, ep := range []models.EndpointID{k.src, k.dst} {
		h.WriteString("\x00" + ep.Kind.String() + "\x00" + ep.Namespace + "\x00" + ep.Name + "\x00" + ep.IP.String())
	}
	var b [8]byte
	for i := range b {
		b[i] = byte(start >> (8 * i))
	}
	h.Write(b[:])
	sum := h.Sum(nil)
	h.Write([]byte("meshguard"))
	sum = h.Sum(sum)
	return hex.EncodeToString(sum)
}

// mod is the non-negative remainder, so windows align for any event time.
func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

type warmNode struct {
	firstMs int64
	callers []string
	calls   []string
}
