// Command ingestbench measures end-to-end ingest on the real servers of
// test/infra, four consumers on the same messages in one run: `meshguard
// serve --stages ingest` and `--stages ingest,detect` (Kafka -> decode ->
// ClickHouse, every flow stored), and the OpenTelemetry Collector's kafka
// receiver into its clickhouse exporter (stored) and into a nop exporter
// (dropped).
//
//	go run ./test/bench/ingestbench [flags]    (from the repository root)
//
// It produces the messages once, before any timing, to fresh topics (the
// small shape: one pod's 5-20 records a message, some otlp_json; or the
// batch shape: 500 records a message); then each run starts each
// consumer as a subprocess in a fresh consumer group (and database) and
// times it from process start until everything went through, reading its
// peak RSS and CPU time from /proc. See test/bench/README.md.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"

	"github.com/meshguard/meshguard/test/bench"

	"github.com/meshguard/meshguard/test/testenv"
)

type runner struct {
	id                string // prefix of the topic, groups and databases
	dir               string // binaries, configs, logs
	brokers           []string
	chAddr            string
	ch                driver.Conn
	kafkaClient       *kafka.Client
	kafka, clickhouse server
	meshguard         string
	otelcol           string
	timeout           time.Duration
	keep              bool
	data              dataset
	groups            []string
}

type result struct {
	consumer      string
	run           int
	wall          time.Duration // process start -> every record through
	startup       time.Duration // process start -> first progress seen (first batch stored, first offset committed)
	peakRSS       int64
	cpu           time.Duration // the consumer's own user+system time
	kafkaCPU      time.Duration // the broker's, during the run
	clickhouseCPU time.Duration // the ClickHouse server's, during the run
	loadBefore    string
}

// consumers, in the order the report prints them. Each run starts them
// in a rotated order, so that none always meets the page cache, the
// broker or the machine's other load in the same state.
var consumers = []struct{ name, label string }{
	{"meshguard-ingest", "meshguard serve --stages ingest"},
	{"meshguard-detect", "meshguard serve --stages ingest,detect"},
	{"otelcol-clickhouse", "collector kafkareceiver -> clickhouseexporter"},
	{"otelcol-nop", "collector kafkareceiver -> nop"},
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ingestbench:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		shape       = flag.String("shape", "small", "small: messages of one pod, -min/-max records each, some otlp_json (a collector keyed by pod); batch: -per-message records a message, otlp_proto (after deploy/collector's batch processor)")
		records     = flag.Int("records", 1_000_000, "records in all (shape small)")
		minPer      = flag.Int("min", 5, "fewest records in a message (shape small)")
		maxPer      = flag.Int("max", 20, "most records in a message (shape small)")
		jsonShare   = flag.Float64("json-share", 0.25, "share of the messages encoded otlp_json (shape small)")
		pods        = flag.Int("pods", 3, "pods of every workload, each a proxy with its own messages (shape small)")
		messages    = flag.Int("messages", 2000, "messages to produce (shape batch: 1M records at 500 a message)")
		perMessage  = flag.Int("per-message", 500, "log records in every message (shape batch; deploy/collector's send_batch_max_size)")
		partitions  = flag.Int("partitions", 4, "partitions of each fresh topic")
		runs        = flag.Int("runs", 3, "runs of each consumer over the same messages; medians are printed")
		body        = flag.Bool("body", true, "give each record Istio's default text line as body, as the envoyOtelAls provider sends it with labels but no text format")
		compression = flag.String("compression", "zstd", "producer compression: none, gzip, snappy, lz4, zstd (the default is deploy/collector's)")
		only        = flag.String("only", "", "run only these consumers (comma-separated): meshguard-ingest, meshguard-detect, otelcol-clickhouse, otelcol-nop")
		brokers     = flag.String("brokers", "", "Kafka bootstrap brokers (default: test/infra's)")
		chAddr      = flag.String("clickhouse", "", "ClickHouse native address host:port (default: test/infra's, ClickHouse 26.7 through chserver)")
		otelcol     = flag.String("otelcol", "", "collector binary (default: built and cached by test/bench/otelcol.sh)")
		timeout     = flag.Duration("timeout", 10*time.Minute, "give up on a consumer run after this long")
		keep        = flag.Bool("keep", false, "keep the topics, groups and databases (and the work directory) for inspection")
	)
	flag.Parse()
	codec, ok := map[string]compress.Compression{"none": 0, "gzip": compress.Gzip, "snappy": compress.Snappy,
		"lz4": compress.Lz4, "zstd": compress.Zstd}[*compression]
	if !ok {
		return fmt.Errorf("-compression %q: use none, gzip, snappy, lz4 or zstd", *compression)
	}
	if *shape != "small" && *shape != "batch" {
		return fmt.Errorf("-shape %q: use small or batch", *shape)
	}
	selected, err := selectConsumers(*only)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var id [4]byte
	_, _ = rand.Read(id[:])
	b := &runner{id: "ingestbench_" + hex.EncodeToString(id[:]), timeout: *timeout, keep: *keep}
	b.brokers = strings.Split(firstOf(*brokers, testenv.Lookup("MESHGUARD_TEST_KAFKA_BROKERS")), ",")
	b.chAddr = firstOf(*chAddr, testenv.Lookup("MESHGUARD_TEST_CLICKHOUSE_ADDR"))
	if b.brokers[0] == "" || b.chAddr == "" {
		return fmt.Errorf("no Kafka or ClickHouse: start them with `bash test/infra/infra.sh start` (env files in %s) or pass -brokers and -clickhouse", testenv.InfraDir())
	}
	// Server CPU is read only from test/infra's own servers.
	if *brokers == "" {
		b.kafka = infraServer(testenv.InfraDir(), "kafka", "kafka.pid")
	}
	if *chAddr == "" {
		b.clickhouse = infraServer(testenv.InfraDir(), "chserver", "server.pid")
	}

	if b.dir, err = os.MkdirTemp("", "ingestbench-"); err != nil {
		return err
	}
	if !b.keep {
		defer os.RemoveAll(b.dir)
	}
	if b.ch, err = clickhouse.Open(&clickhouse.Options{Addr: []string{b.chAddr}, DialTimeout: 5 * time.Second}); err != nil {
		return err
	}
	defer b.ch.Close()
	if err := b.ch.Ping(ctx); err != nil {
		return fmt.Errorf("clickhouse %s: %w", b.chAddr, err)
	}
	var chVersion string
	_ = b.ch.QueryRow(ctx, "SELECT version()").Scan(&chVersion)
	b.kafkaClient = &kafka.Client{Addr: kafka.TCP(b.brokers...), Timeout: 30 * time.Second}

	if selected["meshguard-ingest"] || selected["meshguard-detect"] {
		fmt.Fprintln(os.Stderr, "building meshguard")
		if b.meshguard, err = buildMeshguard(b.dir); err != nil {
			return err
		}
	}
	if selected["otelcol-clickhouse"] || selected["otelcol-nop"] {
		b.otelcol = *otelcol
		if b.otelcol == "" {
			if b.otelcol, err = otelcolBinary(); err != nil {
				return err
			}
		}
	}

	began := time.Now()
	var described string
	if *shape == "small" {
		described, err = b.produceByPod(ctx, *partitions, bench.ByPod{Records: *records, MinPerMessage: *minPer, MaxPerMessage: *maxPer,
			PodsPerService: *pods, JSONShare: *jsonShare, Body: *body, Compression: codec})
	} else {
		described, err = b.produceBatches(ctx, *partitions, bench.Messages{Count: *messages, PerMessage: *perMessage, Body: *body, Compression: codec})
	}
	if !b.keep {
		defer b.cleanKafka()
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "produced %d records in %s\n", b.data.records, time.Since(began).Round(time.Second))

	fmt.Printf("ingestbench: %s, text body %v, compression %s, %d partitions a topic; ClickHouse %s at %s\n",
		described, *body, *compression, *partitions, chVersion, b.chAddr)
	fmt.Printf("machine: %d cores shared with Kafka, ClickHouse and whatever else runs; load average before: %s\n", runtime.NumCPU(), loadAvg())

	var results []result
	for i := 1; i <= *runs; i++ {
		for k := range consumers {
			name := consumers[(k+i-1)%len(consumers)].name
			if !selected[name] {
				continue
			}
			fmt.Fprintf(os.Stderr, "run %d: %s\n", i, name)
			var r result
			switch name {
			case "meshguard-ingest":
				r, err = b.runMeshguard(ctx, name, i, "ingest")
			case "meshguard-detect":
				r, err = b.runMeshguard(ctx, name, i, "ingest,detect")
			case "otelcol-clickhouse":
				r, err = b.runCollectorClickHouse(ctx, name, i)
			case "otelcol-nop":
				r, err = b.runCollectorNop(ctx, name, i)
			}
			if err != nil {
				return fmt.Errorf("run %d: %w", i, err)
			}
			results = append(results, r)
		}
	}
	b.report(results)
	fmt.Printf("load average after: %s\n", loadAvg())
	if b.keep {
		fmt.Printf("kept topics %s, groups and databases %s_*, logs in %s\n", strings.Join(b.data.topics(), ", "), b.id, b.dir)
	}
	return nil
}

func selectConsumers(only string) (map[string]bool, error) {
	selected := map[string]bool{}
	for _, c := range consumers {
		selected[c.name] = only == ""
	}
	if only == "" {
		return selected, nil
	}
	for _, name := range strings.Split(only, ",") {
		name = strings.TrimSpace(name)
		if _, ok := selected[name]; !ok {
			return nil, fmt.Errorf("-only %q: %q is none of meshguard-ingest, meshguard-detect, otelcol-clickhouse, otelcol-nop", only, name)
		}
		selected[name] = true
	}
	return selected, nil
}

func (b *runner) report(results []result) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "run\tconsumer\trecords\tmessages\twall\tfirst\trecords/s\tpeak RSS\tCPU\trecords/CPU-s\tKafka CPU\tClickHouse CPU\tload before\t")
	row := func(run string, r result) {
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%.2fs\t%.2fs\t%.0fk\t%.0f MB\t%.1fs\t%.0fk\t%.1fs\t%.1fs\t%s\t\n",
			run, r.consumer, b.data.records, b.data.messages, r.wall.Seconds(), r.startup.Seconds(),
			b.rate(r.wall)/1e3, float64(r.peakRSS)/(1<<20), r.cpu.Seconds(), b.rate(r.cpu)/1e3,
			r.kafkaCPU.Seconds(), r.clickhouseCPU.Seconds(), r.loadBefore)
	}
	for _, r := range results {
		row(fmt.Sprint(r.run), r)
	}
	medians := map[string]result{}
	for _, c := range consumers {
		var rs []result
		for _, r := range results {
			if r.consumer == c.name {
				rs = append(rs, r)
			}
		}
		if len(rs) == 0 {
			continue
		}
		m := result{
			consumer:      c.name,
			wall:          median(rs, func(r result) time.Duration { return r.wall }),
			startup:       median(rs, func(r result) time.Duration { return r.startup }),
			peakRSS:       int64(median(rs, func(r result) time.Duration { return time.Duration(r.peakRSS) })),
			cpu:           median(rs, func(r result) time.Duration { return r.cpu }),
			kafkaCPU:      median(rs, func(r result) time.Duration { return r.kafkaCPU }),
			clickhouseCPU: median(rs, func(r result) time.Duration { return r.clickhouseCPU }),
			loadBefore:    "-",
		}
		medians[c.name] = m
		row("median", m)
	}
	w.Flush()

	// Side by side, the medians against the cheapest thing a collector
	// does with these messages (receive and drop).
	fmt.Println()
	w = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "consumer (medians)\trecords/s\tpeak RSS\tCPU\tvs collector -> nop")
	nop, okNop := medians["otelcol-nop"]
	for _, c := range consumers {
		m, ok := medians[c.name]
		if !ok {
			continue
		}
		ratio := "-"
		if okNop {
			ratio = fmt.Sprintf("%.2fx", nop.wall.Seconds()/m.wall.Seconds())
		}
		fmt.Fprintf(w, "%s\t%.0f\t%.0f MB\t%.1fs\t%s\n", c.label, b.rate(m.wall), float64(m.peakRSS)/(1<<20), m.cpu.Seconds(), ratio)
	}
	w.Flush()
}

func (b *runner) rate(d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(b.data.records) / d.Seconds()
}

// median of an odd count is the middle value; of an even count, the mean
// of the two middle ones.
func median(rs []result, f func(result) time.Duration) time.Duration {
	v := make([]time.Duration, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// cleanKafka deletes what the runs left on the broker.
func (b *runner) cleanKafka() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if len(b.groups) > 0 {
		_, _ = b.kafkaClient.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: b.groups})
	}
	if topics := b.data.topics(); len(topics) > 0 {
		topics = append(topics, b.data.mixed.name+"-dlq")
		if _, err := b.kafkaClient.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: topics}); err != nil {
			fmt.Fprintf(os.Stderr, "ingestbench: delete topics %v: %v\n", topics, err)
		}
	}
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
