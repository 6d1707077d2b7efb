#!/usr/bin/env bash
# Builds OpenTelemetry Collectors with the collector builder (ocb) from the
# Go module proxy, and validates configs with one.
#
#   otelcol.sh [build]        build otelcol/builder-config.yaml (deploy/
#                             collector's components at the release it
#                             deploys) if needed; print the binary's path
#   otelcol.sh validate [F]   validate collector config F with it (default:
#                             the config.yaml of deploy/collector/
#                             collector.yaml's ConfigMap)
#   otelcol.sh bench          build otelcol/bench-config.yaml (the ingest
#                             benchmark's peers: kafka receiver, nop and
#                             clickhouse exporters) if needed; print its path
#
# A binary lives in $MESHGUARD_CACHE_DIR/otelcol/<version>/ (default cache
# ~/.cache/meshguard), rebuilt only when its manifest changes. A first build
# takes 10-20 minutes on 2 cores (the prometheus receiver and k8sattributes
# processor pull in much of Prometheus and client-go); its output goes to
# build.log there.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
MANIFEST=$HERE/otelcol/builder-config.yaml
[ "${1:-}" != bench ] || MANIFEST=$HERE/otelcol/bench-config.yaml
CACHE_DIR=${MESHGUARD_CACHE_DIR:-$HOME/.cache/meshguard}

log() { printf '[otelcol] %s\n' "$*" >&2; }
die() {
	printf '[otelcol] ERROR: %s\n' "$*" >&2
	exit 1
}

# The builder and every component must be the same release: read it from
# the manifest's dist.version so that there is one place to change it.
VERSION=v$(awk '/^dist:/ { d = 1; next } /^[^ #]/ { d = 0 } d && $1 == "version:" { print $2 }' "$MANIFEST")
[ "$VERSION" != v ] || die "no dist.version in $MANIFEST"
DEST=$CACHE_DIR/otelcol/$VERSION
BIN=$DEST/otelcol

# The build is its own module: keep the caller's go.work and flags out of
# it, and never fetch another Go toolchain (only the module proxy is
# reachable).
export GOWORK=off GOFLAGS=-buildvcs=false GOTOOLCHAIN=local

build() {
	local sum
	sum=$(sha256sum "$MANIFEST" | cut -d' ' -f1)
	if [ -x "$BIN" ] && [ "$(cat "$DEST/manifest.sha256" 2>/dev/null)" = "$sum" ]; then
		return 0
	fi
	command -v go >/dev/null || die "go is not on PATH; it builds the collector"
	mkdir -p "$DEST"
	# Two builds at once would write the same generated sources.
	exec 9>"$DEST/.lock"
	flock 9
	if [ -x "$BIN" ] && [ "$(cat "$DEST/manifest.sha256" 2>/dev/null)" = "$sum" ]; then
		return 0 # built by whoever held the lock
	fi
	local buildlog=$DEST/build.log
	log "building the collector $VERSION into $DEST (10-20 min on 2 cores the first time; log: $buildlog)"
	{
		echo "== go install go.opentelemetry.io/collector/cmd/builder@$VERSION"
		GOBIN=$DEST go install "go.opentelemetry.io/collector/cmd/builder@$VERSION"
		cp "$MANIFEST" "$DEST/builder-config.yaml"
		rm -rf "$DEST/build"
		echo "== builder --config=$DEST/builder-config.yaml"
		(cd "$DEST" && ./builder --config=builder-config.yaml)
	} >"$buildlog" 2>&1 || {
		log "last lines of $buildlog:"
		tail -n 30 "$buildlog" >&2
		die "building the collector $VERSION failed; the builder and components come from the Go module proxy at the versions in $MANIFEST (a 403 means the proxy refuses that version: pin an older release)"
	}
	mv "$DEST/build/otelcol" "$BIN"
	echo "$sum" >"$DEST/manifest.sha256"
	log "built $BIN"
}

# deploy_config prints the collector config embedded in the ConfigMap of
# deploy/collector/collector.yaml.
deploy_config() {
	python3 - "$ROOT/deploy/collector/collector.yaml" <<'PY'
import sys, yaml
for doc in yaml.safe_load_all(open(sys.argv[1])):
    if doc and doc.get("kind") == "ConfigMap" and "config.yaml" in (doc.get("data") or {}):
        sys.stdout.write(doc["data"]["config.yaml"])
        sys.exit(0)
sys.exit("no ConfigMap with data.config.yaml in " + sys.argv[1])
PY
}

validate() {
	local file=${1:-}
	if [ -z "$file" ]; then
		python3 -c 'import yaml' 2>/dev/null || die "python3 with PyYAML is needed to read the ConfigMap: apt-get install python3-yaml"
		EXTRACTED=$(mktemp --suffix=.yaml)
		trap 'rm -f "$EXTRACTED"' EXIT
		file=$EXTRACTED
		deploy_config >"$file"
		log "validating config.yaml of deploy/collector/collector.yaml's ConfigMap with the collector $VERSION"
	fi
	"$BIN" validate --config="$file"
	log "valid"
}

case ${1:-build} in
build | bench)
	build
	echo "$BIN"
	;;
validate)
	build
	validate "${2:-}"
	;;
*) die "usage: $0 [build | validate [CONFIG]]" ;;
esac
