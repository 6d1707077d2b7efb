#!/usr/bin/env bash
# Creates (or checks) the topics meshguard reads and writes, with the
# production settings of deploy/kafka/README.md, using Apache Kafka's own
# tools. Safe to run twice (--if-not-exists).
#
#   BOOTSTRAP=kafka-0.kafka.kafka.svc:9093 CONFIG=admin.properties ./topics.sh
#
# CONFIG is a client properties file for an admin principal (TLS/SASL),
# e.g.
#   security.protocol=SASL_SSL
#   sasl.mechanism=SCRAM-SHA-512
#   sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="...";
#   ssl.truststore.type=PEM
#   ssl.truststore.location=/etc/kafka/ca.crt
set -euo pipefail

BOOTSTRAP=${BOOTSTRAP:?set BOOTSTRAP to host:port of a broker}
CONFIG=${CONFIG:-}
KAFKA_BIN=${KAFKA_BIN:-kafka-topics.sh}
# Partitions bound how many meshguard replicas of a tier consume in
# parallel; raising them later reshuffles which pod lands on which
# partition (detect relearns the moved sources), so start with room.
LOGS_PARTITIONS=${LOGS_PARTITIONS:-12}
SPANS_PARTITIONS=${SPANS_PARTITIONS:-12}
METRICS_PARTITIONS=${METRICS_PARTITIONS:-6}
DLQ_PARTITIONS=${DLQ_PARTITIONS:-3}
REPLICATION=${REPLICATION:-3}

cmd=("$KAFKA_BIN" --bootstrap-server "$BOOTSTRAP")
[ -z "$CONFIG" ] || cmd+=(--command-config "$CONFIG")

# topic NAME PARTITIONS RETENTION_MS
topic() {
	"${cmd[@]}" --create --if-not-exists --topic "$1" \
		--partitions "$2" --replication-factor "$REPLICATION" \
		--config min.insync.replicas=2 \
		--config retention.ms="$3" \
		--config cleanup.policy=delete \
		--config compression.type=producer \
		--config max.message.bytes=1048588 \
		--config unclean.leader.election.enable=false
}

# Telemetry: 24 hours, enough to ride out a meshguard or ClickHouse
# outage and to replay (ClickHouse holds the history).
topic otlp_logs "$LOGS_PARTITIONS" 86400000
topic otlp_spans "$SPANS_PARTITIONS" 86400000
topic otlp_metrics "$METRICS_PARTITIONS" 86400000
# Dead letters (records meshguard could not decode): 14 days to look.
topic meshguard.dlq "$DLQ_PARTITIONS" 1209600000

"${cmd[@]}" --describe --topic 'otlp_logs|otlp_spans|otlp_metrics|meshguard\.dlq'
