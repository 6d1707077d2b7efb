#!/usr/bin/env bash
# Poppler's pdftoppm and pdfinfo for the compliance report's PDF test
# (report/): Debian's `poppler-utils` package, nothing downloaded from
# elsewhere. Not a server and not in infra.sh's default list: the PDF
# test runs `poppler.sh start` itself.
#
#   poppler.sh start    install poppler-utils if missing (apt-get, as root
#                       or through sudo), check pdftoppm runs; writes
#                       $INFRA_DIR/poppler.env with MESHGUARD_TEST_PDFTOPPM
#                       and MESHGUARD_TEST_PDFINFO
#   poppler.sh stop     remove poppler.env (nothing keeps running)
#   poppler.sh clean    the same; the package stays installed
#   poppler.sh status   one line; exit 0 when pdftoppm runs, 1 otherwise
# shellcheck disable=SC2034 # read by lib.sh (log, die)
COMPONENT=poppler
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PDFTOPPM=/usr/bin/pdftoppm
PDFINFO=/usr/bin/pdfinfo
VERSION=''

# runs: pdftoppm starts and reports its version; sets VERSION.
runs() {
	[ -x "$PDFTOPPM" ] && [ -x "$PDFINFO" ] || return 1
	# The whole output is read before it is cut: `| head -n 1` under
	# pipefail fails whenever head exits before pdftoppm's last write
	# (SIGPIPE), and pdftoppm -v, writing its three lines one by one to
	# stderr, loses that race about every second run.
	VERSION=$("$PDFTOPPM" -v 2>&1) || VERSION=''
	VERSION=${VERSION%%$'\n'*}
	[ -n "$VERSION" ]
}

ensure_poppler() {
	runs && return 0
	if [ "$(id -u)" -ne 0 ] && ! sudo -n true 2>/dev/null; then
		die "poppler-utils is not installed and installing it needs root; run: sudo apt-get install -y poppler-utils"
	fi
	apt_install poppler-utils
	runs || die "$PDFTOPPM does not run after installing poppler-utils; try: $PDFTOPPM -v"
}

case ${1:-} in
start)
	ensure_poppler
	write_env poppler "MESHGUARD_TEST_PDFTOPPM=$PDFTOPPM" "MESHGUARD_TEST_PDFINFO=$PDFINFO"
	log "ready: $VERSION"
	;;
stop | clean) rm -f "$INFRA_DIR/poppler.env" ;;
status)
	if runs; then
		echo "poppler: ready, $VERSION"
	else
		echo "poppler: not installed ($PDFTOPPM); run: $0 start"
		exit 1
	fi
	;;
*) die "usage: $0 start|stop|clean|status" ;;
esac
