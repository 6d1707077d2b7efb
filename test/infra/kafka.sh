#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft, combined broker+controller) for tests.
#
#   kafka.sh start|stop|clean|status
#
# With MESHGUARD_INFRA_KAFKA_TLS_CERT and MESHGUARD_INFRA_KAFKA_TLS_KEY (PEM
# files) the broker also has a SASL_SSL listener (SCRAM-SHA-512, users made
# with the AlterUserScramCredentials API on the plaintext listener), written
# as MESHGUARD_TEST_KAFKA_SECURE_BROKERS; MESHGUARD_INFRA_KAFKA_CLIENT_CA
# (PEM) makes it require client certificates signed by that CA (mTLS).
#
# The broker jars come from Maven Central through kafka/pom.xml and are cached
# in $CACHE_DIR/kafka/<version>/libs, so only the first start calls Maven.
# "stop" keeps the data and the ports: the next "start" brings the same
# broker back on the same address with its topics and committed offsets.
# shellcheck disable=SC2034 # read by lib.sh (log, die)
COMPONENT=kafka
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The newest on Maven Central that runs on Java 17. On a bump, also set
# log4j2.version in kafka/pom.xml to the log4j2 the new kafka_2.13 pulls in.
KAFKA_VERSION=4.4.0
LIBS=$CACHE_DIR/kafka/$KAFKA_VERSION/libs
mkdir -p "$INFRA_DIR/kafka"
STATE=$(cd "$INFRA_DIR/kafka" && pwd) # absolute: it goes into log.dirs
PIDFILE=$STATE/kafka.pid
LOGFILE=$STATE/kafka.log
PORTS=$STATE/ports
PORT='' CPORT='' SPORT=''
TLS_CERT=${MESHGUARD_INFRA_KAFKA_TLS_CERT:-}
TLS_KEY=${MESHGUARD_INFRA_KAFKA_TLS_KEY:-}
CLIENT_CA=${MESHGUARD_INFRA_KAFKA_CLIENT_CA:-}

# Only a start, stop or clean at a time (tests may call start in parallel).
exec 9>"$INFRA_DIR/kafka.lock"
flock -w 300 9 || die "another kafka.sh has held $INFRA_DIR/kafka.lock for 5 minutes"

# kafka_alive: the pid file names a running broker, not a recycled pid.
kafka_alive() {
	pid_alive "$PIDFILE" && tr '\0' ' ' <"/proc/$(cat "$PIDFILE")/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka'
}

# metadata_ok: the broker answers a Metadata request (v4, the oldest Kafka 4
# accepts) and lists itself, i.e. it is registered and unfenced.
metadata_ok() {
	python3 - "$PORT" <<'PY'
import socket, struct, sys
port = int(sys.argv[1])
cid = b"meshguard-infra"
body = struct.pack(">hhih", 3, 4, 7, len(cid)) + cid + struct.pack(">ib", 0, 0)
s = socket.create_connection(("127.0.0.1", port), timeout=3)
s.sendall(struct.pack(">i", len(body)) + body)
def read(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: sys.exit("connection closed")
        b += c
    return b
r = read(struct.unpack(">i", read(4))[0])
corr, _throttle, nbrokers = struct.unpack_from(">iii", r)
off, ports = 12, []
for _ in range(nbrokers):
    _node, hlen = struct.unpack_from(">ih", r, off); off += 6 + hlen
    ports.append(struct.unpack_from(">i", r, off)[0]); off += 4
    rlen = struct.unpack_from(">h", r, off)[0]; off += 2 + max(rlen, 0)
sys.exit(0 if corr == 7 and port in ports else "broker not listed yet")
PY
}

need_java() {
	command -v java >/dev/null || apt_install openjdk-17-jre-headless
	local v
	v=$(java -XshowSettings:properties -version 2>&1 | awk '/java.specification.version/ {print $3}')
	[ "${v%%.*}" -ge 17 ] 2>/dev/null ||
		die "Kafka $KAFKA_VERSION needs Java 17+, 'java' is $v: install openjdk-17-jre-headless and make it the default (update-alternatives --config java)"
}

fetch_libs() {
	[ -f "$LIBS/.complete" ] && return 0
	command -v mvn >/dev/null || apt_install maven
	log "fetching Kafka $KAFKA_VERSION jars from Maven Central (once; cached in $LIBS)"
	mkdir -p "$(dirname "$LIBS")"
	local tmp mvnlog
	tmp=$(mktemp -d "$LIBS.tmp.XXXXXX")
	mvnlog=$tmp.mvn.log
	if ! mvn -B -q -f "$INFRA_SRC/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
		dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" >"$mvnlog" 2>&1; then
		tail -n 30 "$mvnlog" >&2
		rm -rf "$tmp"
		die "Maven could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION (full output: $mvnlog); check access to Maven Central"
	fi
	[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ] || die "Maven ran but $tmp has no kafka_2.13-$KAFKA_VERSION.jar"
	touch "$tmp/.complete"
	rm -rf "$LIBS" "$mvnlog"
	mv "$tmp" "$LIBS"
}

# Ports are chosen once per state dir, so a restarted broker keeps its address.
load_ports() {
	if [ -f "$PORTS" ]; then
		read -r PORT CPORT SPORT <"$PORTS"
		return 0
	fi
	PORT=$(free_port)
	CPORT=$(free_port)
	while [ "$CPORT" = "$PORT" ]; do CPORT=$(free_port); done
	if [ -n "$TLS_CERT" ]; then
		SPORT=$(free_port)
		while [ "$SPORT" = "$PORT" ] || [ "$SPORT" = "$CPORT" ]; do SPORT=$(free_port); done
	fi
	echo "$PORT $CPORT $SPORT" >"$PORTS"
}

# secure_listener appends the SASL_SSL listener to server.properties. Kafka
# reads a PEM keystore only with a PKCS#8 key, so the key is converted.
secure_listener() {
	[ -n "$TLS_CERT" ] && [ -n "$TLS_KEY" ] || die "MESHGUARD_INFRA_KAFKA_TLS_CERT and MESHGUARD_INFRA_KAFKA_TLS_KEY: set both or neither"
	[ -n "$SPORT" ] || die "$PORTS has no SASL_SSL port: this state dir was made without TLS; 'kafka.sh clean' first"
	command -v openssl >/dev/null || apt_install openssl
	openssl pkcs8 -topk8 -nocrypt -in "$TLS_KEY" -out "$STATE/server.key" || die "converting $TLS_KEY to PKCS#8 failed"
	cat "$STATE/server.key" "$TLS_CERT" >"$STATE/server.pem"
	cat >>"$STATE/server.properties" <<PROPS

# SASL_SSL (kafka.sh, MESHGUARD_INFRA_KAFKA_TLS_*): SCRAM-SHA-512 over TLS.
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT,SASL_SSL://127.0.0.1:$SPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT,SASL_SSL://127.0.0.1:$SPORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$STATE/server.pem
PROPS
	if [ -n "$CLIENT_CA" ]; then
		cat >>"$STATE/server.properties" <<PROPS
listener.name.sasl_ssl.ssl.client.auth=required
listener.name.sasl_ssl.ssl.truststore.type=PEM
listener.name.sasl_ssl.ssl.truststore.location=$CLIENT_CA
PROPS
	fi
}

# A modest heap: the machine has 2 cores and is shared with the tests. C1
# only: C2 compiler threads fight the tests for those cores, and starts take
# about half as long without them (enough speed for a test broker).
JVM=(java -XX:TieredStopAtLevel=1 -Xms256m -Xmx1g -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
	-Dlog4j2.configurationFile="$INFRA_SRC/kafka/log4j2.properties" -cp "$LIBS/*")

# wait_ready: up to 90 s for the broker to serve; on failure show why.
wait_ready() {
	local i
	for ((i = 0; i < 90; i++)); do
		kafka_alive || { tail -n 40 "$LOGFILE" >&2; die "broker exited during startup; log: $LOGFILE"; }
		port_open "$PORT" && metadata_ok >/dev/null 2>&1 && return 0
		sleep 1
	done
	tail -n 40 "$LOGFILE" >&2
	die "broker not serving on 127.0.0.1:$PORT after 90s; log: $LOGFILE"
}

start() {
	local i p
	load_ports
	if kafka_alive; then
		wait_ready
		log "already running at 127.0.0.1:$PORT"
	else
		rm -f "$PIDFILE"
		for p in "$PORT" "$CPORT"; do
			port_open "$p" && die "port $p (remembered in $PORTS) is taken by another program; 'kafka.sh clean' starts afresh on new ports (drops the topics)"
		done
		need_java
		fetch_libs
		sed -e "s|@PORT@|$PORT|g" -e "s|@CPORT@|$CPORT|g" -e "s|@DATA@|$STATE/data|g" \
			"$INFRA_SRC/kafka/server.properties.in" >"$STATE/server.properties"
		[ -n "$TLS_CERT$TLS_KEY" ] && secure_listener
		if [ ! -f "$STATE/data/meta.properties" ]; then
			local id
			# Kafka's own random-uuid shape: 22 url-safe base64 chars, no leading '-'.
			id=$(python3 -c 'import base64,uuid
while (s := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"): pass
print(s)')
			"${JVM[@]}" kafka.tools.StorageTool format -t "$id" -c "$STATE/server.properties" >"$STATE/format.log" 2>&1 ||
				{ cat "$STATE/format.log" >&2; die "formatting $STATE/data failed"; }
		fi
		[ -f "$LOGFILE" ] && mv "$LOGFILE" "$LOGFILE.1"
		log "starting Kafka $KAFKA_VERSION at 127.0.0.1:$PORT (controller $CPORT)"
		# Own session and no inherited fds: the broker outlives its caller, does
		# not hold a test's output pipe open, and does not keep the lock.
		# shellcheck disable=SC2016 # $$ and $1 belong to the inner bash
		(cd "$STATE" && exec setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PIDFILE" \
			"${JVM[@]}" kafka.Kafka "$STATE/server.properties" </dev/null >"$LOGFILE" 2>&1 9>&-) &
		for ((i = 0; i < 300; i++)); do [ -s "$PIDFILE" ] && break; sleep 0.1; done
		wait_ready
		log "ready at 127.0.0.1:$PORT"
	fi
	local secure=()
	[ -n "$SPORT" ] && secure=("MESHGUARD_TEST_KAFKA_SECURE_BROKERS=127.0.0.1:$SPORT")
	write_env kafka "MESHGUARD_TEST_KAFKA_BROKERS=127.0.0.1:$PORT" "MESHGUARD_TEST_KAFKA_VERSION=$KAFKA_VERSION" "${secure[@]}"
}

stop() {
	if kafka_alive; then
		log "stopping (data and ports kept in $STATE)"
		# A clean shutdown takes ~3 s; allow much more before lib.sh's KILL,
		# which would cost log recovery on the next start.
		stop_pid "$PIDFILE" 60
	fi
	rm -f "$PIDFILE" "$INFRA_DIR/kafka.env"
}

status() {
	[ -f "$PORTS" ] && read -r PORT CPORT SPORT <"$PORTS"
	if kafka_alive && metadata_ok >/dev/null 2>&1; then
		echo "kafka: running at 127.0.0.1:$PORT, Kafka $KAFKA_VERSION (pid $(cat "$PIDFILE"))"
		return 0
	fi
	if kafka_alive; then
		echo "kafka: pid $(cat "$PIDFILE") alive but not answering at 127.0.0.1:$PORT; log: $LOGFILE"
	else
		echo "kafka: not running"
	fi
	return 1
}

case ${1:-} in
start) start ;;
stop) stop ;;
clean)
	stop
	rm -rf "$STATE"
	log "removed $STATE"
	;;
status) status ;;
*) die "usage: $0 start|stop|clean|status" ;;
esac
