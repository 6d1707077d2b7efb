package ingest_test

import (
	"testing"
	"time"

	"github.com/meshguard/meshguard/test/testenv"
)

// A broker (a private Apache Kafka) down longer than kafka-go's reader
// keeps trying: the reader gives up, the consumer replaces it, and once
// the broker is back every record is stored; Run ends only when asked.
func TestConsumerOutlivesALongBrokerOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: real Kafka not used")
	}
	own := testenv.OwnKafka(t)
	brokers := own.Brokers()
	topic := testenv.NewTopic(t, brokers, 2)
	records := produceScenario(t, brokers, topic, 3, 51)
	k, i := config(brokers, topic, topic+"-g")
	k.DLQTopic = testenv.NewTopic(t, brokers, 1)
	s := newSink()
	r := start(t, k, i, s)
	waitFor(t, "the first records", 2*time.Minute, func() bool { return s.distinct() >= records })

	own.Stop(t)
	waitFor(t, "the reader giving up and being replaced", 2*time.Minute, func() bool { return r.c.Stats().ReaderFailures >= 1 })
	select {
	case err := <-r.done:
		t.Fatalf("the consumer ended during the outage: %v", err)
	default:
	}
	own.Start(t)

	more := produceScenario(t, brokers, topic, 3, 52)
	waitFor(t, "the records produced after the outage", 3*time.Minute, func() bool { return s.distinct() >= records+more })
	r.stop(t)
	if got := s.distinct(); got != records+more {
		t.Fatalf("stored %d distinct flows, produced %d", got, records+more)
	}
}
