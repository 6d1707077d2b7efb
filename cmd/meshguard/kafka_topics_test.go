package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"
)

// deploy/kafka creates every topic the deployed config reads or writes:
// with auto-creation off (as operators run Kafka), one it forgets is a
// topic meshguard names as missing at every start.
func TestDeployKafkaCreatesEveryTopicTheConfigNames(t *testing.T) {
	root := filepath.Join("..", "..")
	cfg := DefaultConfig()
	data, err := os.ReadFile(filepath.Join(root, "deploy", "kubernetes", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	k := cfg.Kafka
	need := map[string]string{"kafka.topics.logs": k.Topics.Logs, "kafka.topics.spans": k.Topics.Spans,
		"kafka.topics.metrics": k.Topics.Metrics, "kafka.dlq_topic": k.DLQTopic}

	created := func(file string, re *regexp.Regexp) []string {
		b, err := os.ReadFile(filepath.Join(root, "deploy", "kafka", file))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, m := range re.FindAllSubmatch(b, -1) {
			names = append(names, string(m[1]))
		}
		return names
	}
	script := created("topics.sh", regexp.MustCompile(`(?m)^topic (\S+) `))
	strimzi := created("strimzi-topics.yaml.example", regexp.MustCompile(`(?m)^\s*topicName: (\S+)$`))
	for key, topic := range need {
		if topic == "" {
			continue
		}
		if !slices.Contains(script, topic) {
			t.Errorf("%s %q (deploy/kubernetes/config.yaml) is not created by deploy/kafka/topics.sh (it creates %v)", key, topic, script)
		}
		if !slices.Contains(strimzi, topic) {
			t.Errorf("%s %q (deploy/kubernetes/config.yaml) has no KafkaTopic in deploy/kafka/strimzi-topics.yaml.example (%v)", key, topic, strimzi)
		}
	}
	if len(script) == 0 || len(strimzi) == 0 {
		t.Fatal("no topic found in deploy/kafka: the patterns no longer match the files")
	}
}
