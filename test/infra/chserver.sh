#!/usr/bin/env bash
# The tests' ClickHouse: a modern server (26.7), ClickHouse's LocalServer
# from chDB's libchdb.so (the one chdb.sh fetches) with its real native-TCP
# and HTTP listeners, run by chserver (../shared/chdb/chserver.c, built here
# with gcc into the cache beside libchdb.so). On 127.0.0.1, all state in
# $INFRA_DIR/chserver.
#
#   chserver.sh start    start or reuse; writes $INFRA_DIR/chserver.env with
#                        MESHGUARD_TEST_CLICKHOUSE_ADDR (native protocol),
#                        MESHGUARD_TEST_CLICKHOUSE_HTTP, MESHGUARD_TEST_CLICKHOUSE_VERSION
#   chserver.sh stop     stop; keeps data and ports, so a later start brings
#                        the same server back at the same address
#   chserver.sh clean    stop and delete all state (the cache stays)
#   chserver.sh status   one line; exit 0 when running, 1 otherwise
#
# What it cannot do: TLS, users with passwords, Keeper (so no Replicated
# tables). Tests of those use Debian's 18.16 (clickhouse.sh).
# shellcheck disable=SC2034 # read by lib.sh (log, die, wait_for)
COMPONENT=chserver
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SHARED=${MESHGUARD_SHARED_DIR:-$INFRA_SRC/../../../shared}
SRC=$SHARED/chdb/chserver.c
STATE=$INFRA_DIR/chserver
PIDFILE=$STATE/server.pid
PORTS=$STATE/ports # "TCP HTTP", kept across stop so restarts keep the address
LOGFILE=$STATE/server.out # chserver's own output; the engine's log is clickhouse.log
TCP='' HTTP='' VERSION='' LIB='' BIN=''

read_ports() { [ -f "$PORTS" ] && read -r TCP HTTP <"$PORTS" && [ -n "$HTTP" ]; }
# query SQL: through the HTTP listener. timeout: a hung server accepts the
# connection and would keep the caller waiting.
query() {
	timeout 10 python3 - "$HTTP" "$1" <<'PY'
import sys, urllib.parse, urllib.request
port, sql = sys.argv[1], sys.argv[2]
url = "http://127.0.0.1:%s/?query=%s" % (port, urllib.parse.quote(sql))
with urllib.request.urlopen(url, timeout=8) as r:
    sys.stdout.write(r.read().decode().strip())
PY
}
# running: true when our server answers on both listeners; sets TCP, HTTP
# and VERSION.
running() {
	read_ports && pid_alive "$PIDFILE" && VERSION=$(query 'SELECT version()' 2>/dev/null) &&
		[ -n "$VERSION" ] && port_open "$TCP"
}

env_file() {
	write_env chserver "MESHGUARD_TEST_CLICKHOUSE_ADDR=127.0.0.1:$TCP" \
		"MESHGUARD_TEST_CLICKHOUSE_HTTP=127.0.0.1:$HTTP" "MESHGUARD_TEST_CLICKHOUSE_VERSION=$VERSION"
}

start_failed() {
	stop_pid "$PIDFILE"
	tail -n 20 "$LOGFILE" "$STATE/clickhouse.err.log" >&2 2>/dev/null || true
	die "$1; full log: $LOGFILE"
}

# build: libchdb.so from chdb.sh (it fetches once into the cache and takes
# its own lock, so parallel starts fetch once), chserver compiled beside it.
# The binary lives only in the cache, never in the repo.
build() {
	[ -f "$SRC" ] || die "no $SRC: clone the shared/ directory beside the repo, or set MESHGUARD_SHARED_DIR"
	bash "$INFRA_SRC/chdb.sh" start || die "chdb.sh start failed, so there is no libchdb.so to run"
	LIB=$(grep '^MESHGUARD_TEST_CHDB_LIB=' "$INFRA_DIR/chdb.env" | cut -d= -f2-)
	[ -f "$LIB" ] || die "chdb.sh wrote no usable MESHGUARD_TEST_CHDB_LIB ($LIB)"
	BIN=$(dirname "$LIB")/chserver
	if [ ! -x "$BIN" ] || [ "$SRC" -nt "$BIN" ]; then
		command -v gcc >/dev/null || apt_install gcc libc6-dev
		# Another start may be compiling too: build aside, rename into place.
		gcc -O1 -o "$BIN.$$" "$SRC" -ldl || die "gcc could not build $SRC; run: apt-get install gcc libc6-dev"
		mv "$BIN.$$" "$BIN"
	fi
}

start() {
	if running; then
		log "reusing server at 127.0.0.1:$TCP (version $VERSION)"
		env_file
		return
	fi
	stop_pid "$PIDFILE" # alive but not answering: start it afresh
	build

	# Same ports as last time unless someone else took one meanwhile.
	read_ports || true
	if [ -z "$TCP" ] || port_open "$TCP"; then TCP=$(free_port); fi
	while [ -z "$HTTP" ] || [ "$HTTP" = "$TCP" ] || port_open "$HTTP"; do HTTP=$(free_port); done
	mkdir -p "$STATE/data"
	echo "$TCP $HTTP" >"$PORTS"
	# LocalServer reads config.xml from its working directory; without a
	# logger there, a crash leaves no word of why.
	cat >"$STATE/config.xml" <<EOF
<clickhouse>
  <logger>
    <level>information</level>
    <log>$STATE/clickhouse.log</log>
    <errorlog>$STATE/clickhouse.err.log</errorlog>
    <size>100M</size>
    <count>2</count>
  </logger>
</clickhouse>
EOF

	# setsid: a Ctrl-C or a process-group kill of the caller (go test) must
	# not take the server down. cd: for config.xml. 9>&-: the server must not inherit our lock on the
	# state dir, or every later stop would wait on it forever.
	(cd "$STATE" && exec setsid bash "$INFRA_SRC/chserver.sh" run "$BIN" "$LIB" "$STATE/data" "$TCP" "$HTTP" \
		>>"$LOGFILE" 2>&1 </dev/null 9>&-) &
	echo $! >"$PIDFILE"

	local deadline=$((SECONDS + 60))
	until VERSION=$(query 'SELECT version()' 2>/dev/null) && [ -n "$VERSION" ]; do
		pid_alive "$PIDFILE" || start_failed "chserver exited during start"
		((SECONDS < deadline)) || start_failed "chserver did not answer on http 127.0.0.1:$HTTP within 60s"
		sleep 0.25
	done
	port_open "$TCP" || start_failed "chserver answers on http $HTTP but not on tcp $TCP"
	env_file
	log "clickhouse $VERSION (chserver) at 127.0.0.1:$TCP (http $HTTP), ready after ${SECONDS}s"
}

# run BIN LIB DATA TCP HTTP: the process the pid file names. It keeps the
# engine serving: an exception that escapes one of LocalServer's connection
# handlers (a client that resets its connection mid-query, a failed login)
# aborts the whole process, which a real clickhouse-server survives, so the
# engine is started again on the same data and ports. TERM stops both. An
# engine that dies within 10 s five times in a row is not restarted again.
run() {
	local child=0 stopping=0 rc fast=0 began
	trap 'stopping=1; [ "$child" -eq 0 ] || kill -TERM "$child" 2>/dev/null' TERM INT
	while :; do
		began=$SECONDS
		"$@" &
		child=$!
		rc=0
		wait "$child" || rc=$?
		# The trap interrupts wait; wait again until the engine is gone.
		while kill -0 "$child" 2>/dev/null; do wait "$child" || rc=$?; done
		[ "$stopping" -eq 0 ] || exit 0
		if ((SECONDS - began < 10)); then fast=$((fast + 1)); else fast=0; fi
		((fast < 5)) || { echo "chserver: engine died 5 times in a row within 10 s; giving up"; exit 1; }
		echo "chserver: engine exited with status $rc at $(date -u +%FT%TZ); restarting (why: $STATE/clickhouse.err.log)"
		sleep 1
	done
}

stop() {
	stop_pid "$PIDFILE"
	rm -f "$INFRA_DIR/chserver.env"
}

status() {
	if running; then
		echo "chserver running at 127.0.0.1:$TCP (http 127.0.0.1:$HTTP), version $VERSION"
	else
		echo "chserver not running"
		return 1
	fi
}

cmd=${1:-}
if [ "$cmd" != status ] && [ "$cmd" != run ]; then
	# Tests may call start/stop concurrently; one at a time on the state dir.
	exec 9>"$INFRA_DIR/chserver.lock"
	flock 9
fi
case $cmd in
start | stop | status) "$cmd" ;;
run) shift && run "$@" ;;
clean) stop && rm -rf "$STATE" ;;
*) die "usage: $0 start|stop|clean|status" ;;
esac
