package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// TopicStatus is what the brokers last said of one configured topic.
type TopicStatus struct {
	Key   string // the config key naming it: kafka.topics.logs, kafka.dlq_topic...
	Topic string
	// Err is nil when the topic exists and has partitions, else why it
	// cannot be used: kafka.UnknownTopicOrPartition (missing),
	// kafka.TopicAuthorizationFailed (denied), or a transient error.
	Err error
}

// Missing reports whether the topic cannot be used now.
func (s TopicStatus) Missing() bool { return s.Err != nil }

// topicWatchInterval is how often the consumer asks the brokers which of
// its topics exist: a topic created later is consumed within about this
// long, without a restart.
const topicWatchInterval = 5 * time.Second

// configuredTopics lists every topic of the config with its key, the
// telemetry topics first, in a stable order.
func (c *KafkaConfig) configuredTopics() []TopicStatus {
	var out []TopicStatus
	for _, t := range []struct{ key, name string }{
		{"kafka.topics.logs", c.Topics.Logs}, {"kafka.topics.spans", c.Topics.Spans},
		{"kafka.topics.metrics", c.Topics.Metrics}, {"kafka.dlq_topic", c.DLQTopic},
	} {
		if t.name != "" {
			out = append(out, TopicStatus{Key: t.key, Topic: t.name})
		}
	}
	return out
}

// checkTopics asks the brokers about every configured topic, records the
// answer for Topics and the metrics, logs once whenever the set of
// unusable topics changes, and returns the telemetry topics that can be
// consumed now (sorted). ok is false when the brokers could not be asked;
// the previous answer then stands.
//
// It exists because kafka-go's group leader reads the partitions of all
// subscribed topics in one metadata request and assigns nothing at all
// when one of them is missing: the consumer subscribes only to topics
// that exist, and rejoins the group when that set changes.
func (c *Consumer) checkTopics(ctx context.Context) (present []string, ok bool) {
	want := c.kcfg.configuredTopics()
	names := make([]string, len(want))
	for i, t := range want {
		names[i] = t.Topic
	}
	ctx, cancel := context.WithTimeout(ctx, dialTimeout+5*time.Second)
	defer cancel()
	// A plain metadata request never creates a topic, whatever the
	// broker's auto.create.topics.enable says.
	md, err := c.topicClient.Metadata(ctx, &kafka.MetadataRequest{Topics: names})
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("cannot list kafka topics; keeping the current subscription", "err", c.kcfg.Diagnose(ctx, err))
		}
		return nil, false
	}
	got := map[string]kafka.Topic{}
	for _, t := range md.Topics {
		got[t.Name] = t
	}
	for i := range want {
		t, found := got[want[i].Topic]
		switch {
		case !found:
			want[i].Err = kafka.UnknownTopicOrPartition
		case t.Error != nil:
			want[i].Err = t.Error
		case len(t.Partitions) == 0:
			want[i].Err = kafka.LeaderNotAvailable
		}
		if want[i].Err == nil && want[i].Key != "kafka.dlq_topic" {
			present = append(present, want[i].Topic)
		}
	}
	slices.Sort(present)
	prev := c.topicStatus.Swap(&want)
	c.reportTopics(prev, want)
	return present, true
}

// reportTopics logs the unusable topics in one error when that set
// changed since the last check, and each topic that became usable.
func (c *Consumer) reportTopics(prev *[]TopicStatus, now []TopicStatus) {
	was := map[string]error{}
	if prev != nil {
		for _, s := range *prev {
			was[s.Topic] = s.Err
		}
	}
	changed := prev == nil
	var problems []string
	for _, s := range now {
		before, seen := was[s.Topic]
		if !seen || (before == nil) != (s.Err == nil) || (before != nil && before.Error() != s.Err.Error()) {
			changed = true
		}
		if s.Err != nil {
			problems = append(problems, fmt.Sprintf("%s %q: %s", s.Key, s.Topic, topicProblem(s)))
		} else if seen && before != nil {
			c.log.Info("kafka topic now usable", "key", s.Key, "topic", s.Topic)
		}
	}
	if !changed || len(problems) == 0 {
		return
	}
	c.log.Error("kafka topics unusable; ingest reads the others and starts on these by itself once they exist: "+
		strings.Join(problems, "; "), "group", c.kcfg.GroupID)
}

// topicProblem says what is wrong with a topic and what to do.
func topicProblem(s TopicStatus) string {
	dlq := s.Key == "kafka.dlq_topic"
	switch {
	case errors.Is(s.Err, kafka.UnknownTopicOrPartition):
		if dlq {
			return "does not exist; undecodable messages cannot be set aside (create it, e.g. with deploy/kafka's topic script)"
		}
		return fmt.Sprintf("does not exist; create it, or remove it from kafka.topics (unset %s)", s.Key)
	case errors.Is(s.Err, kafka.TopicAuthorizationFailed):
		op := "Describe and Read"
		if dlq {
			op = "Describe and Write"
		}
		return fmt.Sprintf("access denied; grant meshguard's user %s on it (a Kafka ACL)", op)
	default:
		return fmt.Sprintf("not usable yet (%v)", s.Err)
	}
}

// Topics returns what the brokers last said of each configured topic
// (nil before the first answer). Safe from any goroutine.
func (c *Consumer) Topics() []TopicStatus {
	p := c.topicStatus.Load()
	if p == nil {
		return nil
	}
	return slices.Clone(*p)
}
