# shellcheck shell=bash
# Shared helpers for the test/infra scripts. Source it; do not run it.
#
# Layout every script follows:
#   state  $MESHGUARD_INFRA_DIR   (default /tmp/meshguard-infra): data dirs,
#          pid files, logs and one env file per server (<name>.env). Removed
#          by "stop"; a second "start" reuses what is running.
#   cache  $MESHGUARD_CACHE_DIR   (default ~/.cache/meshguard): downloads and
#          builds that survive between runs (jars, binaries, CRDs).
# Servers bind to 127.0.0.1 only, on free ports.

set -euo pipefail

INFRA_DIR=${MESHGUARD_INFRA_DIR:-/tmp/meshguard-infra}
CACHE_DIR=${MESHGUARD_CACHE_DIR:-$HOME/.cache/meshguard}
INFRA_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$INFRA_DIR" "$CACHE_DIR"

log() { printf '[infra %s] %s\n' "${COMPONENT:-?}" "$*" >&2; }

# die MESSAGE: fail naming what is missing and how to fix it.
die() {
	printf '[infra %s] ERROR: %s\n' "${COMPONENT:-?}" "$*" >&2
	exit 1
}

# free_port prints a TCP port on 127.0.0.1 nobody listens on right now.
free_port() {
	python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

# port_open PORT: true when something accepts connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pid_alive PIDFILE: true when the process named in PIDFILE runs.
pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# wait_for SECONDS DESCRIPTION CMD...: retry CMD once a second until it
# succeeds; die with DESCRIPTION and the log hint on timeout.
wait_for() {
	local secs=$1 what=$2
	shift 2
	local i
	for ((i = 0; i < secs; i++)); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 1
	done
	die "$what not ready after ${secs}s${LOGFILE:+; see $LOGFILE}"
}

# stop_pid PIDFILE [SECONDS]: TERM, wait up to SECONDS (default 20) for a
# clean shutdown, then KILL. A stopped (SIGSTOP) process gets CONT so that
# it can act on the TERM.
stop_pid() {
	local f=$1 secs=${2:-20} pid i
	[ -f "$f" ] || return 0
	pid=$(cat "$f")
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		kill -CONT "$pid" 2>/dev/null || true
		for ((i = 0; i < secs * 5; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		kill -9 "$pid" 2>/dev/null || true
	fi
	rm -f "$f"
}

# pkg_installed PKG: true when dpkg has PKG fully installed. `dpkg -s`
# also answers for a package another apt-get is still unpacking or one
# removed with its config files left.
pkg_installed() {
	[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# apt_install PKG...: install Debian packages that are missing. infra.sh
# starts the servers in parallel, and apt's own lock timeout does not cover
# the package lists that "apt-get update" writes (a second update fails at
# once with "Could not get lock /var/lib/apt/lists/lock"), so the scripts
# take turns on a lock of their own; apt's timeout still waits for an apt
# that is not ours.
apt_install() {
	local missing=() p
	for p in "$@"; do
		pkg_installed "$p" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	local sudo=
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	command -v apt-get >/dev/null || die "need packages ${missing[*]} and there is no apt-get; install them by hand"
	(
		flock -w 1800 9 || die "waited 30 minutes for another meshguard script's apt-get; see ${TMPDIR:-/tmp}/meshguard-apt.lock"
		missing=()
		for p in "$@"; do
			pkg_installed "$p" || missing+=("$p")
		done
		[ ${#missing[@]} -eq 0 ] && exit 0
		log "installing ${missing[*]} from Debian"
		$sudo apt-get -o DPkg::Lock::Timeout=600 update -qq ||
			die "apt-get update failed; check the network to Debian's mirrors"
		DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
			die "apt-get install ${missing[*]} failed; run it by hand to see why"
	) 9>"${TMPDIR:-/tmp}/meshguard-apt.lock" || exit 1
}

# write_env NAME KEY=VALUE...: the server's env file, read by the Go test
# helpers (test/testenv) and by "infra.sh env".
write_env() {
	local name=$1
	shift
	printf '%s\n' "$@" >"$INFRA_DIR/$name.env.tmp"
	mv "$INFRA_DIR/$name.env.tmp" "$INFRA_DIR/$name.env"
}
