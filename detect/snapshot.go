package detect

import (
	"bytes"
	"context"
	"encoding/gob"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/storage"
)

// The snapshot format: gob of exported mirrors of the shard state.
// Periodic saves leave open windows out: a crash loses at most
// AllowedLateness of counting, never a baseline. Releases (a rebalance, a
// clean shutdown) keep them (window_snapshot.go).
const snapshotVersion = 1

type snapEdge struct {
	Key     models.Edge
	Base    [edgeFeatures]models.Series
	First   int64
	Last    int64
	Suspect int64
	Paths   []uint32
	Methods uint16
	Peak    float32
	// MTLSSeen is absent from snapshots written before TLS had three
	// states: gob leaves it false, so those edges relearn it.
	MTLSSeen bool
	// RunPeak and RunWindows are the run of surprising windows whose
	// peak is not learned yet (learn.go, holdPeak): a restart or a
	// hand-off in the middle of a batch job's burst would otherwise never
	// learn it, and its next burst would look like a flood. Absent from
	// older snapshots: no run.
	RunPeak    float32
	RunWindows uint8
}

type snapNode struct {
	Key       models.EndpointID
	Base      [models.NumFeatures]models.Series
	First     int64
	Last      int64
	Principal string
	Seasonal  []models.Series
	Callers   []string
	Calls     []string
	Paths     []uint32
}

type snapShard struct {
	Version  int
	MaxTs    int64
	ClosedTo int64
	Edges    []snapEdge
	Sources  []snapNode
	Dests    []snapNode
	// Disorder is the shard's measured lateness, so that a partition
	// handed to another replica closes its windows when it would have
	// here. Absent from older snapshots: gob leaves it empty, and the
	// shard allows the most lateness until it measured again.
	Disorder  []int64
	DisorderN int
	// Position, Windows, Active, Early and Incidents are set in releases
	// only (window_snapshot.go).
	Position  string
	Windows   []snapWindow
	Active    []snapActive
	Early     []snapEarly
	Incidents []snapIncident
}

func (s *shard) snapshot() snapShard {
	out := snapShard{Version: snapshotVersion, MaxTs: s.maxTs, ClosedTo: s.closedTo}
	out.Edges = make([]snapEdge, 0, len(s.edges))
	for k, e := range s.edges {
		out.Edges = append(out.Edges, snapEdge{k, e.base, e.firstMs, e.lastMs, e.suspectUntil, e.paths, e.methods, e.peak, e.mtlsSeen, e.runPeak, e.runWindows})
	}
	node := func(m map[models.EndpointID]*nodeState) []snapNode {
		ns := make([]snapNode, 0, len(m))
		for k, n := range m {
			sn := snapNode{Key: k, Base: n.base, First: n.firstMs, Last: n.lastMs, Principal: n.principal,
				Callers: slices.Collect(maps.Keys(n.callers)), Calls: slices.Collect(maps.Keys(n.calls)),
				Paths: slices.Collect(maps.Keys(n.paths))}
			if n.seasonal != nil {
				sn.Seasonal = n.seasonal[:]
			}
			ns = append(ns, sn)
		}
		return ns
	}
	out.Sources, out.Dests = node(s.sources), node(s.dests)
	out.Disorder, out.DisorderN = s.disorder.ring[:s.disorder.n], s.disorder.n
	return out
}

func (s *shard) restore(in snapShard) {
	s.maxTs, s.closedTo = in.MaxTs, in.ClosedTo
	// A snapshot saved while a future-dated flow held the watermark would
	// blind the partition again after every restart: its event time
	// starts over instead (the baselines are kept).
	if horizon := s.det.now().Add(s.det.cfg.MaxFuture).UnixMilli(); s.maxTs > horizon || s.closedTo > horizon {
		s.det.log.Warn("restored watermark is in the future; starting this partition's event time over",
			"partition", s.partition, "event_time", time.UnixMilli(s.maxTs).UTC(), "max_future", s.det.cfg.MaxFuture)
		s.maxTs, s.closedTo = 0, 0
	}
	for _, e := range in.Edges {
		s.edges[e.Key] = &edgeState{base: e.Base, firstMs: e.First, lastMs: e.Last, suspectUntil: e.Suspect, paths: e.Paths, methods: e.Methods, peak: e.Peak, mtlsSeen: e.MTLSSeen, runPeak: e.RunPeak, runWindows: e.RunWindows}
	}
	node := func(dst map[models.EndpointID]*nodeState, src []snapNode) {
		for _, sn := range src {
			n := &nodeState{base: sn.Base, firstMs: sn.First, lastMs: sn.Last, principal: sn.Principal,
				callers: map[string]struct{}{}, calls: map[string]struct{}{}, paths: map[uint32]struct{}{}}
			for _, c := range sn.Callers {
				n.callers[c] = struct{}{}
			}
			for _, c := range sn.Calls {
				n.calls[c] = struct{}{}
			}
			for _, p := range sn.Paths {
				n.paths[p] = struct{}{}
			}
			if len(sn.Seasonal) == 168 {
				n.seasonal = new([168]models.Series)
				copy(n.seasonal[:], sn.Seasonal)
			}
			dst[sn.Key] = n
		}
	}
	node(s.sources, in.Sources)
	node(s.dests, in.Dests)
	if n := min(in.DisorderN, len(in.Disorder), lateWindows); n > 0 {
		copy(s.disorder.ring[:], in.Disorder[:n])
		s.disorder.n = n
	}
}

// encodeShard is the stored form of a shard's snapshot.
func encodeShard(sh *shard) ([]byte, error) {
	return encodeSnapshot(sh, sh.snapshot())
}

func encodeSnapshot(sh *shard, snap snapShard) ([]byte, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(snap); err != nil {
		return nil, fmt.Errorf("encode baselines of partition %d: %w", sh.partition, err)
	}
	return buf.Bytes(), nil
}

// decodeShard reads a stored snapshot; false for an older format (the
// warm start from edge_minute covers it).
func decodeShard(p int32, b []byte) (snapShard, bool, error) {
	var in snapShard
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&in); err != nil {
		return in, false, fmt.Errorf("baselines of partition %d are unreadable: %w", p, err)
	}
	return in, in.Version == snapshotVersion, nil
}

// Save writes every shard's snapshot to store.
func (d *Detector) Save(ctx context.Context, store storage.BaselineStore) error {
	// One save at a time with hand-offs: a periodic save encoded before a
	// partition was released and written after would bury the release.
	d.saveMu.Lock()
	defer d.saveMu.Unlock()
	d.mu.Lock()
	snaps := map[int32][]byte{}
	var err error
	for p, sh := range d.shards {
		var b []byte
		if b, err = encodeShard(sh); err != nil {
			break
		}
		snaps[p] = b
	}
	d.mu.Unlock()
	if err != nil {
		return err
	}
	for p, b := range snaps {
		if err := store.SaveBaseline(ctx, p, b); err != nil {
			return fmt.Errorf("save baselines of partition %d: %w", p, err)
		}
	}
	return nil
}

// Restore loads every saved shard. Call before the first ConsumeFlows.
func (d *Detector) Restore(ctx context.Context, store storage.BaselineStore) (edges int, err error) {
	snaps, err := store.LoadBaselines(ctx)
	if err != nil {
		return 0, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for p, b := range snaps {
		in, ok, err := decodeShard(p, b)
		if err != nil {
			return edges, err
		}
		if !ok {
			continue
		}
		d.shard(p).restore(in)
		edges += len(in.Edges)
	}
	return edges, nil
}

// RunSaver saves the baselines every interval and once more when ctx
// ends, so that a restart forgets at most one interval of learning.
func (d *Detector) RunSaver(ctx context.Context, store storage.BaselineStore, every time.Duration, log *slog.Logger) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			err := d.Save(sctx, store)
			cancel()
			if err != nil {
				log.Warn("baselines not saved at shutdown", "err", err)
			}
			return nil
		case <-t.C:
			if err := d.Save(ctx, store); err != nil {
				log.Warn("baselines not saved; retrying next interval", "err", err)
			}
		}
	}
}

// WarmStart seeds baselines from edge_minute history, for edges a shard
// has no saved state for: per-minute totals become per-window observations
// (a minute's count spread evenly over its windows), both reporters folded
// into one count per feature as in live windows.
func (d *Detector) WarmStart(rows []storage.EdgeMinute) int {
	type key struct {
		e models.Edge
		m int64
	}
	per := map[key]*merged{}
	var keys []key
	for _, r := range rows {
		var f models.Flow
		f.Source = models.Source{Principal: r.SourcePrincipal, Workload: r.SourceWorkload, Namespace: r.SourceNamespace}
		if ip, err := parseAddr(r.SourceIP); err == nil {
			f.Source.IP = ip
		}
		f.Destination = models.Destination{Workload: r.DestinationWorkload, Namespace: r.DestinationNamespace, Service: r.DestinationService}
		k := key{f.Edge(), r.Minute.UnixMilli()}
		m := per[k]
		if m == nil {
			m = &merged{}
			per[k] = m
			keys = append(keys, k)
		}
		m.requests = max(m.requests, r.Requests)
		m.c4xx = max(m.c4xx, r.Responses4xx)
		m.auth = max(m.auth, r.Responses401+r.Responses403)
		m.c5xx = max(m.c5xx, r.Responses5xx)
		m.bytesOut = max(m.bytesOut, r.BytesReceived)
		m.bytesIn = max(m.bytesIn, r.BytesSent)
		m.latencyP95 = max(m.latencyP95, r.DurationP90)
	}
	slices.SortFunc(keys, func(a, b key) int { return int(a.m - b.m) })
	perMinute := max(1, int64(time.Minute)/int64(d.cfg.Window))
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.warm == nil {
		d.warm = map[models.Edge]*edgeState{}
	}
	for _, k := range keys {
		m := per[k]
		st := d.warm[k.e]
		if st == nil {
			st = &edgeState{firstMs: k.m, lastMs: k.m - d.windowMs}
			d.warm[k.e] = st
		}
		if gap := (k.m-st.lastMs)/d.windowMs - 1; gap > 0 {
			for f := range st.base {
				d.model.catchUp(&st.base[f], gap)
			}
		}
		div := float64(perMinute)
		x := [edgeFeatures]float64{float64(m.requests) / div, float64(m.c4xx) / div, float64(m.auth) / div,
			float64(m.c5xx) / div, float64(m.bytesOut) / div, float64(m.bytesIn) / div, 0, m.latencyP95}
		for i := int64(0); i < perMinute; i++ {
			for f := range x {
				d.model.Learn(&st.base[f], x[f])
			}
		}
		st.learnPeak(x[models.FeatRequests], max(1, (k.m-st.lastMs)/d.windowMs))
		st.lastMs = k.m + (perMinute-1)*d.windowMs
	}
	if d.warmNodes == nil {
		d.warmNodes = map[models.EndpointID]warmNode{}
	}
	for e, st := range d.warm {
		for _, ep := range []models.EndpointID{e.Source, e.Destination} {
			if n, ok := d.warmNodes[ep]; !ok || st.firstMs < n.firstMs {
				n.firstMs = st.firstMs
				d.warmNodes[ep] = n
			}
		}
		n := d.warmNodes[e.Destination]
		n.callers = append(n.callers, peerGroup(e.Source))
		d.warmNodes[e.Destination] = n
		n = d.warmNodes[e.Source]
		n.calls = append(n.calls, peerGroup(e.Destination))
		d.warmNodes[e.Source] = n
	}
	return len(d.warm)
}

func parseAddr(s string) (netip.Addr, error) { return netip.ParseAddr(s) }
