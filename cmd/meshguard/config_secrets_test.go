package main

import (
	"fmt"
	"strings"
	"testing"
)

func TestSlackEnvAliases(t *testing.T) {
	cfg, err := LoadConfig("", []string{
		"MESHGUARD_SLACK_WEBHOOK_URL=https://hooks.slack.example/services/T/B/alias-marker",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Alert.Slack.WebhookURL != "https://hooks.slack.example/services/T/B/alias-marker" {
		t.Fatalf("MESHGUARD_SLACK_WEBHOOK_URL did not set alert.slack.webhook_url: %q", cfg.Alert.Slack.WebhookURL)
	}
	if !strings.Contains(strings.Join(configKeys(), "\n"), "MESHGUARD_SLACK_WEBHOOK_URL") {
		t.Error("config keys does not list the alias")
	}
}

// TestConfigErrorsAndPrintsKeepSecrets: invalid configs holding secrets
// are reported without them, and the loaded config prints redacted.
func TestConfigErrorsAndPrintsKeepSecrets(t *testing.T) {
	const m = "mkCfgSecret42"
	for _, env := range [][]string{
		{"MESHGUARD_CLICKHOUSE_DSN=clickhouse://u:" + m + "@h:9000/db", "MESHGUARD_CLICKHOUSE_ADDR=h:9000"},
		{"MESHGUARD_CLICKHOUSE_DSN=clickhouse://u:" + m + "@h:port/db"},
		{"MESHGUARD_SLACK_WEBHOOK_URL=not a url " + m},
		{"MESHGUARD_KAFKA_SASL_MECHANISM=SCRAM-SHA-1", "MESHGUARD_KAFKA_SASL_USERNAME=u", "MESHGUARD_KAFKA_SASL_PASSWORD=" + m},
		{"MESHGUARD_CLICKHOUSE_PASSWORD=" + m, "MESHGUARD_CLICKHOUSE_PASSWORD_FILE=/nonexistent"},
	} {
		_, err := LoadConfig("", env)
		if err == nil {
			t.Errorf("%d env vars: accepted", len(env))
			continue
		}
		if strings.Contains(err.Error(), m) {
			t.Errorf("error quotes the secret: %s", strings.ReplaceAll(err.Error(), m, "<MARKER>"))
		}
	}
	cfg, err := LoadConfig("", []string{
		"MESHGUARD_KAFKA_SASL_MECHANISM=SCRAM-SHA-512", "MESHGUARD_KAFKA_SASL_USERNAME=u", "MESHGUARD_KAFKA_SASL_PASSWORD=" + m + "k",
		"MESHGUARD_CLICKHOUSE_DSN=clickhouse://u:" + m + "c@h:9000/db",
		"MESHGUARD_SLACK_WEBHOOK_URL=https://hooks.slack.example/" + m + "w",
		"MESHGUARD_SERVER_AUTH_MODE=none",
	})
	if err != nil {
		t.Fatal(err)
	}
	if out := fmt.Sprintf("%v %+v", cfg.Kafka, cfg.ClickHouse) + cfg.Alert.String(); strings.Contains(out, m) {
		t.Errorf("printed config holds a secret: %s", strings.ReplaceAll(out, m, "<MARKER>"))
	}
}
