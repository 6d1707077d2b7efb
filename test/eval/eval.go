package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/meshguard/meshguard/detect"
	"github.com/meshguard/meshguard/identity"
	"github.com/meshguard/meshguard/ingest"
	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/scenario"
)

// Config is one evaluation run.
type Config struct {
	// Start is the event time the mesh starts at; Duration how much event
	// time is played. Attacks are spread over the time after
	// Detect.LearningPeriod (scenario.Spread).
	Start    time.Time
	Duration time.Duration
	Seed     uint64
	// Scale multiplies the benign traffic (scenario.Options.Scale).
	Scale float64
	// Strength of every attack; Kinds the attacks, one each.
	Strength float64
	Kinds    []models.DetectionKind
	// StolenCertificate adds, when Kinds has mtls_downgrade, its second
	// form: identity/loyalty-v1 calling identity/users-v1 with another
	// service account's certificate.
	StolenCertificate bool
	// Partitions spreads flows over this many detector shards by source
	// workload, as Kafka partitions keyed by source would (1: one shard).
	Partitions int
	Detect     detect.Config
	// Step is the event time generated, encoded and decoded at once.
	Step time.Duration
	// Mesh is the mesh played; empty means scenario.RealisticMesh(), or
	// scenario.MixedMesh with Mixed.
	Mesh scenario.Mesh
	// Mixed plays the mixed mesh (scenario.MixedMesh): proxies in the
	// stock text format, the label form and k8sattributes resources,
	// otlp_proto and otlp_json collectors, callers outside the mesh, pod
	// restarts; identities resolved from its pods by identity's resolver;
	// respond deciding on every detection. The attacks gain the
	// compromised leaf (scenario.MixedAttacks).
	Mixed bool
	// Live gives the detector a clock that follows the event time being
	// read (the end of the batch plus half a second) instead of a wall
	// clock far past it, and ticks it after every batch: a partition read
	// as it is written, so early firing and the idle close act as they do
	// in serve on a live mesh.
	Live bool
}

// DefaultConfig is `make eval`: 6 hours of a Wednesday from 09:00 UTC (the
// morning ramp, the afternoon peak), every attack once at strength 1.
func DefaultConfig() Config {
	return Config{
		Start:             time.Date(2026, 11, 18, 9, 0, 0, 0, time.UTC),
		Duration:          6 * time.Hour,
		Seed:              1,
		Scale:             1,
		Strength:          1,
		Kinds:             slices.Clone(models.DetectionKinds),
		StolenCertificate: true,
		Partitions:        1,
		Detect:            detect.DefaultConfig(),
		Step:              time.Second,
	}
}

// Result is the outcome for one injected attack.
type Result struct {
	Attack scenario.Attack
	// Match is the earliest detection of the attack's kind naming its
	// source (and destination), as first delivered; nil when missed.
	Match *models.Detection
	// TTD is from the attack's start to Match's window end.
	TTD     time.Duration
	Windows int
	// Others are the other detections first raised during the attack
	// (from its start to its end plus the grace).
	Others []models.Detection
	// Incidents are the incident ids of the detections the attack
	// explains.
	Incidents []string
}

// FalseDetection is a detection no attack explains.
type FalseDetection struct {
	First, Last models.Detection
}

// Report is what an evaluation measured.
type Report struct {
	Config     Config
	Results    []Result
	Detections int // distinct detection ids
	Deliveries int // HandleDetection calls (updates included)
	False      []FalseDetection
	// Reliability are the reliability events raised (destination
	// outages, low severity, alert only): reported, not false detections
	// of an attack, whether or not the mesh played an outage then.
	Reliability  []FalseDetection
	ServiceHours float64 // after the learning period
	Records      int     // access-log records generated
	Flows        int     // flows decoded
	Detector     detect.Stats
	Wall         time.Duration
	// FalseIncidents are the incidents (detect's incident ids) none of
	// whose detections an attack explains, reliability events aside.
	FalseIncidents []Incident
	// Actions are respond's decisions (mixed mode); Benign the enforced
	// actions whose source or edge no attack explains.
	Actions []actionSeen
	Benign  []actionSeen
	// Resolved counts flows the identity resolver filled a field of;
	// Conflicts those it marked identity_conflict.
	Resolved, Conflicts int
}

// Incident is one incident's detections.
type Incident struct {
	ID         string
	Detections []FalseDetection
	Severity   models.Severity // the highest of its detections
}

// FalseIncidentsPer1000 counts the false incidents of medium or higher
// severity per 1000 service-hours.
func (r *Report) FalseIncidentsPer1000() (int, float64) {
	n := 0
	for _, in := range r.FalseIncidents {
		if in.Severity >= models.SeverityMedium {
			n++
		}
	}
	if r.ServiceHours == 0 {
		return n, 0
	}
	return n, float64(n) / r.ServiceHours * 1000
}

// IncidentsPerAttack is the mean number of incidents the detected attacks
// raised.
func (r *Report) IncidentsPerAttack() float64 {
	var n, det int
	for _, res := range r.Results {
		if res.Match != nil {
			det++
			n += len(res.Incidents)
		}
	}
	if det == 0 {
		return 0
	}
	return float64(n) / float64(det)
}

// FalsePer1000 is false detections per 1000 service-hours.
func (r *Report) FalsePer1000() float64 {
	if r.ServiceHours == 0 {
		return 0
	}
	return float64(len(r.False)) / r.ServiceHours * 1000
}

// recorder is the detector's sink: each detection id once, as first
// delivered and as last updated.
type recorder struct {
	mu         sync.Mutex
	first      map[string]models.Detection
	last       map[string]models.Detection
	order      []string
	deliveries int
	// respond, when set, decides on every delivery, as serve's pipeline
	// hands detections to it.
	respond interface {
		HandleDetection(context.Context, models.Detection) error
	}
	respondErrs int
}

func (r *recorder) HandleDetection(ctx context.Context, d models.Detection) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deliveries++
	if _, ok := r.first[d.ID]; !ok {
		r.first[d.ID] = d
		r.order = append(r.order, d.ID)
	}
	r.last[d.ID] = d
	if r.respond != nil {
		if err := r.respond.HandleDetection(ctx, d); err != nil {
			r.respondErrs++
		}
	}
	return nil
}

// Run plays the scenario through ingest's decoder into the detector and
// matches what it raised against the attacks.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	began := time.Now()
	if cfg.Step <= 0 {
		cfg.Step = time.Second
	}
	cfg.Partitions = max(cfg.Partitions, 1)
	var templates []scenario.Attack
	for _, k := range cfg.Kinds {
		a, err := scenario.DefaultAttack(k)
		if err != nil {
			return nil, err
		}
		a.Strength = cfg.Strength
		templates = append(templates, a)
		if k == models.MTLSDowngrade && cfg.StolenCertificate && !cfg.Mixed {
			templates = append(templates, scenario.Attack{Kind: k, Strength: cfg.Strength, Variant: "principal",
				Source: "identity/loyalty-v1", Destination: "identity/users-v1"})
		}
	}
	if cfg.Mixed {
		for _, a := range scenario.MixedAttacks(cfg.Strength) {
			if slices.Contains(cfg.Kinds, a.Kind) && (a.Kind != models.MTLSDowngrade || cfg.StolenCertificate) {
				templates = append(templates, a)
			}
		}
	}
	attacks, err := scenario.SpreadAttacks(templates, cfg.Start, cfg.Detect.LearningPeriod, cfg.Duration)
	if err != nil {
		return nil, err
	}
	if len(cfg.Mesh.Services) == 0 {
		cfg.Mesh = scenario.RealisticMesh()
		if cfg.Mixed {
			cfg.Mesh = scenario.MixedMesh(cfg.Duration)
		}
	}
	gen, err := scenario.NewWith(cfg.Mesh, cfg.Start, cfg.Seed,
		scenario.Options{Dynamics: true, Scale: cfg.Scale, Attacks: attacks})
	if err != nil {
		return nil, err
	}
	rec := &recorder{first: map[string]models.Detection{}, last: map[string]models.Detection{}}
	// The event time the pipeline has reached: respond's clock, and the
	// detector's when live.
	var eventNow time.Time
	var opts []detect.Option
	if cfg.Live {
		opts = append(opts, detect.WithClock(func() time.Time { return eventNow.Add(500 * time.Millisecond) }))
	}
	det, err := detect.New(cfg.Detect, rec, nil, opts...)
	if err != nil {
		return nil, err
	}
	rep := &Report{Config: cfg}
	var resolver *identity.Resolver
	actions := &actionLog{}
	if cfg.Mixed {
		cl := newCluster(cfg.Mesh, gen.Pods())
		rctx, stop := context.WithCancel(ctx)
		defer stop()
		if resolver, err = startResolver(rctx, cl, cfg.Start, cfg.Mesh.TrustDomain); err != nil {
			return nil, err
		}
		dir, err := os.MkdirTemp("", "meshguard-eval-gitops-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		resp, api, err := newResponder(cl, func() time.Time { return eventNow }, dir, actions)
		if err != nil {
			return nil, err
		}
		defer api.Close()
		rec.respond = resp
	}

	// Generation runs on its own goroutine; encoding, decoding and
	// detection on this one (two cores).
	type batch struct {
		value   []byte
		records int
		at      time.Time // the end of the step it is of
	}
	ch := make(chan batch, 8)
	genCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	genErr := make(chan error, 1)
	end := cfg.Start.Add(cfg.Duration)
	go func() {
		defer close(ch)
		for gen.Now().Before(end) {
			step := min(cfg.Step, end.Sub(gen.Now()))
			var bs []scenario.Batch
			if cfg.Mixed {
				bs = gen.NextBatches(step)
			} else {
				bs = []scenario.Batch{{Logs: gen.Next(step)}}
			}
			for _, b := range bs {
				var v []byte
				var err error
				if b.JSON {
					v, err = (&plog.JSONMarshaler{}).MarshalLogs(b.Logs)
				} else {
					v, err = (&plog.ProtoMarshaler{}).MarshalLogs(b.Logs)
				}
				if err != nil {
					genErr <- err
					return
				}
				select {
				case ch <- batch{v, b.Logs.LogRecordCount(), gen.Now()}:
				case <-genCtx.Done():
					genErr <- genCtx.Err()
					return
				}
			}
		}
		genErr <- nil
	}()

	enc := ingest.EncodingProto
	if cfg.Mixed {
		enc = ingest.EncodingAuto // otlp_proto and otlp_json collectors
	}
	dec := ingest.NewDecoder(ingest.DecoderConfig{Encoding: enc})
	learnedAt := cfg.Start.Add(cfg.Detect.LearningPeriod).UnixMilli()
	active := map[int64]map[string]struct{}{} // hour -> workloads seen
	var flows []models.Flow
	var offset int64
	for b := range ch {
		flows, err = dec.Decode(ingest.SignalLogs, b.value, models.NewFlowIDBase("eval", 0, offset), flows[:0])
		offset++
		if err != nil {
			return nil, fmt.Errorf("decoding generated telemetry: %w", err)
		}
		rep.Records += b.records
		rep.Flows += len(flows)
		eventNow = b.at
		if resolver != nil {
			resolver.Apply(flows)
			for i := range flows {
				if flows[i].Resolved != 0 {
					rep.Resolved++
				}
				if flows[i].IdentityConflict {
					rep.Conflicts++
				}
			}
		}
		slices.SortFunc(flows, func(a, b models.Flow) int { return cmp.Compare(a.TimestampMs, b.TimestampMs) })
		for i := range flows {
			f := &flows[i]
			f.Partition = partitionOf(f, cfg.Partitions)
			if f.TimestampMs >= learnedAt {
				h := (f.TimestampMs - learnedAt) / int64(time.Hour/time.Millisecond)
				seen := active[h]
				if seen == nil {
					seen = map[string]struct{}{}
					active[h] = seen
				}
				if f.Source.Workload != "" {
					seen[f.Source.Namespace+"/"+f.Source.Workload] = struct{}{}
				}
				if f.Destination.Workload != "" {
					seen[f.Destination.Namespace+"/"+f.Destination.Workload] = struct{}{}
				}
			}
		}
		if err := det.ConsumeFlows(ctx, flows); err != nil {
			return nil, err
		}
		if cfg.Live {
			det.Tick(ctx)
		}
	}
	if err := <-genErr; err != nil {
		return nil, err
	}
	if err := det.Flush(ctx); err != nil {
		return nil, err
	}
	rep.Detector = det.Stats()
	rep.Deliveries = rec.deliveries
	rep.Detections = len(rec.order)

	// Service-hours: workloads active in each hour after learning, times
	// the part of that hour played.
	for h, seen := range active {
		from := cfg.Start.Add(cfg.Detect.LearningPeriod + time.Duration(h)*time.Hour)
		played := min(end.Sub(from), time.Hour)
		rep.ServiceHours += float64(len(seen)) * played.Hours()
	}

	m := matcher{gen: gen, window: cfg.Detect.Window, grace: 2*cfg.Detect.Window + cfg.Detect.AllowedLateness, hold: cfg.Detect.Hold}
	explained := map[string]bool{}
	for _, a := range attacks {
		res := Result{Attack: a}
		for _, id := range rec.order {
			d := rec.first[id]
			if m.matches(a, d) && (res.Match == nil || d.WindowEnd.Before(res.Match.WindowEnd)) {
				res.Match = &d
			}
			if m.during(a, d) {
				res.Others = append(res.Others, d)
			}
			if m.explains(a, d) || m.matches(a, d) {
				explained[id] = true
				if in := cmp.Or(d.IncidentID, d.ID); !slices.Contains(res.Incidents, in) {
					res.Incidents = append(res.Incidents, in)
				}
			}
		}
		if res.Match != nil {
			res.TTD = res.Match.WindowEnd.Sub(a.Start)
			res.Windows = int(math.Ceil(float64(res.TTD) / float64(cfg.Detect.Window)))
			res.Others = slices.DeleteFunc(res.Others, func(d models.Detection) bool { return d.ID == res.Match.ID })
		}
		rep.Results = append(rep.Results, res)
	}
	incidents := map[string]*Incident{}
	var incidentOrder []string
	explainedIncident := map[string]bool{}
	for _, id := range rec.order {
		fd := FalseDetection{First: rec.first[id], Last: rec.last[id]}
		switch {
		case slices.Contains(models.ReliabilityKinds, rec.first[id].Kind):
			rep.Reliability = append(rep.Reliability, fd)
			continue
		case !explained[id]:
			rep.False = append(rep.False, fd)
		}
		inID := cmp.Or(fd.Last.IncidentID, fd.First.IncidentID, id)
		if explained[id] {
			explainedIncident[inID] = true
		}
		in := incidents[inID]
		if in == nil {
			in = &Incident{ID: inID}
			incidents[inID] = in
			incidentOrder = append(incidentOrder, inID)
		}
		in.Detections = append(in.Detections, fd)
		in.Severity = max(in.Severity, fd.First.Severity, fd.Last.Severity)
	}
	for _, id := range incidentOrder {
		if !explainedIncident[id] {
			rep.FalseIncidents = append(rep.FalseIncidents, *incidents[id])
		}
	}
	rep.Actions = actions.all
	rep.Benign = benignEnforced(m, attacks, actions.all)
	if rec.respondErrs > 0 {
		return nil, fmt.Errorf("respond failed on %d detections", rec.respondErrs)
	}
	rep.Wall = time.Since(began)
	return rep, nil
}

// partitionOf shards by source workload, as a producer keying messages
// by the caller would.
func partitionOf(f *models.Flow, n int) int32 {
	if n <= 1 {
		return 0
	}
	var h uint32 = 2166136261
	for i := 0; i < len(f.Source.Workload); i++ {
		h = (h ^ uint32(f.Source.Workload[i])) * 16777619
	}
	return int32(h % uint32(n))
}

// matcher decides which detections an attack accounts for.
type matcher struct {
	gen                 *scenario.Generator
	window, grace, hold time.Duration
}

// is reports whether party p names the workload ref ("ns/workload"): by
// workload, else principal, else service, else address.
func (m matcher) is(p models.Party, ref string) bool {
	ns, wl, _ := strings.Cut(ref, "/")
	switch {
	case p.Workload != "":
		return p.Workload == wl && (p.Namespace == "" || p.Namespace == ns)
	case p.Principal != "":
		return p.Principal == m.gen.Principal(ref)
	case p.Service != "":
		s, _ := m.gen.Workload(ref)
		name, sns, ok := models.ServiceName(p.Service)
		return ok && sns == ns && name == s.App
	case p.IP != "":
		if p.IP == m.gen.IP(ref).String() {
			return true
		}
		// A mixed mesh's pods restart at new addresses.
		for _, pod := range m.gen.Pods() {
			if pod.Namespace == ns && pod.Workload == wl && pod.IP.String() == p.IP {
				return true
			}
		}
	}
	return false
}

func empty(p models.Party) bool { return p == models.Party{} }

// matches: the attack's kind, source and destination (a detection naming
// only one side must name the attack's), first raised during the attack
// or within the grace after it.
func (m matcher) matches(a scenario.Attack, d models.Detection) bool {
	if d.Kind != a.Kind || !m.during(a, d) {
		return false
	}
	dstOK := a.Destination == "" || empty(d.Destination) || m.is(d.Destination, a.Destination)
	if empty(d.Source) {
		return a.Destination != "" && !empty(d.Destination) && m.is(d.Destination, a.Destination)
	}
	return m.is(d.Source, a.Source) && dstOK
}

// during: first raised in a window that overlaps the attack or ends
// within the grace after it.
func (m matcher) during(a scenario.Attack, d models.Detection) bool {
	return d.WindowEnd.After(a.Start) && d.WindowStart.Before(a.End.Add(m.grace))
}

// explains: the detection involves the attacker (as source) or its
// target (as destination) and was first raised during the attack or the
// hold after it. One raised before the attack began is not its doing,
// however long it lasts.
func (m matcher) explains(a scenario.Attack, first models.Detection) bool {
	if !first.WindowEnd.After(a.Start) || !first.WindowStart.Before(a.End.Add(m.hold)) {
		return false
	}
	return m.is(first.Source, a.Source) || (a.Destination != "" && m.is(first.Destination, a.Destination))
}

func party(p models.Party) string {
	switch {
	case p.Workload != "":
		return p.Namespace + "/" + p.Workload
	case p.Principal != "":
		return p.Principal
	case p.Service != "":
		return p.Service
	case p.IP != "":
		return p.IP
	}
	return "-"
}

func offset(start, t time.Time) string {
	d := t.Sub(start).Round(time.Second)
	return fmt.Sprintf("+%dh%02dm%02ds", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
}

// Print writes the report: a table per attack class, the false detections
// by kind with their evidence, and the targets.
func (r *Report) Print(w io.Writer, verbose bool) {
	c := r.Config
	fmt.Fprintf(w, "meshguard eval: %v of a %d-workload mesh from %s (seed %d, traffic x%g), attacks at strength %g,\n",
		c.Duration, len(c.Mesh.Services), c.Start.Format(time.RFC3339), c.Seed, c.Scale, c.Strength)
	fmt.Fprintf(w, "window %v, learning %v, lateness %v, threshold %g, %d partition(s)\n",
		c.Detect.Window, c.Detect.LearningPeriod, c.Detect.AllowedLateness, c.Detect.Threshold, c.Partitions)
	fmt.Fprintf(w, "%d access-log records -> %d flows -> %d windows closed, %d detections (%d deliveries), %v wall\n",
		r.Records, r.Flows, r.Detector.Windows, r.Detections, r.Deliveries, r.Wall.Round(time.Second))
	if c.Live {
		fmt.Fprintf(w, "live clock: %d raised from open windows, %d of them not confirmed by their close\n",
			r.Detector.Early, r.Detector.EarlyUnconfirmed)
	}
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "class\tattack\tstart\tdetected\tTTD\twindows\tseverity\tincidents\tother detections during the attack")
	for _, res := range r.Results {
		a := res.Attack
		dst := a.Destination
		if dst == "" {
			dst = "*"
		}
		detected, ttd, wins, sev := "NO", "-", "-", "-"
		if res.Match != nil {
			detected = "yes"
			ttd = fmt.Sprintf("%.0fs", res.TTD.Seconds())
			wins = fmt.Sprint(res.Windows)
			sev = res.Match.Severity.String()
		}
		others := make([]string, 0, len(res.Others))
		for _, o := range res.Others {
			others = append(others, fmt.Sprintf("%s %s->%s", o.Kind, party(o.Source), party(o.Destination)))
		}
		sort.Strings(others)
		kind := string(a.Kind)
		if a.Variant != "" {
			kind += " (" + a.Variant + ")"
		}
		fmt.Fprintf(tw, "%s\t%s -> %s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", kind, a.Source, dst, offset(c.Start, a.Start),
			detected, ttd, wins, sev, len(res.Incidents), cmp.Or(strings.Join(others, "; "), "-"))
	}
	tw.Flush()

	fmt.Fprintf(w, "\nfalse detections (no attack explains them): %d in %.0f service-hours after learning = %.2f per 1000 service-hours\n",
		len(r.False), r.ServiceHours, r.FalsePer1000())
	byKind := map[models.DetectionKind][]FalseDetection{}
	for _, f := range r.False {
		byKind[f.First.Kind] = append(byKind[f.First.Kind], f)
	}
	for _, k := range models.DetectionKinds {
		fs := byKind[k]
		if len(fs) == 0 {
			continue
		}
		fmt.Fprintf(w, "  %s: %d\n", k, len(fs))
		for i, f := range fs {
			if i == 5 && !verbose {
				fmt.Fprintf(w, "    ... %d more\n", len(fs)-5)
				break
			}
			fmt.Fprintf(w, "    %s %s -> %s (%d windows, score %.1f): %s\n", offset(c.Start, f.First.WindowStart),
				party(f.First.Source), party(f.First.Destination), f.Last.Updates, f.Last.Score, f.Last.Evidence.Summary)
		}
	}

	nFalse, perK := r.FalseIncidentsPer1000()
	fmt.Fprintf(w, "\nfalse incidents (none of their detections explained by an attack): %d, %d of them medium or higher = %.2f per 1000 service-hours\n",
		len(r.FalseIncidents), nFalse, perK)
	for i, in := range r.FalseIncidents {
		if i == 10 && !verbose {
			fmt.Fprintf(w, "    ... %d more\n", len(r.FalseIncidents)-10)
			break
		}
		f := in.Detections[0]
		fmt.Fprintf(w, "    %s %s %s %s -> %s (%d detections)\n", offset(c.Start, f.First.WindowStart), in.Severity, f.First.Kind,
			party(f.First.Source), party(f.First.Destination), len(in.Detections))
	}
	if c.Mixed {
		r.printActions(w)
	}

	fmt.Fprintf(w, "\nreliability events (destination outages, low, alert only; not counted above): %d\n", len(r.Reliability))
	for _, f := range r.Reliability {
		fmt.Fprintf(w, "    %s %s (%d windows, score %.1f): %s\n", offset(c.Start, f.First.WindowStart),
			party(f.First.Destination), f.Last.Updates, f.Last.Score, f.Last.Evidence.Summary)
	}

	var missed, slow []string
	for _, res := range r.Results {
		switch {
		case res.Match == nil:
			missed = append(missed, string(res.Attack.Kind))
		case res.Windows > 2:
			slow = append(slow, fmt.Sprintf("%s (%d windows)", res.Attack.Kind, res.Windows))
		}
	}
	ok := len(r.Results) - len(missed) - len(slow)
	fmt.Fprintf(w, "\ntarget: every class detected within 2 windows: %d of %d", ok, len(r.Results))
	if len(missed) > 0 {
		fmt.Fprintf(w, "; not detected: %s", strings.Join(missed, ", "))
	}
	if len(slow) > 0 {
		fmt.Fprintf(w, "; later: %s", strings.Join(slow, ", "))
	}
	fmt.Fprintln(w)
	verdict := "met"
	if r.FalsePer1000() > 1 {
		verdict = "NOT met"
	}
	fmt.Fprintf(w, "target: at most 1 false detection per 1000 service-hours: %.2f, %s\n", r.FalsePer1000(), verdict)
	fmt.Fprintf(w, "target: at most 1.2 incidents per attack: %.2f, %s\n", r.IncidentsPerAttack(), met(r.IncidentsPerAttack() <= 1.2))
	fmt.Fprintf(w, "target: at most 1 false incident (medium or higher) per 1000 service-hours: %.2f in %.0f service-hours, %s\n",
		perK, r.ServiceHours, met(perK <= 1))
	if c.Mixed {
		fmt.Fprintf(w, "target: 0 enforced actions on benign edges: %d, %s\n", len(r.Benign), met(len(r.Benign) == 0))
	}
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// printActions summarises respond's decisions: each action id by its
// strongest outcome, and the enforced ones no attack explains.
func (r *Report) printActions(w io.Writer) {
	fmt.Fprintf(w, "\nidentity: %d of %d flows had a field resolved from the cluster, %d marked identity_conflict\n", r.Resolved, r.Flows, r.Conflicts)
	type outcome struct{ state, mode string }
	best := map[string]actionSeen{}
	rank := func(a models.Action) int {
		switch {
		case a.State == models.StateApplied && a.Mode == models.ModeEnforce:
			return 3
		case a.State == models.StateApplied:
			return 2
		case a.State == models.StateExtended:
			return 1
		}
		return 0
	}
	var ids []string
	for _, a := range r.Actions {
		b, ok := best[a.Action.ID]
		if !ok {
			ids = append(ids, a.Action.ID)
		}
		if !ok || rank(a.Action) > rank(b.Action) {
			best[a.Action.ID] = a
		}
	}
	counts := map[outcome]int{}
	for _, id := range ids {
		a := best[id].Action
		counts[outcome{string(a.State), string(a.Mode)}]++
	}
	fmt.Fprintf(w, "respond (mode enforce, default rules and guards): %d decisions on %d action ids:", len(r.Actions), len(ids))
	keys := make([]outcome, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].state+keys[i].mode < keys[j].state+keys[j].mode })
	for _, k := range keys {
		fmt.Fprintf(w, " %s/%s %d;", k.state, k.mode, counts[k])
	}
	fmt.Fprintln(w)
	for _, id := range ids {
		a := best[id]
		if rank(a.Action) >= 2 {
			fmt.Fprintf(w, "    %s %s %s (%s %s): %s\n", a.Action.State, a.Action.Mode, a.Action.Target, a.Detection.Severity, a.Detection.Kind, a.Action.Reason)
		}
	}
	fmt.Fprintf(w, "enforced on benign edges: %d\n", len(r.Benign))
	for _, a := range r.Benign {
		fmt.Fprintf(w, "    %s (%s %s %s -> %s): %s\n", a.Action.Target, a.Detection.Severity, a.Detection.Kind,
			party(a.Detection.Source), party(a.Detection.Destination), a.Action.Reason)
	}
}
