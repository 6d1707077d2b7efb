package testenv

import (
	"strings"
	"testing"
)

// OwnKafka starts a private single-node Apache Kafka from test/infra's
// kafka.sh on free ports under a temp dir (stopped and deleted when the
// test ends): a fresh cluster (no __consumer_offsets yet) that the test may
// stop and restart without disturbing the shared broker. It needs the
// jars the shared broker's start cached.
func OwnKafka(t testing.TB, opts ...OwnOption) *OwnServer {
	t.Helper()
	locate(t, kafkaServer) // the shared one must exist: it fetched the jars
	s := &OwnServer{name: "kafka", dir: t.TempDir(), infra: infraScripts(t)}
	for _, o := range opts {
		o(s)
	}
	s.Start(t)
	t.Cleanup(func() { s.run(t, "clean") })
	return s
}

// Brokers returns the bootstrap brokers of a server started by OwnKafka.
func (s *OwnServer) Brokers() []string {
	return strings.Split(s.env["MESHGUARD_TEST_KAFKA_BROKERS"], ",")
}
