package ingest_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/meshguard/meshguard/ingest"
	"github.com/meshguard/meshguard/scenario"
	"github.com/meshguard/meshguard/test/testenv"
)

// secureKfake starts a kfake broker that accepts only TLS connections
// (with a client certificate when mtls) and only SASL-authenticated
// clients: user with pass over mechanism. It seeds topics logs and dlq.
func secureKfake(t *testing.T, mtls bool, mechanism, user, pass string) ([]string, *testenv.CA) {
	t.Helper()
	ca := testenv.NewCA(t, "kafka")
	srv := ca.Server("127.0.0.1", "localhost")
	tc := &tls.Config{Certificates: []tls.Certificate{srv.TLS}, MinVersion: tls.VersionTLS12}
	if mtls {
		tc.ClientAuth = tls.RequireAndVerifyClientCert
		tc.ClientCAs = ca.Pool()
	}
	brokers := testenv.Kfake(t, kfake.TLS(tc), kfake.EnableSASL(), kfake.Superuser(mechanism, user, pass),
		kfake.SeedTopics(1, "logs", "dlq"))
	return brokers, ca
}

func secureConfig(brokers []string, ca *testenv.CA, mechanism, user, pass string) (ingest.KafkaConfig, ingest.IngestConfig) {
	k, i := config(brokers, "logs", "g-"+mechanism)
	k.DLQTopic = "dlq"
	k.TLS.CAFile = ca.CAFile
	k.SASL = ingest.KafkaSASL{Mechanism: mechanism, Username: user, Password: pass}
	return k, i
}

// logBuffer collects a consumer's log lines, safe for concurrent writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestKafkaTLSAndSASL: with the right CA, client certificate and
// credentials, a producer built from KafkaConfig.Transport writes, the
// consumer (Reader through KafkaConfig.Dialer) stores what it read, its
// DLQ writer (Transport) dead-letters the undecodable message, and a
// reader through the same Dialer reads the dead letter back. A broker that
// refuses anything else proves every connection used TLS and SASL.
func TestKafkaTLSAndSASL(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			brokers, ca := secureKfake(t, true, mech, "meshguard", "s3cret-"+mech)
			k, i := secureConfig(brokers, ca, mech, "meshguard", "")
			client := ca.Client("meshguard")
			k.TLS.CertFile, k.TLS.KeyFile = client.CertFile, client.KeyFile
			// The password from a file, as from a mounted Secret.
			k.SASL.PasswordFile = filepath.Join(t.TempDir(), "password")
			if err := os.WriteFile(k.SASL.PasswordFile, []byte("s3cret-"+mech+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := k.Validate(); err != nil {
				t.Fatal(err)
			}

			transport, err := k.Transport()
			if err != nil {
				t.Fatal(err)
			}
			ld := scenario.New(scenario.DefaultMesh(), time.Date(2026, 11, 18, 3, 0, 0, 0, time.UTC), 7).Next(time.Second)
			value, err := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
			if err != nil {
				t.Fatal(err)
			}
			w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: "logs", Transport: transport, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := w.WriteMessages(ctx, kafka.Message{Value: value}, kafka.Message{Key: []byte("bad"), Value: []byte("\x0a\xff\xff\xff\xff\x0f garbage")}); err != nil {
				t.Fatalf("produce over TLS+SASL %s: %v", mech, err)
			}
			w.Close()

			s := newSink()
			r := start(t, k, i, s)
			waitFor(t, "the flows and one dead letter", time.Minute, func() bool {
				return s.distinct() >= ld.LogRecordCount() && r.c.Stats().DeadLettered >= 1
			})
			r.stop(t)
			if st := r.c.Stats(); st.ConnectFailures != 0 {
				t.Errorf("%d failed connection attempts with the right settings", st.ConnectFailures)
			}

			dialer, err := k.Dialer()
			if err != nil {
				t.Fatal(err)
			}
			rd := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: "dlq", Partition: 0, Dialer: dialer, MaxWait: 500 * time.Millisecond})
			defer rd.Close()
			m, err := rd.ReadMessage(ctx)
			if err != nil {
				t.Fatalf("reading the dead letter back: %v", err)
			}
			if string(m.Key) != "bad" {
				t.Fatalf("dead letter key %q, want bad", m.Key)
			}
		})
	}
}

// TestKafkaWrongSettingsAreNamed: each wrong setting gives, within the
// dial timeout, an error that names the broker and the key to fix.
func TestKafkaWrongSettingsAreNamed(t *testing.T) {
	brokers, ca := secureKfake(t, false, "SCRAM-SHA-256", "meshguard", "right-password")
	other := testenv.NewCA(t, "other")
	for _, tc := range []struct {
		name   string
		change func(k *ingest.KafkaConfig)
		want   string
	}{
		{"right", func(k *ingest.KafkaConfig) {}, ""},
		{"wrong password", func(k *ingest.KafkaConfig) { k.SASL.Password = "wrong-password" }, "kafka.sasl.password"},
		{"wrong user", func(k *ingest.KafkaConfig) { k.SASL.Username = "nobody" }, "kafka.sasl.password"},
		{"wrong mechanism", func(k *ingest.KafkaConfig) { k.SASL.Mechanism = "PLAIN" }, "kafka.sasl.mechanism"},
		{"no SASL", func(k *ingest.KafkaConfig) { k.SASL = ingest.KafkaSASL{} }, "kafka.sasl"},
		{"wrong CA", func(k *ingest.KafkaConfig) { k.TLS.CAFile = other.CAFile }, "kafka.tls.ca_file"},
		{"system CAs", func(k *ingest.KafkaConfig) { k.TLS.CAFile = ""; k.TLS.Enabled = true }, "kafka.tls.ca_file"},
		{"wrong server name", func(k *ingest.KafkaConfig) { k.TLS.ServerName = "kafka.example" }, "kafka.tls.server_name"},
		{"no TLS", func(k *ingest.KafkaConfig) { k.TLS = ingest.KafkaTLS{} }, "kafka.tls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, _ := secureConfig(brokers, ca, "SCRAM-SHA-256", "meshguard", "right-password")
			tc.change(&k)
			// A bound far above the dial timeout: a hang fails here, with
			// the context's error instead of the key.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			err := k.Probe(ctx)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("right settings: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("the broker accepted the wrong setting")
			}
			t.Logf("error: %v", err)
			if !strings.Contains(err.Error(), brokers[0]) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q; want it to name the broker %s and %s", err, brokers[0], tc.want)
			}
			if strings.Contains(err.Error(), "right-password") || strings.Contains(err.Error(), "wrong-password") {
				t.Fatalf("error %q quotes the password", err)
			}
		})
	}
}

// TestConsumerRetriesWrongCredentials: a consumer with a wrong password
// neither exits nor hangs silently: it logs the cause (broker and key)
// at error level, reports it through ConnectError, retries with backoff
// and stops promptly when cancelled. The password never reaches the log.
func TestConsumerRetriesWrongCredentials(t *testing.T) {
	brokers, ca := secureKfake(t, false, "SCRAM-SHA-512", "meshguard", "right-password")
	k, i := secureConfig(brokers, ca, "SCRAM-SHA-512", "meshguard", "wrong-password-marker")
	var logs logBuffer
	c, err := ingest.NewConsumer(k, i, newSink(), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	waitFor(t, "two failed connection attempts", time.Minute, func() bool { return c.Stats().ConnectFailures >= 2 })
	cerr := c.ConnectError()
	if cerr == nil || !strings.Contains(cerr.Error(), "kafka.sasl.password") {
		t.Fatalf("ConnectError() = %v; want the rejected password named", cerr)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v after cancel; want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of cancel")
	}
	out := logs.String()
	if !strings.Contains(out, "level=ERROR") || !strings.Contains(out, brokers[0]) || !strings.Contains(out, "kafka.sasl.password") {
		t.Fatalf("log does not report the rejected password at error level with the broker:\n%s", out)
	}
	if strings.Contains(out, "wrong-password-marker") {
		t.Fatalf("log holds the password:\n%s", out)
	}
}

func TestKafkaSecurityValidate(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	empty := filepath.Join(dir, "empty")
	for _, f := range []string{notPEM, empty} {
		if err := os.WriteFile(f, []byte(map[string]string{notPEM: "hello", empty: "\n"}[f]), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		change func(k *ingest.KafkaConfig)
		want   []string
	}{
		{"defaults", func(k *ingest.KafkaConfig) {}, nil},
		{"unknown mechanism", func(k *ingest.KafkaConfig) {
			k.SASL = ingest.KafkaSASL{Mechanism: "GSSAPI", Username: "u", Password: "p"}
			k.TLS.Enabled = true
		}, []string{`kafka.sasl.mechanism: "GSSAPI" is not supported; use one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512`}},
		{"no username or password", func(k *ingest.KafkaConfig) {
			k.SASL = ingest.KafkaSASL{Mechanism: "SCRAM-SHA-512"}
		}, []string{"kafka.sasl.username: empty", "kafka.sasl.password: empty; set kafka.sasl.password_file"}},
		{"both password and file", func(k *ingest.KafkaConfig) {
			k.SASL = ingest.KafkaSASL{Mechanism: "SCRAM-SHA-512", Username: "u", Password: "p", PasswordFile: empty}
		}, []string{"kafka.sasl.password and kafka.sasl.password_file are both set"}},
		{"unreadable password file", func(k *ingest.KafkaConfig) {
			k.SASL = ingest.KafkaSASL{Mechanism: "SCRAM-SHA-512", Username: "u", PasswordFile: filepath.Join(dir, "missing")}
		}, []string{"kafka.sasl.password_file: open " + filepath.Join(dir, "missing")}},
		{"empty password file", func(k *ingest.KafkaConfig) {
			k.SASL = ingest.KafkaSASL{Mechanism: "SCRAM-SHA-512", Username: "u", PasswordFile: empty}
		}, []string{"kafka.sasl.password_file: " + empty + " is empty"}},
		{"credentials without mechanism", func(k *ingest.KafkaConfig) {
			k.SASL = ingest.KafkaSASL{Username: "u", Password: "p"}
		}, []string{"kafka.sasl.mechanism: empty while kafka.sasl credentials are set"}},
		{"PLAIN without TLS", func(k *ingest.KafkaConfig) {
			k.SASL = ingest.KafkaSASL{Mechanism: "PLAIN", Username: "u", Password: "p"}
		}, []string{"kafka.sasl.mechanism: PLAIN sends the password in clear"}},
		{"unreadable CA", func(k *ingest.KafkaConfig) { k.TLS.CAFile = filepath.Join(dir, "missing-ca.pem") },
			[]string{"kafka.tls.ca_file: open " + filepath.Join(dir, "missing-ca.pem")}},
		{"CA not PEM", func(k *ingest.KafkaConfig) { k.TLS.CAFile = notPEM },
			[]string{"kafka.tls.ca_file: " + notPEM + " holds no PEM certificate"}},
		{"cert without key", func(k *ingest.KafkaConfig) { k.TLS.CertFile = notPEM },
			[]string{"kafka.tls.cert_file and kafka.tls.key_file: set both"}},
		{"bad client cert", func(k *ingest.KafkaConfig) { k.TLS.CertFile, k.TLS.KeyFile = notPEM, notPEM },
			[]string{"kafka.tls.cert_file/key_file:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := ingest.DefaultKafkaConfig()
			tc.change(&k)
			err := k.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("valid; want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q; want %q in it", err, w)
				}
			}
			if strings.Contains(err.Error(), `"p"`) {
				t.Errorf("error %q quotes the password", err)
			}
		})
	}
}

// TestKafkaSASLRedacted: printing or logging the config shows no password.
func TestKafkaSASLRedacted(t *testing.T) {
	k := ingest.DefaultKafkaConfig()
	k.SASL = ingest.KafkaSASL{Mechanism: "SCRAM-SHA-512", Username: "meshguard", Password: "marker-kafka-pw"}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "kafka", k, "sasl", k.SASL)
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "kafka", k, "sasl", k.SASL)
	out := fmt.Sprintf("%v %+v %#v %s", k, k, k, k.SASL) + logs.String()
	if strings.Contains(out, "marker-kafka-pw") {
		t.Fatalf("password printed:\n%s", out)
	}
	if !strings.Contains(out, "[redacted]") {
		t.Fatalf("no [redacted] in:\n%s", out)
	}
}
