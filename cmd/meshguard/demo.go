package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/meshguard/meshguard/ingest"
	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/storage"
	"github.com/meshguard/meshguard/test/scenario"
)

type demoOptions struct {
	duration   time.Duration
	speed      int
	start      string
	seed       uint64
	clickhouse string
}

func newDemoCmd() *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole loop on this machine with embedded defaults (no servers)",
		Long: `demo plays a 22-workload online shop's mesh telemetry in event time through
an in-process Kafka broker into meshguard's ingest stage and an embedded
store, with live output and a summary. --clickhouse DSN stores the flows in
a real ClickHouse instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.DurationVar(&o.duration, "duration", 20*time.Second, "how long to run (wall clock)")
	f.IntVar(&o.speed, "speed", 30, "event-time seconds played per wall-clock second")
	f.StringVar(&o.start, "start", "2026-11-18T14:00:00Z", "event time the mesh starts at (RFC 3339)")
	f.Uint64Var(&o.seed, "seed", 1, "seed of the traffic generator")
	f.StringVar(&o.clickhouse, "clickhouse", "", "store flows in this ClickHouse (DSN) instead of the embedded store")
	return cmd
}

const demoTopic = "otlp_logs"

func runDemo(ctx context.Context, o demoOptions, out io.Writer) error {
	start, err := time.Parse(time.RFC3339, o.start)
	if err != nil {
		return fmt.Errorf("--start: %w", err)
	}
	if o.speed < 1 || o.speed > 1000 {
		return fmt.Errorf("--speed: %d; use 1 to 1000", o.speed)
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, demoTopic), kfake.AllowAutoTopicCreation())
	if err != nil {
		return fmt.Errorf("starting the in-process Kafka broker: %w", err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()

	store, storeName, closeStore, err := demoStore(ctx, o.clickhouse)
	if err != nil {
		return err
	}
	defer closeStore()
	tally := newTally()

	kcfg := ingest.DefaultKafkaConfig()
	kcfg.Brokers = brokers
	kcfg.Topics = ingest.Topics{Logs: demoTopic}
	kcfg.SessionTimeout = 6 * time.Second
	icfg := ingest.DefaultIngestConfig()
	icfg.BatchSize = 20_000
	icfg.BatchTimeout = 250 * time.Millisecond
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	consumer, err := ingest.NewConsumer(kcfg, icfg, storage.Fanout(store, tally), log)
	if err != nil {
		return err
	}

	fmt.Fprintf(out, "meshguard demo: a 22-workload online shop, played at %dx from %s\n", o.speed, start.Format(time.RFC3339))
	fmt.Fprintf(out, "  kafka  in-process broker at %s, topic %s (4 partitions), dead letters to %s\n", strings.Join(brokers, ","), demoTopic, kcfg.DLQTopic)
	fmt.Fprintf(out, "  store  %s\n\n", storeName)

	runCtx, stop := context.WithTimeout(ctx, o.duration)
	defer stop()
	consumed := make(chan error, 1)
	consumerCtx, stopConsumer := context.WithCancel(context.WithoutCancel(ctx))
	go func() { consumed <- consumer.Run(consumerCtx) }()

	prod := &demoProducer{brokers: brokers, gen: scenario.New(scenario.DefaultMesh(), start, o.seed), speed: o.speed}
	produced := make(chan error, 1)
	go func() { produced <- prod.run(runCtx) }()

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "event time\tproduced\tstored\tflows/s\tdead letters\t")
	tw.Flush()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	last, lastAt := 0, time.Now()
	report := func() {
		n := tally.count()
		rate := float64(n-last) / time.Since(lastAt).Seconds()
		last, lastAt = n, time.Now()
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%d\t\n", prod.eventTime().Format("2006-01-02 15:04:05"), prod.records(), n, rate, consumer.Stats().DeadLettered)
		tw.Flush()
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
	// Let ingest catch up with what was produced, then stop it cleanly.
	drain := time.Now().Add(30 * time.Second)
	for tally.count() < prod.records() && time.Now().Before(drain) && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
	}
	report()
	stopConsumer()
	if err := <-consumed; err != nil {
		return err
	}
	tally.summary(out, prod.records(), consumer.Stats())
	return nil
}

// demoProducer plays the generator into Kafka like an OpenTelemetry
// Collector: one OTLP export request per second of event time, plus one
// corrupt message to show what happens to bad input.
type demoProducer struct {
	brokers []string
	gen     *scenario.Generator
	speed   int

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
	w := &kafka.Writer{Addr: kafka.TCP(p.brokers...), Topic: demoTopic, Balancer: &kafka.RoundRobin{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, Compression: kafka.Zstd}
	defer w.Close()
	tick := time.NewTicker(time.Second / time.Duration(p.speed))
	defer tick.Stop()
	corruptAt := p.speed * 3
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		ld := p.gen.Next(time.Second)
		values, err := scenario.Marshal(ld, 500)
		if err != nil {
			return err
		}
		msgs := make([]kafka.Message, len(values))
		for i, v := range values {
			msgs[i].Value = v
		}
		if i == corruptAt {
			// A truncated export request, as a broken producer would send.
			v := msgs[0].Value
			msgs = append(msgs, kafka.Message{Value: v[:len(v)/3]})
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
func demoStore(ctx context.Context, dsn string) (storage.FlowConsumer, string, func(), error) {
	if dsn == "" {
		const capacity = 200_000
		return storage.NewMemory(capacity), fmt.Sprintf("embedded, in memory (newest %d flows kept)", capacity), func() {}, nil
	}
	cfg := storage.DefaultClickHouseConfig()
	cfg.DSN = dsn
	if err := cfg.Validate(); err != nil {
		return nil, "", nil, fmt.Errorf("--clickhouse: %w", err)
	}
	ch, err := storage.NewClickHouse(cfg)
	if err != nil {
		return nil, "", nil, fmt.Errorf("--clickhouse: %w", err)
	}
	if err := ch.Migrate(ctx); err != nil {
		ch.Close()
		return nil, "", nil, fmt.Errorf("--clickhouse: migrating the schema: %w", err)
	}
	return ch, "ClickHouse " + redactDSN(dsn) + ", database " + ch.Database(), func() { ch.Close() }, nil
}

// redactDSN hides a password in a DSN before it is printed.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparseable DSN)"
	}
	return u.Redacted()
}
