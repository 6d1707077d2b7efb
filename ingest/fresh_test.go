package ingest_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meshguard/meshguard/test/testenv"
)

// A first start on a cluster that never had a consumer group: the broker
// answers the first FindCoordinator with COORDINATOR_NOT_AVAILABLE while
// it creates __consumer_offsets. The consumer retries by itself and
// stores every record, without a restart.
func TestConsumerStartsOnAFreshCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: real Kafka not used")
	}
	kafka := testenv.OwnKafka(t)
	brokers := kafka.Brokers()
	topic := testenv.NewTopic(t, brokers, 2)
	records := produceScenario(t, brokers, topic, 4, 31)
	k, i := config(brokers, topic, topic+"-g")
	k.DLQTopic = testenv.NewTopic(t, brokers, 1)
	s := newSink()
	began := time.Now()
	r, log := startLogged(t, k, i, s)
	waitFor(t, fmt.Sprintf("%d flows", records), 2*time.Minute, func() bool { return s.distinct() >= records })
	t.Logf("every record stored %s after the first start on a fresh cluster", time.Since(began).Round(100*time.Millisecond))
	waitFor(t, "ready", time.Minute, func() bool { return r.c.ReadyError() == nil })
	r.stop(t)
	if got := s.distinct(); got != records {
		t.Fatalf("stored %d distinct flows, produced %d", got, records)
	}
	if !strings.Contains(log.String(), "Group Coordinator Not Available") {
		t.Fatalf("the broker had its coordinator ready at the first request: the test proved nothing; log:\n%s", log.String())
	}
}
