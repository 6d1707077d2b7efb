#!/usr/bin/env bash
# Starts, stops and reports the real servers the tests run against:
#   chserver    ClickHouse 26.7 (chDB's LocalServer with native-TCP and HTTP
#               listeners): the tests' ClickHouse
#   clickhouse  Debian's clickhouse-server 18.16, the oldest supported, for
#               the password and TLS tests chserver cannot serve
#   kafka       Apache Kafka, single node, KRaft, jars from Maven Central
#   k8s         etcd + kube-apiserver (built from the Go module proxy) with
#               Istio's CRDs
#   chdb        ClickHouse 26.7 as a library (no server), for modern SQL
#
#   infra.sh start  [SERVER...]   start or reuse (default: all), in parallel
#   infra.sh stop   [SERVER...]   stop, keeping data and addresses
#   infra.sh clean  [SERVER...]   stop and delete state (caches stay)
#   infra.sh status [SERVER...]   one line each; exit 1 if any is down
#   infra.sh env                  print the env file tests read
#
# After a full start, $MESHGUARD_INFRA_DIR/infra.env holds every server's
# address; its presence tells the Go tests (test/testenv) that every server
# is required, so an unreachable one fails a test instead of skipping it.
COMPONENT=infra
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ALL=(chserver clickhouse kafka k8s chdb)
cmd=${1:-}
shift || true
servers=("$@")
[ ${#servers[@]} -gt 0 ] || servers=("${ALL[@]}")
for s in "${servers[@]}"; do
	[ -f "$INFRA_SRC/$s.sh" ] || die "unknown server '$s'; known: ${ALL[*]}"
done

case $cmd in
start)
	rm -f "$INFRA_DIR/infra.env"
	# In parallel: on a fresh machine the apt installs, the Maven fetch and
	# the kube-apiserver build overlap (apt waits for its lock by itself).
	pids=()
	for s in "${servers[@]}"; do
		bash "$INFRA_SRC/$s.sh" start &
		pids+=($!)
	done
	failed=()
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}" || failed+=("${servers[$i]}")
	done
	[ ${#failed[@]} -eq 0 ] || die "could not start: ${failed[*]} (messages above say why)"
	if [ ${#servers[@]} -eq ${#ALL[@]} ]; then
		for s in "${ALL[@]}"; do cat "$INFRA_DIR/$s.env"; done >"$INFRA_DIR/infra.env.tmp"
		mv "$INFRA_DIR/infra.env.tmp" "$INFRA_DIR/infra.env"
		log "all servers ready; env in $INFRA_DIR/infra.env"
	fi
	;;
stop | clean)
	rm -f "$INFRA_DIR/infra.env"
	for s in "${servers[@]}"; do bash "$INFRA_SRC/$s.sh" "$cmd"; done
	;;
status)
	rc=0
	for s in "${servers[@]}"; do bash "$INFRA_SRC/$s.sh" status || rc=1; done
	exit $rc
	;;
env)
	[ -f "$INFRA_DIR/infra.env" ] || die "no $INFRA_DIR/infra.env; run: $0 start"
	cat "$INFRA_DIR/infra.env"
	;;
*) die "usage: $0 start|stop|clean|status [${ALL[*]}] | env" ;;
esac
