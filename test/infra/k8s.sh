#!/usr/bin/env bash
# A real kube-apiserver on etcd, with Istio's CRDs, for tests that must meet
# the API server's own validation (CEL rules, server-side apply, RBAC, tokens).
# No controller-manager, scheduler or kubelet: objects are stored, never run.
#
#   k8s.sh start|stop|clean|status
#
# Binaries are built from the Go module in k8s/tools (its go.mod pins the
# Kubernetes and istio.io/api versions) into $CACHE_DIR/k8s/<version>/.
COMPONENT=k8s
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TOOLS=$INFRA_SRC/k8s/tools
STATE=$INFRA_DIR/k8s
K8S_VERSION=$(awk '$1 == "k8s.io/kubernetes" { print $2 }' "$TOOLS/go.mod")
BIN=$CACHE_DIR/k8s/$K8S_VERSION
KUBECTL=$BIN/kubectl
KUBECONFIG_FILE=$STATE/kubeconfig
FIELD_MANAGER=meshguard-infra

# The tools module stands alone: a go.work or -mod=vendor from the caller
# would pull it into the project's build.
export GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false"

# alive NAME COMM: the pid file names a running COMM, not a recycled pid.
alive() {
	pid_alive "$STATE/$1.pid" && [ "$(cat "/proc/$(cat "$STATE/$1.pid")/comm" 2>/dev/null)" = "$2" ]
}

# rotate LOG: keep the previous run's log, so a tail shows only this one.
rotate() { [ ! -f "$1" ] || mv "$1" "$1.1"; }

# tail_die LOG MESSAGE: die, showing why the server said it failed.
tail_die() {
	log "last lines of $1:"
	tail -n 30 "$1" >&2 || true
	die "$2"
}

# wait_up SECS WHAT PIDFILE LOG CMD...: like lib.sh's wait_for, but gives up
# as soon as the process dies and prints its log tail on failure.
wait_up() {
	local secs=$1 what=$2 pidfile=$3 logf=$4 i
	shift 4
	for ((i = 0; i < secs; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		pid_alive "$pidfile" || tail_die "$logf" "$what exited during start-up"
		sleep 1
	done
	tail_die "$logf" "$what not ready after ${secs}s"
}

build() {
	[ -x "$BIN/kube-apiserver" ] && [ -x "$KUBECTL" ] && return 0
	command -v go >/dev/null || die "go is not on PATH; it builds kube-apiserver from $TOOLS"
	local minor=${K8S_VERSION#v1.}
	minor=${minor%%.*}
	# The version stamp makes /version and "kubectl version" tell the truth
	# (unstamped they say v0.0.0-master); -s -w only shrink the link.
	local ldflags="-s -w"
	local pkg
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
	done
	mkdir -p "$BIN"
	local tmp buildlog=$BIN/build.log
	log "building kube-apiserver and kubectl $K8S_VERSION into $BIN (5-10 min on 2 cores with empty Go caches; log: $buildlog)"
	tmp=$(mktemp -d "$BIN/.build.XXXXXX")
	# One go build for both: they share most packages.
	(cd "$TOOLS" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$tmp/" \
		k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl) >"$buildlog" 2>&1 || {
		rm -rf "$tmp"
		tail_die "$buildlog" "building Kubernetes failed; its modules come from the Go module proxy, pinned in $TOOLS/go.mod"
	}
	mv "$tmp/kube-apiserver" "$tmp/kubectl" "$BIN/"
	rmdir "$tmp"
}

istio_crds() {
	local dir
	dir=$(cd "$TOOLS" && go mod download -json istio.io/api | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
	[ -n "$dir" ] || die "could not download istio.io/api (pinned in $TOOLS/go.mod) from the Go module proxy"
	printf '%s\n' "$dir/kubernetes/customresourcedefinitions.gen.yaml"
}

# Ports are chosen once and remembered with the data: etcd keeps its peer URL
# in its data dir, and clients may keep the apiserver URL across a restart.
load_ports() {
	if [ ! -f "$STATE/ports" ]; then
		printf 'ETCD_PORT=%s\nETCD_PEER_PORT=%s\nAPI_PORT=%s\n' \
			"$(free_port)" "$(free_port)" "$(free_port)" >"$STATE/ports"
	fi
	# shellcheck disable=SC1091
	source "$STATE/ports"
}

port_free_or_die() {
	! port_open "$1" || die "port $1 (remembered for $2 in $STATE/ports) is taken by another process; free it, or run '$0 clean' to start over on new ports"
}

start_etcd() {
	alive etcd etcd && return 0
	port_free_or_die "$ETCD_PORT" etcd
	port_free_or_die "$ETCD_PEER_PORT" "etcd peers"
	rotate "$STATE/etcd.log"
	log "starting etcd $(etcd --version | awk 'NR == 1 { print $3 }') on 127.0.0.1:$ETCD_PORT"
	# setsid and 9>&-: the servers outlive this script and its terminal, and
	# do not hold the lock.
	setsid etcd --name meshguard --data-dir "$STATE/etcd" --logger zap --log-outputs stderr \
		--listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
		--listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-cluster "meshguard=http://127.0.0.1:$ETCD_PEER_PORT" \
		</dev/null >"$STATE/etcd.log" 2>&1 9>&- &
	echo $! >"$STATE/etcd.pid"
	wait_up 30 etcd "$STATE/etcd.pid" "$STATE/etcd.log" \
		curl -sf "http://127.0.0.1:$ETCD_PORT/health"
}

# Keys and tokens outlive a stop, so tokens issued before it stay valid.
make_secrets() {
	mkdir -p "$STATE/pki"
	[ -f "$STATE/pki/sa.key" ] || openssl genrsa -out "$STATE/pki/sa.key" 2048 2>/dev/null ||
		die "openssl genrsa failed"
	[ -f "$STATE/pki/tokens.csv" ] ||
		printf '%s,admin,admin,"system:masters"\n' "$(openssl rand -hex 32)" >"$STATE/pki/tokens.csv"
	chmod 600 "$STATE/pki/sa.key" "$STATE/pki/tokens.csv"
}

start_apiserver() {
	alive apiserver kube-apiserver && return 0
	port_free_or_die "$API_PORT" kube-apiserver
	rotate "$STATE/apiserver.log"
	log "starting kube-apiserver $K8S_VERSION on https://127.0.0.1:$API_PORT"
	# --advertise-address=127.0.0.1: else it is taken from the default route,
	#   and start-up fails on a machine without one.
	# --endpoint-reconciler-type=none: the "kubernetes" Service's endpoints
	#   would be 127.0.0.1, which endpoint validation refuses.
	# --disable-admission-plugins=ServiceAccount: with no controller-manager
	#   no namespace gets its "default" ServiceAccount, and this plugin refuses
	#   every Pod (also in --dry-run=server) whose ServiceAccount is missing.
	setsid "$BIN/kube-apiserver" \
		--etcd-servers "http://127.0.0.1:$ETCD_PORT" \
		--bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" --cert-dir "$STATE/pki/serving" \
		--token-auth-file "$STATE/pki/tokens.csv" --authorization-mode RBAC \
		--service-account-issuer https://kubernetes.default.svc.cluster.local \
		--service-account-key-file "$STATE/pki/sa.key" \
		--service-account-signing-key-file "$STATE/pki/sa.key" \
		--service-cluster-ip-range 10.96.0.0/16 \
		--endpoint-reconciler-type none \
		--disable-admission-plugins ServiceAccount \
		</dev/null >"$STATE/apiserver.log" 2>&1 9>&- &
	echo $! >"$STATE/apiserver.pid"
	wait_up 60 kube-apiserver "$STATE/apiserver.pid" "$STATE/apiserver.log" \
		curl -skf "https://127.0.0.1:$API_PORT/readyz"
}

write_kubeconfig() {
	local crt=$STATE/pki/serving/apiserver.crt token tls
	token=$(cut -d, -f1 "$STATE/pki/tokens.csv")
	if openssl x509 -in "$crt" -noout -ext subjectAltName 2>/dev/null | grep -q 'IP Address:127.0.0.1'; then
		tls="certificate-authority-data: $(base64 -w0 "$crt")"
	else
		# The apiserver's self-signed cert does not name 127.0.0.1, so it
		# cannot be verified for this URL; the connection is loopback only.
		tls="insecure-skip-tls-verify: true"
	fi
	: >"$KUBECONFIG_FILE.tmp"
	chmod 600 "$KUBECONFIG_FILE.tmp"
	cat >"$KUBECONFIG_FILE.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: meshguard-test
  cluster:
    server: https://127.0.0.1:$API_PORT
    $tls
users:
- name: admin
  user:
    token: $token
contexts:
- name: meshguard-test
  context:
    cluster: meshguard-test
    user: admin
current-context: meshguard-test
EOF
	mv "$KUBECONFIG_FILE.tmp" "$KUBECONFIG_FILE"
}

install_istio() {
	local crds
	crds=$(istio_crds)
	log "applying Istio CRDs from $crds"
	# Server-side: the CRDs are too big for client-side apply's
	# last-applied-configuration annotation (256 KiB limit).
	"$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" apply --server-side --force-conflicts \
		--field-manager "$FIELD_MANAGER" -f "$crds" >/dev/null ||
		die "applying Istio's CRDs failed (see above)"
	"$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" wait --for condition=Established --timeout 60s \
		crd/authorizationpolicies.security.istio.io >/dev/null ||
		die "the AuthorizationPolicy CRD did not become Established; see $STATE/apiserver.log"
	# Istio's root namespace: policies there apply mesh-wide.
	"$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" get namespace istio-system >/dev/null 2>&1 ||
		"$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" create namespace istio-system >/dev/null ||
		die "creating namespace istio-system failed"
}

running() { alive etcd etcd && alive apiserver kube-apiserver; }

publish_env() {
	write_env k8s \
		"MESHGUARD_TEST_KUBECONFIG=$KUBECONFIG_FILE" \
		"MESHGUARD_TEST_KUBE_APISERVER=https://127.0.0.1:$API_PORT" \
		"MESHGUARD_TEST_KUBECTL=$KUBECTL" \
		"MESHGUARD_TEST_K8S_VERSION=$K8S_VERSION"
}

cmd_start() {
	[ -n "$K8S_VERSION" ] || die "no k8s.io/kubernetes version in $TOOLS/go.mod"
	mkdir -p "$STATE"
	# The env file is written last: without it an earlier start did not finish.
	if running && [ -f "$INFRA_DIR/k8s.env" ]; then
		load_ports
		publish_env
		log "already running on https://127.0.0.1:$API_PORT; reusing it"
		return 0
	fi
	apt_install etcd-server openssl curl
	build
	load_ports
	make_secrets
	start_etcd
	start_apiserver
	write_kubeconfig
	install_istio
	publish_env
	log "ready: https://127.0.0.1:$API_PORT, KUBECONFIG=$KUBECONFIG_FILE"
}

cmd_stop() {
	stop_pid "$STATE/apiserver.pid"
	stop_pid "$STATE/etcd.pid"
	rm -f "$INFRA_DIR/k8s.env"
}

cmd_status() {
	if running; then
		load_ports
		echo "k8s: running $K8S_VERSION at https://127.0.0.1:$API_PORT (etcd 127.0.0.1:$ETCD_PORT), KUBECONFIG=$KUBECONFIG_FILE"
	elif [ -d "$STATE/etcd" ]; then
		echo "k8s: stopped (data kept in $STATE)"
		return 1
	else
		echo "k8s: not started"
		return 1
	fi
}

# One start, stop or clean at a time: tests and infra.sh may call start in
# parallel, and a cold start spends minutes building.
lock() {
	exec 9>"$INFRA_DIR/k8s.lock"
	flock -w 1200 9 || die "another k8s.sh has held $INFRA_DIR/k8s.lock for 20 minutes"
}

case ${1:-} in
start | stop | clean) lock ;;
esac
case ${1:-} in
start) cmd_start ;;
stop) cmd_stop ;;
clean) cmd_stop && rm -rf "$STATE" ;;
status) cmd_status ;;
*) die "usage: $0 start|stop|clean|status" ;;
esac
