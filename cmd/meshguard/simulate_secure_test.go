package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/meshguard/meshguard/ingest"
	"github.com/meshguard/meshguard/test/testenv"
)

// TestSimulateOverTLSAndSASL: simulate writes through the same transport
// as the consumer, to a broker that takes nothing but TLS with SCRAM; a
// wrong password fails with the broker and kafka.sasl.password named.
func TestSimulateOverTLSAndSASL(t *testing.T) {
	ca := testenv.NewCA(t, "kafka")
	srv := ca.Server("127.0.0.1")
	brokers := testenv.Kfake(t, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{srv.TLS}, MinVersion: tls.VersionTLS12}),
		kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "sim", "sim-pw"), kfake.SeedTopics(1, "otlp_logs"))
	k := ingest.DefaultKafkaConfig()
	k.Brokers, k.TLS.CAFile = brokers, ca.CAFile
	k.SASL = ingest.KafkaSASL{Mechanism: "SCRAM-SHA-256", Username: "sim", Password: "sim-pw"}
	o := simulateOptions{
		brokers: strings.Join(brokers, ","), topic: "otlp_logs", duration: 20 * time.Second, learning: 0,
		attacks: "none", speed: 0, start: "2026-11-18T14:00:00Z", seed: 3, strength: 1, scale: 0.05, step: time.Second,
		security: &k,
	}
	var out bytes.Buffer
	if err := runSimulate(context.Background(), o, &out); err != nil {
		t.Fatalf("simulate over TLS+SASL: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "done:") {
		t.Fatalf("simulate did not finish:\n%s", out.String())
	}

	bad := k
	bad.SASL.Password = "wrong-pw"
	o.security = &bad
	out.Reset()
	err := runSimulate(context.Background(), o, &out)
	if err == nil || !strings.Contains(err.Error(), brokers[0]) || !strings.Contains(err.Error(), "kafka.sasl.password") {
		t.Fatalf("simulate with a wrong password: %v; want the broker and kafka.sasl.password named", err)
	}
	if strings.Contains(err.Error(), "wrong-pw") {
		t.Fatalf("error quotes the password: %v", err)
	}
}
