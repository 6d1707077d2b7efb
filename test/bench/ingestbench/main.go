// Command ingestbench measures end-to-end ingest on the real servers of
// test/infra: `meshguard serve` (Kafka -> decode -> ClickHouse, every flow
// stored) against the OpenTelemetry Collector's kafka receiver with a nop
// exporter (Kafka -> decode -> dropped), on the same messages in one run.
//
//	go run ./test/bench/ingestbench [flags]    (from the repository root)
//
// It produces the messages once, before any timing, to a fresh topic; then
// each run starts each consumer as a subprocess in a fresh consumer group
// (meshguard also on a fresh database) and times it from process start
// until everything went through, reading its peak RSS and CPU time from
// /proc. See test/bench/README.md.
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

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ingestbench:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		messages    = flag.Int("messages", 2000, "messages to produce (1M records at 500 a message)")
		perMessage  = flag.Int("per-message", 500, "log records in every message (deploy/collector's send_batch_max_size)")
		partitions  = flag.Int("partitions", 4, "partitions of the fresh topic")
		runs        = flag.Int("runs", 3, "runs of each consumer over the same messages; medians are printed")
		body        = flag.Bool("body", true, "give each record Istio's default text line as body, as the envoyOtelAls provider sends it with labels but no text format")
		compression = flag.String("compression", "zstd", "producer compression: none, gzip, snappy, lz4, zstd (the default is deploy/collector's)")
		only        = flag.String("only", "", "run only this consumer: meshguard or otelcol")
		brokers     = flag.String("brokers", "", "Kafka bootstrap brokers (default: test/infra's)")
		chAddr      = flag.String("clickhouse", "", "ClickHouse native address host:port (default: test/infra's)")
		otelcol     = flag.String("otelcol", "", "collector binary (default: built and cached by test/bench/otelcol.sh)")
		timeout     = flag.Duration("timeout", 10*time.Minute, "give up on a consumer run after this long")
		keep        = flag.Bool("keep", false, "keep the topic, groups and databases (and the work directory) for inspection")
	)
	flag.Parse()
	codec, ok := map[string]compress.Compression{"none": 0, "gzip": compress.Gzip, "snappy": compress.Snappy,
		"lz4": compress.Lz4, "zstd": compress.Zstd}[*compression]
	if !ok {
		return fmt.Errorf("-compression %q: use none, gzip, snappy, lz4 or zstd", *compression)
	}
	if *only != "" && *only != "meshguard" && *only != "otelcol" {
		return fmt.Errorf("-only %q: use meshguard or otelcol", *only)
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
		b.clickhouse = infraServer(testenv.InfraDir(), "clickhouse", "server.pid")
	}

	var err error
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
	b.kafkaClient = &kafka.Client{Addr: kafka.TCP(b.brokers...), Timeout: 30 * time.Second}

	if *only != "otelcol" {
		fmt.Fprintln(os.Stderr, "building meshguard")
		if b.meshguard, err = buildMeshguard(b.dir); err != nil {
			return err
		}
	}
	if *only != "meshguard" {
		b.otelcol = *otelcol
		if b.otelcol == "" {
			if b.otelcol, err = otelcolBinary(); err != nil {
				return err
			}
		}
	}

	topic := strings.ReplaceAll(b.id, "_", "-")
	if err := bench.CreateTopic(ctx, b.kafkaClient, topic, *partitions); err != nil {
		return err
	}
	if !b.keep {
		defer b.cleanKafka(topic)
	}
	fmt.Fprintf(os.Stderr, "producing %d messages to %s\n", *messages, topic)
	began := time.Now()
	records, size, err := bench.Produce(ctx, b.brokers, topic, bench.Messages{Count: *messages, PerMessage: *perMessage, Body: *body, Compression: codec})
	if err != nil {
		return err
	}
	end, err := bench.EndOffsets(ctx, b.kafkaClient, topic, *partitions)
	if err != nil {
		return err
	}
	b.data = dataset{topic: topic, partitions: *partitions, messages: *messages, records: records, bytes: size, end: end}
	var total int64
	for _, e := range end {
		total += e
	}
	if total != int64(*messages) {
		return fmt.Errorf("topic %s holds %d messages, %d were produced", topic, total, *messages)
	}
	fmt.Fprintf(os.Stderr, "produced %d records in %s\n", records, time.Since(began).Round(time.Second))

	fmt.Printf("ingestbench: %d records in %d messages (otlp_proto, %d records a message, text body %v, %.0f MB uncompressed, compression %s) on %d partitions\n",
		records, *messages, *perMessage, *body, float64(size)/1e6, *compression, *partitions)
	fmt.Printf("machine: %d cores shared with Kafka, ClickHouse and whatever else runs; load average before: %s\n", runtime.NumCPU(), loadAvg())

	// Alternate which consumer goes first, so neither always meets the
	// page cache, the broker or the machine's other load in the same state.
	var results []result
	for i := 1; i <= *runs; i++ {
		order := []string{"meshguard", "otelcol"}
		if i%2 == 0 {
			slices.Reverse(order)
		}
		for _, name := range order {
			if *only != "" && name != *only {
				continue
			}
			fmt.Fprintf(os.Stderr, "run %d: %s\n", i, name)
			var r result
			if name == "meshguard" {
				r, err = b.runMeshguard(ctx, i)
			} else {
				r, err = b.runCollector(ctx, i)
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
		fmt.Printf("kept topic %s, groups and databases %s_*, logs in %s\n", topic, b.id, b.dir)
	}
	return nil
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
	for _, name := range []string{"meshguard", "otelcol"} {
		var rs []result
		for _, r := range results {
			if r.consumer == name {
				rs = append(rs, r)
			}
		}
		if len(rs) == 0 {
			continue
		}
		m := result{
			consumer:      name,
			wall:          median(rs, func(r result) time.Duration { return r.wall }),
			startup:       median(rs, func(r result) time.Duration { return r.startup }),
			peakRSS:       int64(median(rs, func(r result) time.Duration { return time.Duration(r.peakRSS) })),
			cpu:           median(rs, func(r result) time.Duration { return r.cpu }),
			kafkaCPU:      median(rs, func(r result) time.Duration { return r.kafkaCPU }),
			clickhouseCPU: median(rs, func(r result) time.Duration { return r.clickhouseCPU }),
			loadBefore:    "-",
		}
		medians[name] = m
		row("median", m)
	}
	w.Flush()
	mg, okM := medians["meshguard"]
	oc, okO := medians["otelcol"]
	if okM && okO {
		fmt.Printf("meshguard / otelcol (medians): records/s %.2fx, peak RSS %.2fx, CPU %.2fx\n",
			oc.wall.Seconds()/mg.wall.Seconds(), float64(mg.peakRSS)/float64(oc.peakRSS), mg.cpu.Seconds()/oc.cpu.Seconds())
	}
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
func (b *runner) cleanKafka(topic string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if len(b.groups) > 0 {
		_, _ = b.kafkaClient.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: b.groups})
	}
	if _, err := b.kafkaClient.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}}); err != nil {
		fmt.Fprintf(os.Stderr, "ingestbench: delete topic %s: %v\n", topic, err)
	}
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
