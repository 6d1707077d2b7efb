package ingest_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/meshguard/meshguard/ingest"
	"github.com/meshguard/meshguard/test/testenv"
)

// SASL_SSL on Apache Kafka: SCRAM-SHA-512 over TLS with a client
// certificate required (mTLS), the password from a file as from a mounted
// Secret. The consumer stores every record and dead-letters through the
// same listener. Once the password is rotated on the broker, a start with
// the old one is refused with an error naming the user and
// kafka.sasl.password; with the new one in the file, ingest resumes.
func TestConsumerOverSASLSSLOnApacheKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: real Kafka not used")
	}
	ca := testenv.NewCA(t, "kafka")
	srv := ca.Server("127.0.0.1", "localhost")
	own := testenv.OwnKafka(t, testenv.WithKafkaTLS(srv.CertFile, srv.KeyFile, ca.CAFile))
	plain := own.Brokers()
	secure := []string{own.Get("MESHGUARD_TEST_KAFKA_SECURE_BROKERS")}
	if secure[0] == "" {
		t.Fatal("kafka.sh wrote no MESHGUARD_TEST_KAFKA_SECURE_BROKERS")
	}
	testenv.SetSCRAM(t, plain, "meshguard", "first-s3cret")

	topic := testenv.NewTopic(t, plain, 2)
	dlq := testenv.NewTopic(t, plain, 1)
	records := produceScenario(t, plain, topic, 4, 41)
	write(t, plain, topic, 0, kafka.Message{Key: []byte("bad"), Value: []byte("\x0a\xff\xff\xff\xff\x0f garbage")})

	k, i := config(secure, topic, topic+"-g")
	k.DLQTopic = dlq
	k.TLS.CAFile = ca.CAFile
	client := ca.Client("meshguard")
	k.TLS.CertFile, k.TLS.KeyFile = client.CertFile, client.KeyFile
	k.SASL = ingest.KafkaSASL{Mechanism: "SCRAM-SHA-512", Username: "meshguard",
		PasswordFile: filepath.Join(t.TempDir(), "password")}
	setPassword := func(p string) {
		if err := os.WriteFile(k.SASL.PasswordFile, []byte(p+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	setPassword("first-s3cret")
	if err := k.Validate(); err != nil {
		t.Fatal(err)
	}
	// The credentials reach the broker through the metadata log.
	waitFor(t, "the SCRAM user known to the broker", time.Minute, func() bool { return k.Probe(context.Background()) == nil })

	s := newSink()
	r := start(t, k, i, s)
	waitFor(t, "every flow and the dead letter", 2*time.Minute, func() bool {
		return s.distinct() >= records && r.c.Stats().DeadLettered >= 1
	})
	r.stop(t)
	if got, st := s.distinct(), r.c.Stats(); got != records || st.ConnectFailures != 0 {
		t.Fatalf("stored %d distinct flows of %d with %d failed connection attempts", got, records, st.ConnectFailures)
	}
	// Nothing answers without TLS and SASL on that listener.
	nok := k
	nok.TLS, nok.SASL = ingest.KafkaTLS{}, ingest.KafkaSASL{}
	if err := nok.Probe(context.Background()); err == nil {
		t.Fatal("the SASL_SSL listener answered a plaintext client")
	}

	// Rotation on the broker; meshguard still holds the old password.
	testenv.SetSCRAM(t, plain, "meshguard", "second-s3cret")
	waitFor(t, "the old password refused", time.Minute, func() bool { return k.Probe(context.Background()) != nil })
	logs := &logBuffer{}
	c, err := ingest.NewConsumer(k, i, newSink(), slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	stale := run(t, c)
	waitFor(t, "the refusal reported", time.Minute, func() bool { return stale.c.ConnectError() != nil })
	err = stale.c.ReadyError()
	stale.stop(t)
	if err == nil || !strings.Contains(err.Error(), `rejected user "meshguard"`) || !strings.Contains(err.Error(), "kafka.sasl.password") {
		t.Fatalf("ReadyError with a rotated password = %v; want the user and kafka.sasl.password named", err)
	}
	if out := logs.String(); !strings.Contains(out, "kafka.sasl.password") || strings.Contains(out, "s3cret") {
		t.Fatalf("the log must name kafka.sasl.password and never a password:\n%s", out)
	}

	setPassword("second-s3cret")
	more := produceScenario(t, plain, topic, 2, 42)
	s2 := newSink()
	r2 := start(t, k, i, s2)
	waitFor(t, "the new records with the rotated password", 2*time.Minute, func() bool { return s2.distinct() >= more })
	if got := s2.distinct(); got != more {
		t.Fatalf("after the rotation %d distinct flows, %d produced since the last commit", got, more)
	}

	// A rotation while meshguard runs: its open connections stay
	// authenticated until they break (here a broker restart); then every
	// new one is refused, and readiness says so with the key.
	testenv.SetSCRAM(t, plain, "meshguard", "third-s3cret")
	own.Stop(t)
	own.Start(t)
	waitFor(t, "the refusal of the running consumer reported", 2*time.Minute, func() bool {
		err := r2.c.ReadyError()
		return err != nil && strings.Contains(err.Error(), "kafka refuses the credentials")
	})
	if err := r2.c.ReadyError(); !strings.Contains(err.Error(), "kafka.sasl.password") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("ReadyError after a rotation while running = %v; want kafka.sasl.password named and no password", err)
	}
	r2.stop(t)
}
