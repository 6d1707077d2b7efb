package testenv

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// OwnKafka starts a private single-node Apache Kafka from test/infra's
// kafka.sh on free ports under a temp dir (stopped and deleted when the
// test ends): a fresh cluster (no __consumer_offsets yet) that the test may
// stop and restart without disturbing the shared broker. It needs the
// jars the shared broker's start cached.
func OwnKafka(t testing.TB, opts ...OwnOption) *OwnServer {
	t.Helper()
	locate(t, kafkaServer) // the shared one must exist: it fetched the jars
	s := &OwnServer{name: "kafka", dir: t.TempDir(), infra: infraScripts(t)}
	for _, o := range opts {
		o(s)
	}
	s.Start(t)
	t.Cleanup(func() { s.run(t, "clean") })
	return s
}

// Brokers returns the bootstrap brokers of a server started by OwnKafka.
func (s *OwnServer) Brokers() []string {
	return strings.Split(s.env["MESHGUARD_TEST_KAFKA_BROKERS"], ",")
}

// WithKafkaTLS gives the private Kafka a SASL_SSL listener (SCRAM-SHA-512
// over TLS with the PEM certificate and key given), at
// Get("MESHGUARD_TEST_KAFKA_SECURE_BROKERS"). A non-empty clientCA (PEM)
// makes that listener require client certificates it signed. Create the
// users with SetSCRAM.
func WithKafkaTLS(certFile, keyFile, clientCA string) OwnOption {
	return func(s *OwnServer) {
		s.extra = append(s.extra, "MESHGUARD_INFRA_KAFKA_TLS_CERT="+certFile, "MESHGUARD_INFRA_KAFKA_TLS_KEY="+keyFile,
			"MESHGUARD_INFRA_KAFKA_CLIENT_CA="+clientCA)
	}
}

// SetSCRAM creates user with password for SCRAM-SHA-512, or changes its
// password (a rotation), through the plaintext brokers, as kafka-configs
// --alter --add-config 'SCRAM-SHA-512=[password=...]' does.
func SetSCRAM(t testing.TB, brokers []string, user, password string) {
	t.Helper()
	salt := make([]byte, 32)
	if _, err := rand.Read(salt); err != nil {
		t.Fatal(err)
	}
	const iterations = 4096 // Kafka's minimum for SCRAM-SHA-512
	salted, err := pbkdf2.Key(sha512.New, password, salt, iterations, sha512.Size)
	if err != nil {
		t.Fatal(err)
	}
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 30 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := client.AlterUserScramCredentials(ctx, &kafka.AlterUserScramCredentialsRequest{
		Upsertions: []kafka.UserScramCredentialsUpsertion{{Name: user, Mechanism: kafka.ScramMechanismSha512,
			Iterations: iterations, Salt: salt, SaltedPassword: salted}}})
	if err == nil && len(resp.Results) == 1 {
		err = resp.Results[0].Error
	}
	if err != nil {
		t.Fatalf("kafka: set SCRAM-SHA-512 credentials of %s: %v", user, err)
	}
}
