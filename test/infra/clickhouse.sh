#!/usr/bin/env bash
# The oldest ClickHouse meshguard supports, for what the tests' modern server
# (chserver.sh, 26.7) cannot do here: passwords and TLS. Debian's
# clickhouse-server (18.16, the only one installable here) on 127.0.0.1,
# all state in $INFRA_DIR/clickhouse. Its keys say 18 so that they never
# shadow the modern server's MESHGUARD_TEST_CLICKHOUSE_* in infra.env.
#
#   clickhouse.sh start    start or reuse; writes $INFRA_DIR/clickhouse.env with
#                          MESHGUARD_TEST_CLICKHOUSE18_ADDR (native protocol),
#                          MESHGUARD_TEST_CLICKHOUSE18_HTTP, MESHGUARD_TEST_CLICKHOUSE18_VERSION
#   clickhouse.sh stop     stop; keeps data and ports, so a later start brings
#                          the same server back at the same address
#   clickhouse.sh clean    stop and delete all state
#   clickhouse.sh status   one line; exit 0 when running, 1 otherwise
#
# For tests of credentials and TLS (testenv.OwnClickHouse with options, on a
# private state dir; the shared server never sets these):
#   MESHGUARD_INFRA_CLICKHOUSE_PASSWORD=P   user "default" needs password P and
#                          a user "meshguard" with password P is added
#                          (P: letters, digits, . _ -); env file gets
#                          MESHGUARD_TEST_CLICKHOUSE18_USER=meshguard
#   MESHGUARD_INFRA_CLICKHOUSE_TLS_CERT=F, MESHGUARD_INFRA_CLICKHOUSE_TLS_KEY=K
#                          also listen with TLS (tcp_port_secure) using PEM
#                          certificate F and key K; env file gets
#                          MESHGUARD_TEST_CLICKHOUSE18_SECURE_ADDR
COMPONENT=clickhouse
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STATE=$INFRA_DIR/clickhouse
PIDFILE=$STATE/server.pid
PORTS=$STATE/ports # "TCP HTTP", kept across stop so restarts keep the address
LOGFILE=$STATE/log/clickhouse-server.log
PATH=$PATH:/usr/sbin # clickhouse-server lives there; not on a user's PATH
TCP='' HTTP='' VERSION='' SECURE=''
PASSWORD=${MESHGUARD_INFRA_CLICKHOUSE_PASSWORD:-}
TLS_CERT=${MESHGUARD_INFRA_CLICKHOUSE_TLS_CERT:-}
TLS_KEY=${MESHGUARD_INFRA_CLICKHOUSE_TLS_KEY:-}
if [ -n "$PASSWORD" ] && ! [[ $PASSWORD =~ ^[A-Za-z0-9._-]+$ ]]; then
	die "MESHGUARD_INFRA_CLICKHOUSE_PASSWORD: use letters, digits, . _ - only"
fi

read_ports() { [ -f "$PORTS" ] && read -r TCP HTTP SECURE <"$PORTS" && [ -n "$HTTP" ]; }
# timeout: a hung server accepts the connection and the client would wait
# out its 300 s receive timeout.
query() {
	local auth=()
	[ -z "$PASSWORD" ] || auth=(--user meshguard --password "$PASSWORD")
	timeout 10 clickhouse-client --host 127.0.0.1 --port "$TCP" "${auth[@]}" --query "$1"
}
# running: true when our server answers; sets TCP, HTTP and VERSION.
running() { read_ports && pid_alive "$PIDFILE" && VERSION=$(query 'SELECT version()' 2>/dev/null); }

env_file() {
	local extra=()
	[ -z "$PASSWORD" ] || extra+=("MESHGUARD_TEST_CLICKHOUSE18_USER=meshguard")
	[ -z "$TLS_CERT" ] || extra+=("MESHGUARD_TEST_CLICKHOUSE18_SECURE_ADDR=127.0.0.1:$SECURE")
	write_env clickhouse "MESHGUARD_TEST_CLICKHOUSE18_ADDR=127.0.0.1:$TCP" \
		"MESHGUARD_TEST_CLICKHOUSE18_HTTP=127.0.0.1:$HTTP" "MESHGUARD_TEST_CLICKHOUSE18_VERSION=$VERSION" "${extra[@]}"
}

# start_failed WHY: die with the end of the server's own output and logs,
# which say why (bad config, port in use, another server on the data dir).
start_failed() {
	tail -n 20 "$STATE/server.out" "$STATE/log/clickhouse-server.err.log" >&2 2>/dev/null || true
	die "$1; full log: $LOGFILE"
}

start() {
	if running; then
		log "reusing server at 127.0.0.1:$TCP (version $VERSION)"
		env_file
		return
	fi
	stop_pid "$PIDFILE" # alive but not answering: start it afresh

	apt_install clickhouse-server clickhouse-client
	local b
	for b in clickhouse-server clickhouse-client; do
		command -v $b >/dev/null || die "$b not found after install; run: apt-get install clickhouse-server clickhouse-client"
	done

	# Same ports as last time unless someone else took one meanwhile.
	read_ports || true
	if [ -z "$TCP" ] || port_open "$TCP"; then TCP=$(free_port); fi
	while [ -z "$HTTP" ] || [ "$HTTP" = "$TCP" ] || port_open "$HTTP"; do HTTP=$(free_port); done
	if [ -n "$TLS_CERT" ]; then
		while [ -z "$SECURE" ] || [ "$SECURE" = "$TCP" ] || [ "$SECURE" = "$HTTP" ] || port_open "$SECURE"; do SECURE=$(free_port); done
	fi
	mkdir -p "$STATE"/{data,tmp,log,user_files}
	echo "$TCP $HTTP $SECURE" >"$PORTS"

	local secure_xml=''
	if [ -n "$TLS_CERT" ]; then
		[ -r "$TLS_CERT" ] && [ -r "$TLS_KEY" ] || die "MESHGUARD_INFRA_CLICKHOUSE_TLS_CERT/KEY: unreadable"
		secure_xml="<tcp_port_secure>$SECURE</tcp_port_secure><openSSL><server><certificateFile>$TLS_CERT</certificateFile><privateKeyFile>$TLS_KEY</privateKeyFile><verificationMode>none</verificationMode><loadDefaultCAFile>false</loadDefaultCAFile><cacheSessions>true</cacheSessions><disableProtocols>sslv2,sslv3</disableProtocols><preferServerCiphers>true</preferServerCiphers></server></openSSL>"
	fi
	sed -e "s|@STATE@|$STATE|g" -e "s|@TCP_PORT@|$TCP|" -e "s|@HTTP_PORT@|$HTTP|" \
		-e "s|</yandex>|$secure_xml</yandex>|" \
		"$INFRA_SRC/clickhouse/config.xml.in" >"$STATE/config.xml"
	# The packaged users.xml (user "default", no password) names an include
	# file that does not exist, so every start prints "Include not found:
	# networks"; dropping the reference keeps its inline <ip>::/0</ip>. The
	# server only listens on 127.0.0.1 anyway.
	sed 's/ incl="networks" replace="replace"//' /etc/clickhouse-server/users.xml >"$STATE/users.xml"
	if [ -n "$PASSWORD" ]; then
		# The one empty <password> is user default's: no one gets in without
		# the password, under either name.
		sed -i -e "s|<password></password>|<password>$PASSWORD</password>|" \
			-e "s|<users>|<users><meshguard><password>$PASSWORD</password><networks><ip>::/0</ip></networks><profile>default</profile><quota>default</quota></meshguard>|" \
			"$STATE/users.xml"
	fi

	# 18.16 runs as root without complaint, so it runs as whoever calls this.
	# setsid: a Ctrl-C or a process-group kill of the caller (go test) must
	# not take the server down. No fork in between, so $! is the server.
	(cd "$STATE" && exec setsid clickhouse-server --config-file="$STATE/config.xml" \
		>>"$STATE/server.out" 2>&1 </dev/null) &
	echo $! >"$PIDFILE"

	local deadline=$((SECONDS + 60))
	until VERSION=$(query 'SELECT version()' 2>/dev/null); do
		pid_alive "$PIDFILE" || start_failed "clickhouse-server exited during start"
		((SECONDS < deadline)) || start_failed "clickhouse-server did not answer on 127.0.0.1:$TCP within 60s"
		sleep 0.25
	done
	port_open "$HTTP" || start_failed "clickhouse-server answers on tcp $TCP but not on http $HTTP"
	env_file
	log "clickhouse $VERSION at 127.0.0.1:$TCP (http $HTTP), ready after ${SECONDS}s"
}

stop() {
	stop_pid "$PIDFILE"
	rm -f "$INFRA_DIR/clickhouse.env"
}

status() {
	if running; then
		echo "clickhouse running at 127.0.0.1:$TCP (http 127.0.0.1:$HTTP), version $VERSION"
	else
		echo "clickhouse not running"
		return 1
	fi
}

cmd=${1:-}
if [ "$cmd" != status ]; then
	# Tests may call start/stop concurrently; one at a time on the state dir.
	exec 9>"$INFRA_DIR/clickhouse.lock"
	flock 9
fi
case $cmd in
start | stop | status) "$cmd" ;;
clean) stop && rm -rf "$STATE" ;;
*) die "usage: $0 start|stop|clean|status" ;;
esac
