package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/meshguard/meshguard/ingest"
	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/scenario"
	"github.com/meshguard/meshguard/test/testenv"
)

// simulate must put on Kafka exactly what its generator plays, in the
// form ingest decodes, with every attack of the schedule in it.
func TestSimulateProducesDecodableTelemetryWithTheAttacks(t *testing.T) {
	const partitions = 2
	topic := ingest.DefaultKafkaConfig().Topics.Logs
	brokers := testenv.Kfake(t, kfake.SeedTopics(partitions, topic))
	o := simulateOptions{
		brokers: strings.Join(brokers, ","), topic: topic, duration: 4 * time.Minute, learning: 40 * time.Second,
		attacks: "all", speed: 0, start: "2026-11-18T14:00:00Z", seed: 3, strength: 1, scale: 0.05, step: time.Second,
	}
	var out bytes.Buffer
	if err := runSimulate(context.Background(), o, &out); err != nil {
		t.Fatalf("simulate: %v\n%s", err, out.String())
	}
	for _, k := range models.DetectionKinds {
		if !strings.Contains(out.String(), "  "+string(k)+" ") {
			t.Errorf("schedule lacks %s:\n%s", k, out.String())
		}
	}

	// The same options give the same generator: count what it plays.
	s, err := o.parse(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	attacks := s.gen.Attacks()
	want := 0
	for s.gen.Now().Before(s.start.Add(o.duration)) {
		want += s.gen.Next(o.step).LogRecordCount()
	}

	dec := ingest.NewDecoder(ingest.DecoderConfig{})
	var flows []models.Flow
	messages := 0
	for p := 0; p < partitions; p++ {
		for _, m := range readPartition(t, brokers[0], topic, p) {
			messages++
			if len(m.Value) > scenario.MaxMessageBytes {
				t.Errorf("message of %d bytes, over the 1 MB limit", len(m.Value))
			}
			flows, err = dec.Decode(ingest.SignalLogs, m.Value, models.FlowIDBase{}, flows)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
		}
	}
	if len(flows) != want {
		t.Fatalf("decoded %d flows from %d messages; the generator played %d records", len(flows), messages, want)
	}

	// Each attack's source sent traffic inside its window.
	for _, a := range attacks {
		src := a.Source[strings.IndexByte(a.Source, '/')+1:]
		n := 0
		for i := range flows {
			f := &flows[i]
			if f.Source.Workload == src && a.Active(f.Time()) {
				switch a.Kind {
				case models.Scan:
					if f.ResponseCode == 0 || f.ResponseCode == 404 || f.ResponseCode == 403 {
						n++
					}
				case models.MTLSDowngrade:
					if f.TLS == models.TLSPlaintext {
						n++
					}
				case models.CredentialStuffing:
					if f.ResponseCode == 401 {
						n++
					}
				default:
					n++
				}
			}
		}
		if n == 0 {
			t.Errorf("no traffic of %v", a)
		}
	}
}

func readPartition(t *testing.T, broker, topic string, partition int) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := kafka.DialLeader(ctx, "tcp", broker, topic, partition)
	if err != nil {
		t.Fatal(err)
	}
	last, err := conn.ReadLastOffset()
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{broker}, Topic: topic, Partition: partition, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	var msgs []kafka.Message
	for int64(len(msgs)) < last {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("reading partition %d at %d of %d: %v", partition, len(msgs), last, err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

func TestSimulateRejectsBadFlagsAtOnce(t *testing.T) {
	o := simulateOptions{brokers: " ", topic: "otlp_logs", duration: time.Hour, learning: time.Hour,
		attacks: "scan,dos", speed: -1, start: "yesterday", strength: 0, scale: 1, step: time.Second}
	_, err := o.parse(time.Now())
	if err == nil {
		t.Fatal("bad flags accepted")
	}
	for _, want := range []string{"--kafka", "--attacks", "--speed", "--start", "--strength"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	o = simulateOptions{brokers: "b:9092", topic: "otlp_logs", duration: time.Hour, learning: time.Hour,
		attacks: "all", speed: 1, start: "now", strength: 1, scale: 1, step: time.Second}
	if _, err := o.parse(time.Now()); err == nil || !strings.Contains(err.Error(), "--duration") {
		t.Errorf("attacks with no time after learning: %v", err)
	}
	o.attacks = "none"
	s, err := o.parse(time.Now())
	if err != nil || len(s.gen.Attacks()) != 0 {
		t.Errorf("--attacks none: %v, %v", err, s.gen.Attacks())
	}
}

func TestSimulateIsRegistered(t *testing.T) {
	cmd := newRootCmd()
	cmd.SetArgs([]string{"simulate"})
	cmd.SetOut(&bytes.Buffer{})
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "kafka") {
		t.Fatalf("simulate without --kafka: %v", err)
	}
}

func TestSimulateStopsCleanlyWhenInterrupted(t *testing.T) {
	brokers := testenv.Kfake(t, kfake.SeedTopics(1, "otlp_logs"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	o := simulateOptions{brokers: strings.Join(brokers, ","), topic: "otlp_logs", duration: time.Hour, learning: 0,
		attacks: "none", speed: 1, start: "now", seed: 1, strength: 1, scale: 1, step: time.Second}
	var out bytes.Buffer
	if err := runSimulate(ctx, o, &out); err != nil || !strings.Contains(out.String(), "stopped at event time") {
		t.Fatalf("interrupted simulate: %v\n%s", err, out.String())
	}
}
