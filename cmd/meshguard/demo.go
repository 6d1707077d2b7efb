package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/collector/pdata/plog"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshguard/meshguard/alert"
	"github.com/meshguard/meshguard/cmd/meshguard/api"
	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/detect"
	"github.com/meshguard/meshguard/ingest"
	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/posture"
	"github.com/meshguard/meshguard/respond"
	"github.com/meshguard/meshguard/scenario"
	"github.com/meshguard/meshguard/storage"
)

type demoOptions struct {
	duration    time.Duration
	speed       int
	start       string
	seed        uint64
	clickhouse  string
	learning    time.Duration
	attacks     string
	policiesDir string
	kubeconfig  string
	listen      string
	hold        bool
	// slackWebhook is a secret: never printed.
	slackWebhook string
}

func newDemoCmd() *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole loop on this machine with embedded defaults (no servers)",
		Long: `demo plays a 33-workload mesh's telemetry in event time through an
in-process Kafka broker into meshguard: ingest into an embedded store,
detection, and response. It first fast-forwards --learning of ordinary
traffic so the baselines know the mesh, then plays one attack of each kind
at --speed, printing every detection and the policy meshguard would apply,
and ends with a summary: which attacks were caught, how fast, what else
was raised, and proof that no record was lost or doubled.

Policies are written as YAML to --policies-dir (the gitops backend) in
dry-run. --clickhouse DSN stores flows and detections in a real ClickHouse;
--kubeconfig applies the policies to a real cluster (in dry-run) instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.DurationVar(&o.duration, "duration", 5*time.Minute, "stop after this long (wall clock) even if the timeline is not over")
	f.IntVar(&o.speed, "speed", 30, "event-time seconds played per wall-clock second once learning is done")
	f.StringVar(&o.start, "start", "", "event time the mesh starts at (RFC 3339); default: so that the timeline ends about now")
	f.Uint64Var(&o.seed, "seed", 1, "seed of the traffic generator")
	f.StringVar(&o.clickhouse, "clickhouse", "", "store flows and detections in this ClickHouse (DSN) instead of the embedded store")
	f.DurationVar(&o.learning, "learning", 15*time.Minute, "event time of ordinary traffic played first, as fast as possible; also detect.learning_period")
	f.StringVar(&o.attacks, "attacks", "all", "comma-separated attack kinds to play, all, or none")
	f.StringVar(&o.policiesDir, "policies-dir", "meshguard-demo-policies", "directory the policies are written to (gitops backend)")
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "apply policies to this cluster's Istio (dry-run) instead of writing files")
	f.StringVar(&o.slackWebhook, "slack-webhook", "", "post alerts to this Slack incoming-webhook URL")
	f.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address of the dashboard and API (no authentication: loopback only); empty for none")
	f.BoolVar(&o.hold, "hold", false, "keep the dashboard up after the summary, until interrupted")
	return cmd
}

const demoTopic = "otlp_logs"

// demoAttackSlot is the event time given to each attack: it runs for the
// first half, then the mesh is quiet again.
const demoAttackSlot = 90 * time.Second

// demoWindow is detect.window's default, which the demo keeps.
var demoWindow = detect.DefaultConfig().Window

func runDemo(ctx context.Context, o demoOptions, out io.Writer) error {
	kinds, err := scenario.ParseKinds(o.attacks)
	if err != nil {
		return fmt.Errorf("--attacks: %w", err)
	}
	attackSpan := time.Duration(len(kinds)) * demoAttackSlot
	// By default the timeline ends about now (learning is fast-forwarded,
	// the attacks play at --speed), so the dashboard's recent views and the
	// policies' expiry times line up with the wall clock.
	start := time.Now().UTC().Add(-o.learning - attackSpan - time.Minute).Truncate(time.Minute)
	if o.start != "" {
		if start, err = time.Parse(time.RFC3339, o.start); err != nil {
			return fmt.Errorf("--start: %w", err)
		}
	}
	if o.speed < 1 || o.speed > 1000 {
		return fmt.Errorf("--speed: %d; use 1 to 1000", o.speed)
	}
	if o.learning < time.Minute || o.learning > 24*time.Hour {
		return fmt.Errorf("--learning: %s; use 1m to 24h", o.learning)
	}
	attacks, err := scenario.Schedule(kinds, start.Add(o.learning+demoAttackSlot/4), demoAttackSlot, demoAttackSlot/2, 1)
	if err != nil {
		return err
	}
	end := start.Add(o.learning + attackSpan + time.Minute)
	gen, err := scenario.NewWith(scenario.RealisticMesh(), start, o.seed, scenario.Options{Dynamics: true, Scale: 0.25, Attacks: attacks})
	if err != nil {
		return err
	}

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, demoTopic), kfake.AllowAutoTopicCreation())
	if err != nil {
		return fmt.Errorf("starting the in-process Kafka broker: %w", err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()

	st, err := openDemoStore(ctx, o.clickhouse)
	if err != nil {
		return err
	}
	defer st.close()

	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	board := newDemoBoard(out, attacks, "")
	tally := newTally()
	spec, respName, err := demoSpec(o, st, board, tally, log)
	if err != nil {
		return err
	}
	p, err := buildPipeline(spec)
	if err != nil {
		return err
	}
	det, resp := p.Detector, p.Responder
	go p.Alerter.Run(context.WithoutCancel(ctx))

	kcfg := ingest.DefaultKafkaConfig()
	kcfg.Brokers = brokers
	kcfg.Topics = ingest.Topics{Logs: demoTopic}
	kcfg.SessionTimeout = 6 * time.Second
	icfg := ingest.DefaultIngestConfig()
	icfg.BatchSize = 20_000
	icfg.BatchTimeout = 250 * time.Millisecond
	next, opts := p.ingestOptions()
	ing, err := ingest.NewConsumer(kcfg, icfg, next, log, opts...)
	if err != nil {
		return err
	}

	fmt.Fprintf(out, "meshguard demo: a 33-workload mesh from %s; %s of ordinary traffic to learn from (fast-forward),\n", start.Format(time.RFC3339), o.learning)
	fmt.Fprintf(out, "then %d attacks played at %dx, one every %s of event time.\n", len(attacks), o.speed, demoAttackSlot)
	fmt.Fprintf(out, "  kafka    in-process broker at %s, topic %s (4 partitions, keyed by source workload), dead letters to %s\n", strings.Join(brokers, ","), demoTopic, kcfg.DLQTopic)
	fmt.Fprintf(out, "  store    %s\n", st.name)
	fmt.Fprintf(out, "  respond  %s\n", respName)
	if o.listen != "" {
		if err := demoServer(ctx, o.listen, st, resp, log, out); err != nil {
			return err
		}
	}
	fmt.Fprintln(out)

	runCtx, stop := context.WithTimeout(ctx, o.duration)
	defer stop()
	consumed := make(chan error, 1)
	consumerCtx, stopConsumer := context.WithCancel(context.WithoutCancel(ctx))
	go func() { consumed <- ing.Run(consumerCtx) }()

	prod := &demoProducer{brokers: brokers, gen: gen, speed: o.speed, fastUntil: start.Add(o.learning), end: end}
	produced := make(chan error, 1)
	go func() { produced <- prod.run(runCtx) }()

	tick := time.NewTicker(3 * time.Second)
	defer tick.Stop()
	report := func() {
		ds := det.Stats()
		phase := "learning"
		if !prod.eventTime().Before(start.Add(o.learning)) {
			phase = "watching"
		}
		board.printf("  %s  %-8s  %9d records  %9d flows stored  %4d edges  %d detections\n",
			prod.eventTime().Format("15:04:05"), phase, prod.records(), tally.count(), ds.Edges, ds.Raised)
	}
loop:
	for {
		select {
		case <-tick.C:
			report()
		case err := <-produced:
			if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				stopConsumer()
				return err
			}
			break loop
		}
	}
	// Let ingest catch up with what was produced, then close the last
	// windows and stop cleanly.
	drain := time.Now().Add(30 * time.Second)
	for tally.count() < prod.records() && time.Now().Before(drain) && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
	}
	stopConsumer()
	if err := <-consumed; err != nil {
		return err
	}
	det.Flush(context.WithoutCancel(ctx))
	report()
	board.summary(prod.eventTime())
	tally.summary(out, prod.records(), ing.Stats())
	if o.slackWebhook != "" {
		fmt.Fprintf(out, "Alerts were posted to the Slack webhook.\n")
	}
	if o.kubeconfig == "" && len(attacks) > 0 {
		fmt.Fprintf(out, "Policies meshguard would apply (dry-run) are in %s/.\n", o.policiesDir)
	}
	if o.hold && o.listen != "" {
		fmt.Fprintf(out, "The dashboard stays up at http://%s/ until interrupted (Ctrl-C).\n", o.listen)
		<-ctx.Done()
	}
	return nil
}

// demoServer serves the dashboard and API without authentication, which
// the API allows only on a loopback address. A port in use costs the
// dashboard, not the demo.
func demoServer(ctx context.Context, listen string, st demoStore, resp *respond.Responder, log *slog.Logger, out io.Writer) error {
	store, ok := st.flows.(api.Store)
	if !ok {
		return nil
	}
	cfg := api.DefaultConfig()
	cfg.Listen = listen
	cfg.Auth.Mode = api.AuthNone
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	// The demo acts in dry-run: its page must not take a policy past it
	// (nobody is authenticated, so no override either).
	deps := api.Deps{Store: store, Operator: resp, Registry: newRegistry(), ActionWriter: st.actions, Log: log,
		RespondMode: models.ModeDryRun}
	// The posture without a cluster: shares, plaintext edges, identities.
	if pq, ok := st.flows.(storage.PostureQuerier); ok {
		deps.Posture = &posture.Reader{Edges: pq}
	}
	srv, err := api.New(cfg, deps)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		fmt.Fprintf(out, "  web      not served: %v (use --listen)\n", err)
		return nil
	}
	l.Close()
	go srv.Run(context.WithoutCancel(ctx))
	fmt.Fprintf(out, "  web      dashboard and API at http://%s/ (no authentication, loopback only)\n", listen)
	return nil
}

// demoSpec is the demo's pipeline, all in one process: flows to the demo
// store and the scoreboard, detections straight to respond (dry-run:
// YAML files by default, or a real cluster's Istio when a kubeconfig is
// given) and alert (a Slack webhook when given one; otherwise the alerter
// with Slack unset, which accepts and discards).
func demoSpec(o demoOptions, st demoStore, board *demoBoard, tally *tally, log *slog.Logger) (pipelineSpec, string, error) {
	dcfg := detect.DefaultConfig()
	dcfg.LearningPeriod = o.learning
	acfg := alert.DefaultConfig()
	acfg.Slack.WebhookURL = o.slackWebhook
	if err := acfg.Validate(); err != nil {
		return pipelineSpec{}, "", fmt.Errorf("--slack-webhook: %w", err)
	}
	rcfg := respond.DefaultConfig()
	rcfg.Mode = models.ModeDryRun
	rcfg.BlastRadiusMaxRequests = 0
	rcfg.LeaderElection.Enabled = false
	spec := pipelineSpec{
		Detect: &dcfg, Respond: &rcfg, Alert: &acfg, InProcess: true,
		Store: st.flows, Detections: st.detections, Actions: st.actions,
		FlowTaps: []consumer.Flows{tally}, DetectionTaps: []consumer.Detections{board}, ActionTaps: []consumer.Actions{board},
		Log: log,
	}
	if o.kubeconfig != "" {
		kc, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
		if err != nil {
			return spec, "", fmt.Errorf("--kubeconfig: %w", err)
		}
		spec.RespondDeps.Kube = kc
		rcfg.Backend = respond.BackendIstio
		return spec, "Istio AuthorizationPolicies (dry-run) in the cluster of " + o.kubeconfig, nil
	}
	rcfg.Backend = respond.BackendGitOps
	rcfg.GitOpsDir = o.policiesDir
	return spec, "AuthorizationPolicy YAML (dry-run) written to " + o.policiesDir + "/", nil
}

// demoProducer plays the generator into Kafka like an OpenTelemetry
// Collector partitioning by pod: one OTLP export request per source
// workload and second of event time, keyed by the workload, so that each
// partition sees whole edges. Until fastUntil it plays as fast as it can;
// then at speed. One corrupt message shows what happens to bad input.
type demoProducer struct {
	brokers   []string
	gen       *scenario.Generator
	speed     int
	fastUntil time.Time
	end       time.Time

	mu       sync.Mutex
	produced int
	now      time.Time
}

func (p *demoProducer) records() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.produced
}

func (p *demoProducer) eventTime() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.now
}

func (p *demoProducer) run(ctx context.Context) error {
	// zstd, as deploy/collector configures the collector's exporter: the
	// in-process broker keeps every message in memory.
	w := &kafka.Writer{Addr: kafka.TCP(p.brokers...), Topic: demoTopic, Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, Compression: kafka.Zstd, BatchSize: 1000}
	defer w.Close()
	tick := time.NewTicker(time.Second / time.Duration(p.speed))
	defer tick.Stop()
	step := time.Second
	for i := 0; p.gen.Now().Before(p.end); i++ {
		fast := p.gen.Now().Before(p.fastUntil)
		if fast {
			step = 10 * time.Second
		} else {
			step = time.Second
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		ld := p.gen.Next(step)
		msgs, err := keyedBySource(ld)
		if err != nil {
			return err
		}
		if i == 3 {
			// A truncated export request, as a broken producer would send.
			v := msgs[0].Value
			msgs = append(msgs, kafka.Message{Key: msgs[0].Key, Value: v[:len(v)/3]})
		}
		// Never cancel a write midway: it may land anyway, uncounted. The
		// loop stops between writes instead.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		err = w.WriteMessages(wctx, msgs...)
		cancel()
		if err != nil {
			return err
		}
		p.mu.Lock()
		p.produced += ld.LogRecordCount()
		p.now = p.gen.Now()
		p.mu.Unlock()
	}
	return nil
}

// keyedBySource splits an export request by the calling workload, as the
// collector's exporter does with partition_logs_by_resource_attributes,
// so that detect's per-partition shards each see whole sources.
func keyedBySource(ld plog.Logs) ([]kafka.Message, error) {
	groups := map[string]plog.Logs{}
	var order []string
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			lrs := sl.LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				key := ""
				if v, ok := lr.Attributes().Get("source_workload"); ok {
					key = v.Str()
				}
				g, ok := groups[key]
				if !ok {
					g = plog.NewLogs()
					nrl := g.ResourceLogs().AppendEmpty()
					rl.Resource().CopyTo(nrl.Resource())
					nsl := nrl.ScopeLogs().AppendEmpty()
					sl.Scope().CopyTo(nsl.Scope())
					groups[key] = g
					order = append(order, key)
				}
				lr.CopyTo(g.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().AppendEmpty())
			}
		}
	}
	var msgs []kafka.Message
	for _, key := range order {
		values, err := scenario.Marshal(groups[key], 500)
		if err != nil {
			return nil, err
		}
		for _, v := range values {
			msgs = append(msgs, kafka.Message{Key: []byte(key), Value: v})
		}
	}
	return msgs, nil
}

// demoBoard prints detections as they are raised and scores them against
// the attacks played.
type demoBoard struct {
	mu       sync.Mutex
	out      io.Writer
	attacks  []scenario.Attack
	respName string
	seen     map[string]models.Detection
	order    []string
	acted    map[string]bool
}

func newDemoBoard(out io.Writer, attacks []scenario.Attack, respName string) *demoBoard {
	return &demoBoard{out: out, attacks: attacks, respName: respName, seen: map[string]models.Detection{}, acted: map[string]bool{}}
}

func (b *demoBoard) printf(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fmt.Fprintf(b.out, format, args...)
}

// HandleDetection prints a detection the first time it is raised.
func (b *demoBoard) HandleDetection(_ context.Context, d models.Detection) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, known := b.seen[d.ID]
	b.seen[d.ID] = d
	if known {
		return nil
	}
	b.order = append(b.order, d.ID)
	fmt.Fprintf(b.out, "  %s  DETECTED  %s (%s, score %.0f)  %s -> %s\n", d.WindowEnd.Format("15:04:05"), d.Kind, d.Severity, d.Score,
		models.Party.String(d.Source), models.Party.String(d.Destination))
	fmt.Fprintf(b.out, "            %s\n", d.Evidence.Summary)
	return nil
}

// HandleAction prints what the responder decided.
func (b *demoBoard) HandleAction(_ context.Context, a models.Action, d models.Detection) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	// An ongoing attack updates its detection every window; say what was
	// decided once per state.
	key := d.ID + "/" + string(a.State)
	if b.acted[key] {
		return nil
	}
	b.acted[key] = true
	switch {
	case a.PolicyName != "" && a.State == models.StateApplied:
		fmt.Fprintf(b.out, "            -> %s %s: AuthorizationPolicy %s/%s, expires %s\n", a.Mode, a.Kind, a.PolicyNamespace, a.PolicyName, a.ExpiresAt.Format("15:04:05"))
	case a.State == models.StateSkipped || a.State == models.StateAlerted || a.State == models.StateFailed:
		fmt.Fprintf(b.out, "            -> %s: %s\n", a.State, a.Reason)
	}
	return nil
}

// matches reports whether d is the detection of attack a.
func matches(a scenario.Attack, d models.Detection) bool {
	if d.Kind != a.Kind || models.Party.String(d.Source) != a.Source {
		return false
	}
	return a.Destination == "" || models.Party.String(d.Destination) == a.Destination
}

func (b *demoBoard) summary(eventEnd time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fmt.Fprintf(b.out, "\nAttacks played and what meshguard made of them:\n")
	tw := tabwriter.NewWriter(b.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  attack\tsource -> destination\tdetected\ttime to detect\tseverity")
	caught, played := 0, 0
	explained := map[string]bool{}
	for _, a := range b.attacks {
		if a.Start.After(eventEnd) {
			continue
		}
		played++
		var hit *models.Detection
		for _, id := range b.order {
			d := b.seen[id]
			if d.WindowEnd.Before(a.Start) || d.WindowStart.After(a.End.Add(5*time.Minute)) {
				continue
			}
			if matches(a, d) && hit == nil {
				hit = &d
			}
			if models.Party.String(d.Source) == a.Source {
				explained[id] = true
			}
		}
		dst := a.Destination
		if dst == "" {
			dst = "*"
		}
		if hit == nil {
			fmt.Fprintf(tw, "  %s\t%s -> %s\tNO\t-\t-\n", a.Kind, a.Source, dst)
			continue
		}
		caught++
		// The first window's end: d.WindowEnd moves on as the attack goes on.
		ttd := hit.WindowStart.Add(demoWindow).Sub(a.Start).Round(time.Second)
		fmt.Fprintf(tw, "  %s\t%s -> %s\tyes\t%s (%d windows)\t%s\n", a.Kind, a.Source, dst, ttd, (ttd+demoWindow-1)/demoWindow, hit.Severity)
	}
	tw.Flush()
	var other []string
	for _, id := range b.order {
		if !explained[id] {
			d := b.seen[id]
			other = append(other, fmt.Sprintf("  %s %s -> %s: %s", d.Kind, models.Party.String(d.Source), models.Party.String(d.Destination), d.Evidence.Summary))
		}
	}
	fmt.Fprintf(b.out, "\n%d of %d attacks detected; %d other detections (false positives, or side effects of an attack)\n", caught, played, len(other))
	for _, o := range other {
		fmt.Fprintln(b.out, o)
	}
}

// tally is the demo's view of what was ingested: distinct flows (to prove
// none was lost or doubled) and per-edge totals, counting each request
// once (the destination proxy's record when both sides logged it).
type tally struct {
	mu    sync.Mutex
	seen  map[models.FlowID]struct{}
	edges map[models.Edge]*edgeTotals
}

type edgeTotals struct {
	requests, client4xx, server5xx uint64
	bytesOut                       uint64
}

func newTally() *tally {
	return &tally{seen: map[models.FlowID]struct{}{}, edges: map[models.Edge]*edgeTotals{}}
}

func (t *tally) ConsumeFlows(_ context.Context, flows []models.Flow) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range flows {
		f := &flows[i]
		if _, dup := t.seen[f.ID]; dup {
			continue
		}
		t.seen[f.ID] = struct{}{}
		if f.Reporter == models.ReporterSource {
			continue
		}
		e := t.edges[f.Edge()]
		if e == nil {
			e = &edgeTotals{}
			t.edges[f.Edge()] = e
		}
		n := uint64(max(f.Count, 1))
		e.requests += n
		e.bytesOut += f.BytesSent
		switch {
		case f.ResponseCode >= 500:
			e.server5xx += n
		case f.ResponseCode >= 400:
			e.client4xx += n
		}
	}
	return nil
}

func (t *tally) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.seen)
}

func (t *tally) summary(out io.Writer, produced int, st ingest.Stats) {
	t.mu.Lock()
	defer t.mu.Unlock()
	type row struct {
		edge models.Edge
		*edgeTotals
	}
	rows := make([]row, 0, len(t.edges))
	for e, v := range t.edges {
		rows = append(rows, row{e, v})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].requests > rows[j].requests })
	fmt.Fprintf(out, "\nBusiest edges (each request counted once):\n")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  edge\trequests\t4xx\t5xx\tbytes out")
	for i, r := range rows {
		if i == 10 {
			break
		}
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\n", r.edge, r.requests, r.client4xx, r.server5xx, r.bytesOut)
	}
	tw.Flush()
	verdict := "none lost, none doubled"
	switch d := produced - len(t.seen); {
	case d > 0:
		verdict = fmt.Sprintf("MISMATCH: %d missing", d)
	case d < 0:
		verdict = fmt.Sprintf("MISMATCH: %d more than produced", -d)
	}
	fmt.Fprintf(out, "\n%d access-log records produced; %d distinct flows stored (%s); %d edges; %d Kafka messages, %d dead-lettered with the reason.\n",
		produced, len(t.seen), verdict, len(t.edges), st.Messages, st.DeadLettered)
}

// demoStore is the embedded in-memory store, or a real ClickHouse (schema
// migrated) when a DSN is given.
type demoStore struct {
	flows      consumer.Flows
	detections storage.DetectionWriter
	actions    storage.ActionWriter
	name       string
	close      func()
}

func openDemoStore(ctx context.Context, dsn string) (demoStore, error) {
	if dsn == "" {
		const capacity = 200_000
		m := storage.NewMemory(capacity)
		return demoStore{m, m, m, fmt.Sprintf("embedded, in memory (newest %d flows kept)", capacity), func() {}}, nil
	}
	cfg := storage.DefaultClickHouseConfig()
	cfg.DSN = dsn
	if err := cfg.Validate(); err != nil {
		return demoStore{}, fmt.Errorf("--clickhouse: %w", err)
	}
	ch, err := storage.NewClickHouse(cfg)
	if err != nil {
		return demoStore{}, fmt.Errorf("--clickhouse: %w", err)
	}
	if err := ch.Migrate(ctx); err != nil {
		ch.Close()
		return demoStore{}, fmt.Errorf("--clickhouse: migrating the schema: %w", err)
	}
	return demoStore{ch, ch, ch, "ClickHouse " + storage.RedactDSN(dsn) + ", database " + ch.Database(), func() { ch.Close() }}, nil
}
