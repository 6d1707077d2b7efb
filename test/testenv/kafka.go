package testenv

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Kafka returns the bootstrap brokers of the test Apache Kafka (KRaft).
func Kafka(t testing.TB) []string {
	t.Helper()
	brokers := strings.Split(locate(t, kafkaServer), ",")
	conn, err := net.DialTimeout("tcp", brokers[0], 5*time.Second)
	if err != nil {
		unavailable(t, kafkaServer, "dial %s: %v", brokers[0], err)
	}
	conn.Close()
	return brokers
}

// Kfake starts an in-process Kafka cluster speaking the real protocol on
// 127.0.0.1, closed when the test ends, and returns its brokers.
func Kfake(t testing.TB, opts ...kfake.Opt) []string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// NewTopic creates a fresh topic with the given partitions on brokers,
// deleted when the test ends, and returns its name.
func NewTopic(t testing.TB, brokers []string, partitions int) string {
	t.Helper()
	topic := uniqueName("test-")
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 30 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}},
	})
	if err == nil {
		err = resp.Errors[topic]
	}
	if err != nil {
		t.Fatalf("kafka: create topic %s on %v: %v", topic, brokers, err)
	}
	waitForLeaders(t, client, topic, partitions)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// The broker may be gone already (a test that stops it, or kfake
		// closed first): nothing then remains to clean.
		_, _ = client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}})
	})
	return topic
}

// waitForLeaders returns once every partition of a new topic has a leader:
// a produce right after CreateTopics can otherwise fail on a real broker.
func waitForLeaders(t testing.TB, client *kafka.Client, topic string, partitions int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		cancel()
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil && len(md.Topics[0].Partitions) == partitions {
			ready := true
			for _, p := range md.Topics[0].Partitions {
				if p.Leader.ID < 0 || p.Error != nil {
					ready = false
				}
			}
			if ready {
				return
			}
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = errors.New("partitions without a leader")
			}
			t.Fatalf("kafka: topic %s not ready: %v", topic, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
