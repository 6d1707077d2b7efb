package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/spf13/cobra"

	"github.com/meshguard/meshguard/ingest"
	"github.com/meshguard/meshguard/scenario"
)

type simulateOptions struct {
	brokers  string
	topic    string
	duration time.Duration
	learning time.Duration
	attacks  string
	speed    float64
	start    string
	seed     uint64
	strength float64
	scale    float64
	step     time.Duration
	// config names the file whose kafka.tls and kafka.sasl secure the
	// connection (MESHGUARD_KAFKA_* variables apply too); security, when
	// set, is used instead (tests).
	config   string
	security *ingest.KafkaConfig
}

func newSimulateCmd() *cobra.Command {
	o := simulateOptions{topic: ingest.DefaultKafkaConfig().Topics.Logs}
	cmd := &cobra.Command{
		Use:   "simulate --kafka BROKERS",
		Short: "Produce a realistic mesh's access logs, with attacks, to Kafka",
		Long: `simulate plays a 33-workload mesh (diurnal load, bursty clients, retries,
canary deploys, a new version calling a new endpoint, batch jobs, a brief
incident) in event time and writes its Istio access logs to Kafka as the
OpenTelemetry Collector does: OTLP protobuf ExportLogsServiceRequest
messages (under 1 MB each, zstd, acks=all), one batch per --step of event
time.

Attacks (--attacks: a comma-separated list of kinds, "all" (default) or
"none") are spread over the time after --learning, one each, from
different sources; the schedule, with each attack's source, destination
and times, is printed first. The same --seed, --start and flags give the
same telemetry.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSimulate(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.brokers, "kafka", "", "bootstrap brokers, host:port[,host:port...] (required)")
	f.StringVar(&o.topic, "topic", o.topic, "topic to write the access logs to")
	f.DurationVar(&o.duration, "duration", 2*time.Hour, "event time to play")
	f.DurationVar(&o.learning, "learning", time.Hour, "event time before the first attack (the detector's learning period)")
	f.StringVar(&o.attacks, "attacks", "all", `attacks to inject: comma-separated kinds (e.g. scan,exfiltration), "all" or "none"`)
	f.Float64Var(&o.speed, "speed", 1, "event-time seconds per wall-clock second; 0 = as fast as possible")
	f.StringVar(&o.start, "start", "now", `event time the mesh starts at (RFC 3339, or "now")`)
	f.Uint64Var(&o.seed, "seed", 1, "seed of the generator")
	f.Float64Var(&o.strength, "strength", 1, "strength of every attack (a multiplier of its intensity)")
	f.Float64Var(&o.scale, "scale", 1, "multiplier of the benign traffic (at 1, about 950 requests/s, 1,900 access-log records/s, at the afternoon peak)")
	f.DurationVar(&o.step, "step", time.Second, "event time per batch of messages (the collector's flush interval)")
	f.StringVar(&o.config, "config", "", "config file whose kafka.tls and kafka.sasl secure the connection (MESHGUARD_KAFKA_* variables apply as well)")
	_ = cmd.MarkFlagRequired("kafka")
	return cmd
}

// simulation is a parsed simulateOptions.
type simulation struct {
	brokers []string
	start   time.Time
	gen     *scenario.Generator
}

func (o simulateOptions) parse(now time.Time) (simulation, error) {
	var errs []error
	var s simulation
	for _, b := range strings.Split(o.brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			s.brokers = append(s.brokers, b)
		}
	}
	if len(s.brokers) == 0 {
		errs = append(errs, errors.New("--kafka: no brokers"))
	}
	if o.topic == "" {
		errs = append(errs, errors.New("--topic: empty"))
	}
	if o.duration <= 0 {
		errs = append(errs, fmt.Errorf("--duration: %v; want a positive duration", o.duration))
	}
	if o.learning < 0 {
		errs = append(errs, fmt.Errorf("--learning: %v; want 0 or more", o.learning))
	}
	if o.speed < 0 {
		errs = append(errs, fmt.Errorf("--speed: %g; want 0 (as fast as possible) or more", o.speed))
	}
	if o.strength <= 0 {
		errs = append(errs, fmt.Errorf("--strength: %g; want more than 0", o.strength))
	}
	if o.scale <= 0 {
		errs = append(errs, fmt.Errorf("--scale: %g; want more than 0", o.scale))
	}
	if o.step < time.Millisecond || o.step > time.Minute {
		errs = append(errs, fmt.Errorf("--step: %v; want 1ms to 1m", o.step))
	}
	s.start = now.UTC().Truncate(time.Second)
	if o.start != "now" {
		t, err := time.Parse(time.RFC3339, o.start)
		if err != nil {
			errs = append(errs, fmt.Errorf("--start: %w", err))
		}
		s.start = t.UTC()
	}
	kinds, err := scenario.ParseKinds(o.attacks)
	if err != nil {
		errs = append(errs, fmt.Errorf("--attacks: %w", err))
	}
	if len(errs) > 0 {
		return s, errors.Join(errs...)
	}
	attacks, err := scenario.Spread(kinds, s.start, o.learning, o.duration, o.strength)
	if err != nil {
		return s, fmt.Errorf("--attacks: %w (lengthen --duration or shorten --learning)", err)
	}
	s.gen, err = scenario.NewWith(scenario.RealisticMesh(), s.start, o.seed,
		scenario.Options{Dynamics: true, Scale: o.scale, Attacks: attacks})
	return s, err
}

func runSimulate(ctx context.Context, o simulateOptions, out io.Writer) error {
	s, err := o.parse(time.Now())
	if err != nil {
		return err
	}
	speed := "as fast as possible"
	if o.speed > 0 {
		speed = fmt.Sprintf("%gx", o.speed)
	}
	fmt.Fprintf(out, "meshguard simulate: %v of a 33-workload mesh from %s, %s, seed %d, to %s on %s\n",
		o.duration, s.start.Format(time.RFC3339), speed, o.seed, o.topic, strings.Join(s.brokers, ","))
	printSchedule(out, s.start, s.gen.Attacks())

	transport, kcfg, err := o.transport()
	if err != nil {
		return err
	}
	kcfg.Brokers = s.brokers // --kafka names them; the config gives TLS and SASL
	w := &kafka.Writer{Addr: kafka.TCP(s.brokers...), Topic: o.topic, Balancer: &kafka.RoundRobin{}, Transport: transport,
		RequiredAcks: kafka.RequireAll, Compression: kafka.Zstd, BatchTimeout: time.Millisecond,
		BatchBytes: 16 << 20, AllowAutoTopicCreation: true}
	defer w.Close()

	end := s.start.Add(o.duration)
	wallStart := time.Now()
	lastReport := wallStart
	var records, messages int
	stopped := func() error {
		// Interrupted (SIGINT/SIGTERM): a clean stop between writes.
		fmt.Fprintf(out, "stopped at event time %s: %d access-log records in %d messages\n",
			s.gen.Now().Format(time.RFC3339), records, messages)
		return nil
	}
	for s.gen.Now().Before(end) {
		step := min(o.step, end.Sub(s.gen.Now()))
		if o.speed > 0 {
			// Event time t is due at wall time wallStart + (t-start)/speed.
			due := wallStart.Add(time.Duration(float64(s.gen.Now().Add(step).Sub(s.start)) / o.speed))
			if d := time.Until(due); d > 0 {
				select {
				case <-ctx.Done():
					return stopped()
				case <-time.After(d):
				}
			}
		}
		if ctx.Err() != nil {
			return stopped()
		}
		ld := s.gen.Next(step)
		values, err := scenario.Marshal(ld, 500)
		if err != nil {
			return err
		}
		msgs := make([]kafka.Message, len(values))
		for i, v := range values {
			msgs[i].Value = v
		}
		// Never cancel a write midway: it may land anyway, uncounted. The
		// loop stops between writes instead.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		err = w.WriteMessages(wctx, msgs...)
		cancel()
		if err != nil {
			return fmt.Errorf("writing to %s: %w", o.topic, kcfg.Diagnose(ctx, err))
		}
		records += ld.LogRecordCount()
		messages += len(msgs)
		if time.Since(lastReport) >= 10*time.Second {
			lastReport = time.Now()
			fmt.Fprintf(out, "  %s  %d records in %d messages\n", s.gen.Now().Format(time.RFC3339), records, messages)
		}
	}
	fmt.Fprintf(out, "done: %v of event time, %d access-log records in %d messages, in %v\n",
		o.duration, records, messages, time.Since(wallStart).Round(time.Millisecond))
	return nil
}

// transport is the Kafka transport with the TLS and SASL of the config,
// built by the same code as the consumer's.
func (o simulateOptions) transport() (*kafka.Transport, *ingest.KafkaConfig, error) {
	k := o.security
	if k == nil && o.config != "" {
		cfg, err := LoadConfig(o.config, os.Environ())
		if err != nil {
			return nil, nil, err
		}
		k = &cfg.Kafka
	}
	if k == nil {
		// No file: the defaults and MESHGUARD_KAFKA_* variables. Only the
		// kafka section is checked: simulate needs no other.
		cfg := DefaultConfig()
		if err := applyEnv(&cfg, os.Environ()); err != nil {
			return nil, nil, err
		}
		if err := cfg.Kafka.Validate(); err != nil {
			return nil, nil, fmt.Errorf("config is not valid:\n%w", err)
		}
		k = &cfg.Kafka
	}
	k = new(*k) // a copy: the caller sets its brokers
	t, err := k.Transport()
	return t, k, err
}

// printSchedule writes the ground truth: what attacks when, from whom.
func printSchedule(out io.Writer, start time.Time, attacks []scenario.Attack) {
	if len(attacks) == 0 {
		fmt.Fprintln(out, "no attacks: benign traffic only")
		return
	}
	fmt.Fprintln(out, "attack schedule (event time):")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  kind\tsource\tdestination\tstart\tend\toffset\tstrength")
	for _, a := range attacks {
		dst := a.Destination
		if dst == "" {
			dst = "* (every service)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t+%v\t%g\n", a.Kind, a.Source, dst,
			a.Start.Format(time.RFC3339), a.End.Format(time.RFC3339), a.Start.Sub(start), a.Strength)
	}
	tw.Flush()
}
