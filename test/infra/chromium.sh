#!/usr/bin/env bash
# Headless Chromium for the UI test (cmd/meshguard/api): Debian's
# `chromium` package, nothing downloaded from elsewhere. Not a server and
# not in infra.sh's default list (it is a large install the other tests do
# not need): the UI test runs `chromium.sh start` itself.
#
#   chromium.sh start    install chromium if missing (apt-get, as root or
#                        through sudo), check it runs; writes
#                        $INFRA_DIR/chromium.env with MESHGUARD_TEST_CHROMIUM
#                        (the binary) and MESHGUARD_TEST_CHROMIUM_VERSION
#   chromium.sh stop     remove chromium.env (nothing keeps running)
#   chromium.sh clean    the same; the package stays installed
#   chromium.sh status   one line; exit 0 when chromium runs, 1 otherwise
#
# MESHGUARD_TEST_CHROMIUM names another binary (e.g. a Chrome already on
# the machine) and skips the install.
# shellcheck disable=SC2034 # read by lib.sh (log, die)
COMPONENT=chromium
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BIN=${MESHGUARD_TEST_CHROMIUM:-/usr/bin/chromium}
VERSION=''

# runs: the binary starts and reports its version; sets VERSION.
runs() {
	[ -x "$BIN" ] || return 1
	# Read whole, then cut: `| head -n 1` under pipefail can fail on SIGPIPE.
	VERSION=$(timeout 60 "$BIN" --headless --no-sandbox --version 2>/dev/null) || VERSION=''
	VERSION=${VERSION%%$'\n'*}
	[ -n "$VERSION" ]
}

# ensure_chromium: install Debian's chromium unless a working binary is
# there already. Needs root (or sudo) and apt-get; says so otherwise.
ensure_chromium() {
	runs && return 0
	if [ -n "${MESHGUARD_TEST_CHROMIUM:-}" ]; then
		die "MESHGUARD_TEST_CHROMIUM=$BIN does not run ('$BIN --headless --version' failed); unset it to use Debian's chromium"
	fi
	command -v apt-get >/dev/null ||
		die "chromium is not installed and there is no apt-get; install Chromium by hand and set MESHGUARD_TEST_CHROMIUM to its binary"
	if [ "$(id -u)" -ne 0 ] && ! sudo -n true 2>/dev/null; then
		die "chromium is not installed and installing it needs root; run: sudo apt-get install -y chromium (or set MESHGUARD_TEST_CHROMIUM)"
	fi
	apt_install chromium
	runs || die "$BIN does not run after installing chromium; try: $BIN --headless --no-sandbox --version"
}

env_file() { write_env chromium "MESHGUARD_TEST_CHROMIUM=$BIN" "MESHGUARD_TEST_CHROMIUM_VERSION=$VERSION"; }

case ${1:-} in
start)
	ensure_chromium
	env_file
	log "ready: $VERSION ($BIN)"
	;;
stop | clean) rm -f "$INFRA_DIR/chromium.env" ;;
status)
	if runs; then
		echo "chromium: ready, $VERSION ($BIN)"
	else
		echo "chromium: not installed ($BIN); run: $0 start"
		exit 1
	fi
	;;
*) die "usage: $0 start|stop|clean|status" ;;
esac
