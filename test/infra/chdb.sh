#!/usr/bin/env bash
# Modern ClickHouse (26.7) without a server, for checking that the SQL the
# 18.16 server runs also runs on what users deploy: chDB's libchdb.so (the
# ClickHouse engine as a library, from the npm registry) and chq, a small
# runner built beside it, both cached in $CACHE_DIR/chdb/<package version>.
#
#   chdb.sh start    fetch once (177 MB, unpacks to 566 MB), build chq, check
#                    it answers; writes $INFRA_DIR/chdb.env with
#                    MESHGUARD_TEST_CHDB_CHQ, MESHGUARD_TEST_CHDB_LIB and
#                    MESHGUARD_TEST_CHDB_VERSION
#   chdb.sh stop     remove chdb.env (nothing runs between queries)
#   chdb.sh clean    stop and remove scratch data dirs; the cache stays
#   chdb.sh status   one line; exit 0 when chq answers, 1 otherwise
#
# The fetch script lives in the shared/ directory cloned beside the repo
# ($(repo)/../shared/chdb); MESHGUARD_SHARED_DIR overrides where that is.
# shellcheck disable=SC2034 # read by lib.sh (log, die)
COMPONENT=chdb
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SHARED=${MESHGUARD_SHARED_DIR:-$INFRA_SRC/../../../shared}
FETCH=$SHARED/chdb/fetch-libchdb.sh
# The fetch script pins the npm package; a new pin gets a new cache dir.
PACKAGE=$(grep -m 1 -o 'lib-linux-x64-gnu@[^ ]*' "$FETCH" 2>/dev/null | cut -d@ -f2) || PACKAGE=''
BIN=$CACHE_DIR/chdb/${PACKAGE:-unknown}
CHQ=$BIN/chq
LIB=$BIN/libchdb.so
STATE=$INFRA_DIR/chdb
VERSION=''

# answers: chq runs a query on a scratch data dir; sets VERSION.
answers() {
	[ -x "$CHQ" ] && [ -f "$LIB" ] || return 1
	mkdir -p "$STATE"
	local data
	data=$(mktemp -d "$STATE/probe.XXXXXX")
	VERSION=$(timeout 60 "$CHQ" "$LIB" "$data" <<<'SELECT version()' 2>/dev/null) || VERSION=''
	rm -rf "$data"
	[ -n "$VERSION" ]
}

fetch() {
	[ -f "$FETCH" ] || die "no $FETCH: clone the shared/ directory beside the repo, or set MESHGUARD_SHARED_DIR"
	command -v npm >/dev/null || apt_install npm
	command -v gcc >/dev/null || apt_install gcc libc6-dev
	if [ ! -f "$LIB" ]; then
		log "fetching libchdb from the npm registry into $BIN (once; 177 MB)"
	fi
	# The script skips the download when libchdb.so is there; it rebuilds chq.
	bash "$FETCH" "$BIN" >/dev/null || die "$FETCH $BIN failed (npm registry reachable? gcc installed?)"
}

start() {
	if ! answers; then
		fetch
		answers || die "$CHQ $LIB does not answer 'SELECT version()'; remove $BIN to fetch it afresh"
	fi
	write_env chdb "MESHGUARD_TEST_CHDB_CHQ=$CHQ" "MESHGUARD_TEST_CHDB_LIB=$LIB" \
		"MESHGUARD_TEST_CHDB_VERSION=$VERSION"
	log "chdb $VERSION: $CHQ $LIB"
}

stop() { rm -f "$INFRA_DIR/chdb.env"; }

status() {
	if [ -f "$INFRA_DIR/chdb.env" ] && answers; then
		echo "chdb ready, version $VERSION ($CHQ)"
	else
		echo "chdb not started"
		return 1
	fi
}

cmd=${1:-}
if [ "$cmd" != status ]; then
	# Tests may call start concurrently; one fetch at a time into the cache.
	exec 9>"$INFRA_DIR/chdb.lock"
	flock -w 600 9 || die "another chdb.sh has held $INFRA_DIR/chdb.lock for 10 minutes"
fi
case $cmd in
start | stop | status) "$cmd" ;;
clean) stop && rm -rf "$STATE" ;;
*) die "usage: $0 start|stop|clean|status" ;;
esac
