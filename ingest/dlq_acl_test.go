package ingest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl/scram"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshguard/meshguard/ingest"
	"github.com/meshguard/meshguard/test/testenv"
)

// A DLQ topic meshguard's user may see but not write (the Write ACL
// forgotten) is reported by name with the fix and in the metrics, and
// holds the partition of the undecodable message (kafka.dlq_required)
// instead of being retried silently. On kfake: the shared Apache Kafka
// runs without an authorizer.
func TestConsumerReportsADeniedDLQ(t *testing.T) {
	const logs, dlq, group = "acl-logs", "acl-dlq", "acl-g"
	allow := func(res kmsg.ACLResourceType, name string, op kmsg.ACLOperation) kfake.ACL {
		return kfake.ACL{Resource: res, Name: name, Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: op, Allow: true}
	}
	brokers := testenv.Kfake(t, kfake.EnableSASL(), kfake.EnableACLs(), kfake.SeedTopics(1, logs, dlq),
		kfake.Superuser("SCRAM-SHA-512", "admin", "admin-secret"),
		kfake.User("SCRAM-SHA-512", "meshguard", "mg-secret",
			allow(kmsg.ACLResourceTypeTopic, logs, kmsg.ACLOperationRead),
			allow(kmsg.ACLResourceTypeTopic, logs, kmsg.ACLOperationDescribe),
			allow(kmsg.ACLResourceTypeGroup, group, kmsg.ACLOperationRead),
			allow(kmsg.ACLResourceTypeGroup, group, kmsg.ACLOperationDescribe),
			allow(kmsg.ACLResourceTypeTopic, dlq, kmsg.ACLOperationDescribe)))

	admin, err := scram.Mechanism(scram.SHA512, "admin", "admin-secret")
	if err != nil {
		t.Fatal(err)
	}
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: logs, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond,
		Transport: &kafka.Transport{SASL: admin}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("bad"), Value: []byte(`{"resourceLogs": [`)}); err != nil {
		t.Fatalf("produce as admin: %v", err)
	}
	w.Close()

	k, i := config(brokers, logs, group)
	k.DLQTopic = dlq
	k.SASL = ingest.KafkaSASL{Mechanism: "SCRAM-SHA-512", Username: "meshguard", Password: "mg-secret"}
	r, log := startLogged(t, k, i, newSink())
	waitFor(t, "the DLQ failure reported", time.Minute, func() bool { return r.c.Stats().DLQBlocked == 1 })
	if st, _ := topicStatus(r.c, dlq); st.Missing() {
		t.Fatalf("DLQ topic status %+v; it exists and may be described", st)
	}
	if err := r.c.ReadyError(); err == nil || !strings.Contains(err.Error(), dlq) {
		t.Fatalf("ReadyError = %v; want the blocked DLQ named", err)
	}
	text := log.String()
	if !strings.Contains(text, `kafka.dlq_topic \"`+dlq+`\": writing is denied; grant meshguard's user Write`) {
		t.Fatalf("the failure does not name %s with the fix:\n%s", dlq, text)
	}
	if got := r.c.Stats(); got.DeadLettered != 0 || got.DLQFailures == 0 || got.Batches != 0 {
		t.Fatalf("stats %+v: want failures counted and nothing committed", got)
	}
}
