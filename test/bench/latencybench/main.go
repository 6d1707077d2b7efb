// Command latencybench measures how long meshguard takes to act on an
// attack, live: the scenario generator's mesh with every attack class,
// event time = wall clock, through the real Kafka into `meshguard serve`
// (ingest, detect, respond in enforce mode) with the real kube-apiserver
// and ClickHouse of test/infra. Per attack it reports the time from the
// attack's first record to the detection (raised by the detector; stored
// in ClickHouse) and to the applied AuthorizationPolicy (seen by
// listing every 200 ms), and the responder's own path from detection to policy; per
// class the median and p95 over the rounds.
//
//	go run ./test/bench/latencybench [flags]    (from the repository root)
//
// See test/bench/README.md.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/scenario"
	"github.com/meshguard/meshguard/test/bench"
	"github.com/meshguard/meshguard/test/testenv"
)

type options struct {
	rounds     int
	replay     time.Duration
	learning   time.Duration
	lead       time.Duration
	stagger    time.Duration
	attackFor  time.Duration
	wait       time.Duration
	scale      float64
	partitions int
	seed       uint64
	keep       bool
}

type env struct {
	brokers    []string
	chAddr     string
	ch         driver.Conn
	kafka      *kafka.Client
	kubeconfig string
	cs         kubernetes.Interface
	dyn        dynamic.Interface
	meshguard  string
	dir        string
}

// outcome is one attack of one round, measured.
type outcome struct {
	round  int
	attack scenario.Attack
	first  time.Time // event time (= wall clock) of its first record
	det    *detection
	policy *applied
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "latencybench:", err)
		os.Exit(1)
	}
}

func run() error {
	var o options
	flag.IntVar(&o.rounds, "rounds", 3, "rounds: each a fresh serve, topic, database and namespaces, with one attack of every class")
	flag.DurationVar(&o.replay, "replay", 12*time.Minute, "mesh history before now, played as fast as possible at the start of a round (the detector learns from it)")
	flag.DurationVar(&o.learning, "learning", 10*time.Minute, "detect.learning_period of serve (at most -replay)")
	flag.DurationVar(&o.lead, "lead", 150*time.Second, "wall-clock time from the start of a round to its first attack: the replay is produced and serve catches up on it meanwhile (the lag 10 s before the first attack is printed)")
	flag.DurationVar(&o.stagger, "stagger", 20*time.Second, "time between the starts of two attacks of a round")
	flag.DurationVar(&o.attackFor, "attack-for", 90*time.Second, "how long each attack lasts")
	flag.DurationVar(&o.wait, "wait", 120*time.Second, "how long after the last attack's start a round goes on (the longest time measured)")
	flag.Float64Var(&o.scale, "scale", 1, "multiplier of the benign traffic (1: about 1,900 records/s at the afternoon peak, as `meshguard simulate`)")
	flag.IntVar(&o.partitions, "partitions", 4, "partitions of each round's topic")
	flag.Uint64Var(&o.seed, "seed", 1, "seed of the generator (round r uses seed+r)")
	flag.BoolVar(&o.keep, "keep", false, "keep each round's topic, database, namespaces and serve log")
	flag.Parse()
	if o.learning > o.replay {
		return fmt.Errorf("-learning %v is longer than -replay %v: attacks would come while serve still learns", o.learning, o.replay)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e, err := setup(ctx)
	if err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(e.dir)
	}
	fmt.Printf("latencybench: %d rounds; each replays %v of the mesh (scale %g, detect.learning_period %v), then %d attacks at wall-clock speed, %v apart, %v each; respond.mode enforce\n",
		o.rounds, o.replay, o.scale, o.learning, len(models.DetectionKinds), o.stagger, o.attackFor)
	var all []outcome
	for r := 1; r <= o.rounds; r++ {
		fmt.Printf("round %d (load average %s)\n", r, loadAvg())
		got, err := e.round(ctx, o, r)
		if err != nil {
			return fmt.Errorf("round %d: %w", r, err)
		}
		all = append(all, got...)
	}
	report(all)
	return nil
}

func setup(ctx context.Context) (*env, error) {
	e := &env{
		brokers:    strings.Split(testenv.Lookup("MESHGUARD_TEST_KAFKA_BROKERS"), ","),
		chAddr:     testenv.Lookup("MESHGUARD_TEST_CLICKHOUSE_ADDR"),
		kubeconfig: testenv.Lookup("MESHGUARD_TEST_KUBECONFIG"),
	}
	if e.brokers[0] == "" || e.chAddr == "" || e.kubeconfig == "" {
		return nil, fmt.Errorf("no Kafka, ClickHouse or kube-apiserver: start them with `bash test/infra/infra.sh start` (env files in %s)", testenv.InfraDir())
	}
	var err error
	if e.ch, err = clickhouse.Open(&clickhouse.Options{Addr: []string{e.chAddr}, DialTimeout: 5 * time.Second}); err != nil {
		return nil, err
	}
	if err := e.ch.Ping(ctx); err != nil {
		return nil, fmt.Errorf("clickhouse %s: %w", e.chAddr, err)
	}
	e.kafka = &kafka.Client{Addr: kafka.TCP(e.brokers...), Timeout: 30 * time.Second}
	kube, err := clientcmd.BuildConfigFromFlags("", e.kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", e.kubeconfig, err)
	}
	if e.cs, err = kubernetes.NewForConfig(kube); err != nil {
		return nil, err
	}
	if e.dyn, err = dynamic.NewForConfig(kube); err != nil {
		return nil, err
	}
	if e.dir, err = os.MkdirTemp("", "latencybench-"); err != nil {
		return nil, err
	}
	e.meshguard = filepath.Join(e.dir, "meshguard")
	fmt.Fprintln(os.Stderr, "building meshguard")
	if out, err := exec.Command("go", "build", "-o", e.meshguard, "github.com/meshguard/meshguard/cmd/meshguard").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./cmd/meshguard (run from the repository root): %v\n%s", err, out)
	}
	return e, nil
}

// round runs one serve through a replay and every attack, and measures
// each attack.
func (e *env) round(ctx context.Context, o options, r int) ([]outcome, error) {
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := "lb" + hex.EncodeToString(b[:])
	prefix := id + "-"
	topic, db, group := id+"-logs", id, id+"-serve"

	mesh := prefixed(prefix)
	cl := &cluster{cs: e.cs, dyn: e.dyn, instance: id}
	if !o.keep {
		defer cl.clean()
	}
	if err := cl.prepare(ctx, mesh); err != nil {
		return nil, err
	}
	if err := bench.CreateTopic(ctx, e.kafka, topic, o.partitions); err != nil {
		return nil, err
	}
	if err := bench.CreateTopic(ctx, e.kafka, topic+"-dlq", 1); err != nil {
		return nil, err
	}
	if err := e.ch.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		return nil, fmt.Errorf("clickhouse: create database %s: %w", db, err)
	}
	if !o.keep {
		defer e.cleanRound(topic, group, db)
	}

	now := time.Now().UTC().Truncate(time.Second)
	start := now.Add(-o.replay)
	attacks, err := schedule(prefix, now.Add(o.lead), o.stagger, o.attackFor)
	if err != nil {
		return nil, err
	}
	gen, err := scenario.NewWith(mesh, start, o.seed+uint64(r), scenario.Options{Dynamics: true, Scale: o.scale, Attacks: attacks})
	if err != nil {
		return nil, err
	}

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	policies, err := cl.pollPolicies(watchCtx)
	if err != nil {
		return nil, err
	}
	poll := &detectionPoll{conn: e.ch, db: db, seen: map[string]*detection{}}
	pollDone := make(chan struct{})
	go func() { poll.run(watchCtx); close(pollDone) }()

	logPath := filepath.Join(e.dir, id+"-serve.log")
	srv, err := e.startServe(o, id, prefix, topic, group, db, logPath)
	if err != nil {
		return nil, err
	}
	defer srv.Stop(30 * time.Second)

	w := &kafka.Writer{Addr: kafka.TCP(e.brokers...), Topic: topic, Balancer: &kafka.RoundRobin{},
		RequiredAcks: kafka.RequireAll, Compression: kafka.Zstd, BatchTimeout: time.Millisecond, BatchBytes: 16 << 20}
	defer w.Close()
	first := map[int]time.Time{}
	end := attacks[len(attacks)-1].Start.Add(o.wait)
	caughtUp := false
	for gen.Now().Before(end) {
		// Event time t is due at wall time t: the step [t, t+1s) goes out
		// once it is over, as a collector flushing every second sends it.
		if d := time.Until(gen.Now().Add(time.Second)); d > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(d):
			}
		}
		if srv.Exited() {
			return nil, srv.Failure("exited during the round")
		}
		ld := gen.Next(time.Second)
		records := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
		firstRecords(attacks, first, records)
		if err := cl.ensurePods(ctx, records); err != nil {
			return nil, err
		}
		values, err := scenario.Marshal(ld, 500)
		if err != nil {
			return nil, err
		}
		msgs := make([]kafka.Message, len(values))
		for i, v := range values {
			msgs[i].Value = v
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			return nil, fmt.Errorf("produce to %s: %w", topic, err)
		}
		if !caughtUp && !gen.Now().Before(attacks[0].Start.Add(-10*time.Second)) {
			caughtUp = true
			lag := e.lag(ctx, group, topic, o.partitions)
			fmt.Printf("  10 s before the first attack: serve's lag %d messages (replay of %v produced and consumed since %s)\n", lag, o.replay, now.Format(time.TimeOnly))
		}
	}
	fmt.Printf("  at the round's end: serve's lag %d messages\n", e.lag(ctx, group, topic, o.partitions))
	stopWatch()
	<-pollDone
	srv.Stop(30 * time.Second)
	_ = poll.poll(context.Background()) // what serve stored while stopping
	if err := cl.collect(ctx, policies); err != nil {
		return nil, err
	}

	var out []outcome
	for i, a := range attacks {
		oc := outcome{round: r, attack: a, first: first[i]}
		oc.det, oc.policy = match(a, poll.seen, policies)
		out = append(out, oc)
		printOutcome(oc)
	}
	if o.keep {
		fmt.Printf("  kept topic %s, database %s, namespaces %s*, serve log %s\n", topic, db, prefix, logPath)
	}
	return out, nil
}

// match finds a's detection (the earliest raised of its kind from its
// source after it started) and the earliest policy of any of those
// detections.
func match(a scenario.Attack, seen map[string]*detection, policies *policyPoll) (*detection, *applied) {
	var det *detection
	var pol *applied
	for _, d := range seen {
		if d.kind != string(a.Kind) || d.source != workloadOf(a.Source) || d.raised.Before(a.Start.Add(-time.Second)) {
			continue
		}
		if det == nil || d.raised.Before(det.raised) {
			det = d
		}
		if p, ok := policies.first(d.id); ok && (pol == nil || p.seen.Before(pol.seen)) {
			pol = &p
		}
	}
	return det, pol
}

func printOutcome(oc outcome) {
	a := oc.attack
	line := fmt.Sprintf("  %-20s first record %s", a.Kind, oc.first.Format("15:04:05.000"))
	if oc.first.IsZero() {
		line = fmt.Sprintf("  %-20s no record of the attack produced", a.Kind)
	}
	if oc.det != nil {
		line += fmt.Sprintf("  raised +%.1fs  stored +%.1fs", oc.det.raised.Sub(oc.first).Seconds(), oc.det.stored.Sub(oc.first).Seconds())
	} else {
		line += "  not detected"
	}
	if oc.policy != nil {
		line += fmt.Sprintf("  policy %s/%s +%.1fs", oc.policy.namespace, oc.policy.name, oc.policy.seen.Sub(oc.first).Seconds())
	}
	fmt.Println(line)
}

// report prints, per class, the median and p95 of each interval.
func report(all []outcome) {
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "class\tdetected\tfirst record -> raised (median, p95)\t-> stored in ClickHouse\t-> policy applied\tresponder: raised -> policy\t")
	for _, k := range models.DetectionKinds {
		var raised, stored, policy, responder []time.Duration
		n, detected, enforced := 0, 0, 0
		for _, oc := range all {
			if oc.attack.Kind != k || oc.first.IsZero() {
				continue
			}
			n++
			if oc.det == nil {
				continue
			}
			detected++
			raised = append(raised, oc.det.raised.Sub(oc.first))
			stored = append(stored, oc.det.stored.Sub(oc.first))
			if oc.policy != nil {
				enforced++
				policy = append(policy, oc.policy.seen.Sub(oc.first))
				responder = append(responder, oc.policy.seen.Sub(oc.det.raised))
			}
		}
		fmt.Fprintf(tw, "%s\t%d/%d (policy %d)\t%s\t%s\t%s\t%s\t\n", k, detected, n, enforced,
			quantiles(raised), quantiles(stored), quantiles(policy), quantiles(responder))
	}
	tw.Flush()
	fmt.Println("p95 is the nearest rank: with 3 rounds, the largest of the three.")
}

func quantiles(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	slices.Sort(ds)
	p95 := ds[int(math.Ceil(0.95*float64(len(ds))))-1]
	return fmt.Sprintf("%.1f s, %.1f s", median(ds).Seconds(), p95.Seconds())
}

func median(ds []time.Duration) time.Duration {
	n := len(ds)
	if n%2 == 1 {
		return ds[n/2]
	}
	return (ds[n/2-1] + ds[n/2]) / 2
}

// lag is how many messages of topic serve's group has not committed.
func (e *env) lag(ctx context.Context, group, topic string, partitions int) int64 {
	end, err := bench.EndOffsets(ctx, e.kafka, topic, partitions)
	if err != nil {
		return -1
	}
	got, err := bench.Committed(ctx, e.kafka, group, topic, partitions)
	if err != nil {
		return -1
	}
	var lag int64
	for p, off := range end {
		lag += off - max(got[p], 0)
	}
	return lag
}

func (e *env) cleanRound(topic, group, db string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = e.kafka.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: []string{group}})
	_, _ = e.kafka.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic, topic + "-dlq"}})
	_ = e.ch.Exec(ctx, "DROP DATABASE IF EXISTS "+db)
}

func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(data))[:3], " ")
}
