package main

import (
	"os"
	"strings"

	"github.com/meshguard/meshguard/test/bench"
)

// startServe runs serve with the shipped defaults except what the round
// needs: its topic, group, database and namespaces, a learning period the
// replay covers, enforcement, and no other instance's lease or budget in
// the way (as test/e2e runs it against the real servers).
func (e *env) startServe(o options, instance, prefix, topic, group, db, logPath string) (*bench.Proc, error) {
	env := append(os.Environ(),
		"MESHGUARD_KAFKA_BROKERS="+strings.Join(e.brokers, ","),
		"MESHGUARD_KAFKA_GROUP_ID="+group,
		"MESHGUARD_KAFKA_TOPICS_LOGS="+topic,
		"MESHGUARD_KAFKA_TOPICS_SPANS=",
		"MESHGUARD_KAFKA_TOPICS_METRICS=",
		"MESHGUARD_KAFKA_DLQ_TOPIC="+topic+"-dlq",
		"MESHGUARD_CLICKHOUSE_DSN=clickhouse://"+e.chAddr+"/"+db,
		"MESHGUARD_SERVER_LISTEN=127.0.0.1:0",
		"MESHGUARD_SERVER_AUTH_MODE=none",
		"MESHGUARD_DETECT_LEARNING_PERIOD="+o.learning.String(),
		"MESHGUARD_DETECT_HISTORY=0s",
		"MESHGUARD_KUBERNETES_KUBECONFIG="+e.kubeconfig,
		"MESHGUARD_RESPOND_MODE=enforce",
		"MESHGUARD_RESPOND_INSTANCE="+instance,
		"MESHGUARD_RESPOND_ROOT_NAMESPACE="+prefix+"istio-system",
		"MESHGUARD_RESPOND_PROTECTED_NAMESPACES=istio-system,istio-ingress,kube-system,kube-public,meshguard,"+prefix+"istio-system",
		"MESHGUARD_RESPOND_LEADER_ELECTION_ENABLED=false",
		"MESHGUARD_RESPOND_BLAST_RADIUS_MAX_REQUESTS=0",
		"MESHGUARD_RESPOND_BUDGET_PER_HOUR=100",
		"MESHGUARD_LOG_FORMAT=json",
	)
	return bench.StartProc("serve", logPath, env, e.meshguard, "serve", "--stages", "ingest,detect,respond")
}
