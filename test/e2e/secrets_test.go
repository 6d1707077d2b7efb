package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/meshguard/meshguard/ingest"
	"github.com/meshguard/meshguard/scenario"
	"github.com/meshguard/meshguard/test/testenv"
)

// TestNoSecretInAnyOutput runs `meshguard serve` (ingest, detect, alert)
// against a Kafka that requires TLS and SASL and a ClickHouse that
// requires a password, with every secret a unique marker: once from
// MESHGUARD_* variables (the Slack webhook through its alias
// MESHGUARD_SLACK_WEBHOOK_URL), once from *_file keys, at debug level in
// text and JSON; then once with a wrong Kafka password, which must be
// reported naming the broker and kafka.sasl.password. It also runs
// `config check` (valid and invalid) and `config keys`. No output may hold
// any marker.
func TestNoSecretInAnyOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: needs a private ClickHouse")
	}
	const (
		kafkaPW   = "mkKafkaSasl9d1"
		chPW      = "mkClickhouse7c2"
		signing   = "mkSigning3b4"
		token     = "xoxb-mkToken6a9"
		wrongPW   = "mkWrongKafka0f5"
		hookToken = "mkWebhook5e8"
		apiToken  = "mkApiToken1d2e3f4a5b6"
	)
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true,"channel":"C1","ts":"1.2","user_id":"U1","team_id":"T1"}`)
	}))
	defer slack.Close()
	webhook := slack.URL + "/services/" + hookToken
	markers := []string{kafkaPW, chPW, signing, token, wrongPW, hookToken, apiToken}

	ca := testenv.NewCA(t, "kafka")
	srv := ca.Server("127.0.0.1", "localhost")
	brokers := testenv.Kfake(t, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{srv.TLS}, MinVersion: tls.VersionTLS12}),
		kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "meshguard", kafkaPW),
		kfake.SeedTopics(1, "otlp_logs", "meshguard.dlq"))
	ch := testenv.OwnClickHouse(t, testenv.WithPassword(chPW))
	chAddr := ch.Get("MESHGUARD_TEST_CLICKHOUSE18_ADDR")

	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	config := file("meshguard.yml", fmt.Sprintf(`kafka:
  brokers: [%s]
  topics: {logs: otlp_logs, spans: "", metrics: ""}
  session_timeout: 6s
  tls: {ca_file: %s}
  sasl: {mechanism: SCRAM-SHA-512, username: meshguard}
clickhouse:
  addr: [%s]
  username: meshguard
alert:
  slack:
    allowed_users: [U1]
server:
  listen: 127.0.0.1:0
  auth: {mode: token, tokens_file: %s}
`, brokers[0], ca.CAFile, chAddr, file("api-tokens", apiToken+" operator ops")))

	// Telemetry for serve to store, produced with the same TLS and SASL.
	k := ingest.DefaultKafkaConfig()
	k.Brokers, k.TLS.CAFile = brokers, ca.CAFile
	k.SASL = ingest.KafkaSASL{Mechanism: "SCRAM-SHA-512", Username: "meshguard", Password: kafkaPW}
	transport, err := k.Transport()
	if err != nil {
		t.Fatal(err)
	}
	// One second of the mesh: at the evening peak that is more than one
	// message may hold, so it is split as every producer splits.
	ld := scenario.New(scenario.DefaultMesh(), testenv.Now().Add(-time.Hour).Truncate(time.Minute), 11).Next(time.Second)
	values, err := scenario.Marshal(ld, 500)
	if err != nil {
		t.Fatal(err)
	}
	msgs := make([]kafka.Message, len(values))
	for i, v := range values {
		msgs[i].Value = v
	}
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: "otlp_logs", Transport: transport, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err = w.WriteMessages(ctx, msgs...)
	cancel()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}

	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{chAddr}, Auth: clickhouse.Auth{Username: "meshguard", Password: chPW}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	flows := func(db string) uint64 {
		var n uint64
		if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".flows").Scan(&n); err != nil {
			return 0 // not migrated yet
		}
		return n
	}

	var outputs []string
	runs := []struct {
		name string
		env  []string
	}{
		{"env", []string{
			"MESHGUARD_KAFKA_SASL_PASSWORD=" + kafkaPW,
			"MESHGUARD_CLICKHOUSE_PASSWORD=" + chPW,
			"MESHGUARD_SLACK_WEBHOOK_URL=" + webhook,
			"MESHGUARD_ALERT_SLACK_SIGNING_SECRET=" + signing,
			"MESHGUARD_LOG_LEVEL=debug",
		}},
		{"files", []string{
			"MESHGUARD_KAFKA_SASL_PASSWORD_FILE=" + file("kafka-password", kafkaPW),
			"MESHGUARD_CLICKHOUSE_PASSWORD_FILE=" + file("clickhouse-password", chPW),
			"MESHGUARD_ALERT_SLACK_TOKEN_FILE=" + file("slack-token", token),
			"MESHGUARD_ALERT_SLACK_SIGNING_SECRET_FILE=" + file("slack-signing", signing),
			"MESHGUARD_ALERT_SLACK_CHANNEL=C1",
			"MESHGUARD_ALERT_SLACK_API_URL=" + slack.URL + "/api/",
			"MESHGUARD_LOG_LEVEL=debug",
			"MESHGUARD_LOG_FORMAT=json",
		}},
	}
	for _, run := range runs {
		db := "secrets_" + run.name
		env := append([]string{"MESHGUARD_CLICKHOUSE_DATABASE=" + db, "MESHGUARD_KAFKA_GROUP_ID=g-" + run.name}, run.env...)

		check := exec.Command(binary, "config", "check", config)
		check.Env = append(os.Environ(), env...)
		out, err := check.CombinedOutput()
		outputs = append(outputs, string(out))
		if err != nil || !strings.Contains(string(out), ": ok") {
			t.Fatalf("%s: config check: %v", run.name, err) // output not printed: it would hold a marker if the test fails for leaking
		}

		p := startMeshguard(t, env, "serve", "--config", config, "--stages", "ingest,detect,alert")
		deadline := time.Now().Add(90 * time.Second)
		for flows(db) == 0 {
			if !p.alive() || time.Now().After(deadline) {
				t.Fatalf("%s: serve stored no flows within 90s (alive %v); %d bytes of output withheld", run.name, p.alive(), len(p.out.String()))
			}
			time.Sleep(200 * time.Millisecond)
		}
		p.terminate(t, 60*time.Second)
		outputs = append(outputs, p.out.String())
	}

	// A wrong Kafka password: serve stays up, says which broker and which
	// key, and keeps retrying; it never prints the password.
	{
		env := []string{"MESHGUARD_KAFKA_SASL_PASSWORD=" + wrongPW, "MESHGUARD_CLICKHOUSE_PASSWORD=" + chPW,
			"MESHGUARD_CLICKHOUSE_DATABASE=secrets_wrong", "MESHGUARD_KAFKA_GROUP_ID=g-wrong", "MESHGUARD_LOG_LEVEL=debug"}
		p := startMeshguard(t, env, "serve", "--config", config, "--stages", "ingest,detect")
		deadline := time.Now().Add(90 * time.Second)
		for !strings.Contains(p.out.String(), "kafka.sasl.password") {
			if !p.alive() || time.Now().After(deadline) {
				t.Fatalf("wrong kafka password: not reported naming kafka.sasl.password within 90s (alive %v)", p.alive())
			}
			time.Sleep(200 * time.Millisecond)
		}
		if !strings.Contains(p.out.String(), brokers[0]) {
			t.Errorf("wrong kafka password: the report does not name the broker %s", brokers[0])
		}
		p.terminate(t, 60*time.Second)
		outputs = append(outputs, p.out.String())
	}

	// config check of invalid configs with secrets in them, and config keys.
	for _, env := range [][]string{
		{"MESHGUARD_CLICKHOUSE_DSN=clickhouse://meshguard:" + chPW + "@" + chAddr + "/db"}, // dsn and addr both set
		{"MESHGUARD_SLACK_WEBHOOK_URL=not a url " + hookToken},
		{"MESHGUARD_KAFKA_SASL_PASSWORD=" + kafkaPW, "MESHGUARD_KAFKA_SASL_PASSWORD_FILE=" + filepath.Join(dir, "kafka-password")},
		{"MESHGUARD_CLICKHOUSE_DSN=clickhouse://meshguard:" + chPW + "@host:port/db", "MESHGUARD_CLICKHOUSE_ADDR="},
	} {
		check := exec.Command(binary, "config", "check", config)
		check.Env = append(os.Environ(), env...)
		out, err := check.CombinedOutput()
		if err == nil {
			t.Errorf("config check accepted an invalid config (%d env vars)", len(env))
		}
		outputs = append(outputs, string(out))
	}
	keys, err := exec.Command(binary, "config", "keys").CombinedOutput()
	if err != nil || !strings.Contains(string(keys), "kafka.sasl.password_file") || !strings.Contains(string(keys), "MESHGUARD_SLACK_WEBHOOK_URL") {
		t.Errorf("config keys: %v; want kafka.sasl.password_file and the MESHGUARD_SLACK_WEBHOOK_URL alias listed", err)
	}
	outputs = append(outputs, string(keys))

	all := strings.Join(outputs, "\n")
	for _, m := range markers {
		if n := strings.Count(all, m); n > 0 {
			i := strings.Index(all, m)
			line := all[strings.LastIndexByte(all[:i], '\n')+1:]
			if j := strings.IndexByte(line, '\n'); j >= 0 {
				line = line[:j]
			}
			t.Errorf("secret marker %s appears %d times; first in: %s", m[:4]+"…", n, strings.ReplaceAll(line, m, "<MARKER>"))
		}
	}
	if !strings.Contains(all, "meshguard serving") {
		t.Errorf("serve never logged that it was serving")
	}
}
