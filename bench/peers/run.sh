#!/usr/bin/env bash
# run.sh: benchmark Bouncer side by side with etcd and Redis on this machine.
#
# Builds the bouncer binary from this repository, the etcd server process
# (cmd/etcdnode) and the harness (cmd/peers), installs redis-server if it is
# missing (setup.sh), then runs every workload against every system, several
# runs each (single servers, and groups of three: bouncer-3, etcd-3, whose
# leader failover is timed too), and writes bench/peers/RESULTS.md and
# bench/peers/results.png.
# Everything listens on 127.0.0.1 only; every server it starts is stopped at
# the end, also on failure or ^C. Extra arguments go to the harness, e.g.
#   bench/peers/run.sh -runs 1 -window 2s -md /tmp/r.md -png /tmp/r.png
#   bench/peers/run.sh -runs 3 -window 3s -only bouncer,bouncer-3,etcd-3
# (cmd/peers -h lists them).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
command="bench/peers/run.sh${*:+ $*}"

# setup.sh installs redis-server when missing; a run of some systems only
# (-only, -systems) that names no Redis does without it.
needs_redis=1
for a in "$@"; do
	case "$a" in -only | --only | -only=* | --only=* | -systems | --systems | -systems=* | --systems=*) needs_redis=0 ;; esac
done
case "$*" in *redis*) needs_redis=1 ;; esac
if [ "$needs_redis" = 1 ]; then
	"$here/setup.sh"
fi

# Binaries and the servers' data (on disk) live here, removed at exit.
tmp="$(mktemp -d "${TMPDIR:-/tmp}/bouncer-peers.XXXXXX")"
bin="$tmp/bin"
mkdir -p "$bin" "$tmp/data"
pid=""
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "run.sh: building bouncer, etcdnode and the harness" >&2
(cd "$root" && go build -o "$bin/bouncer" ./cmd/bouncer)
(cd "$here" && go build -o "$bin/etcdnode" ./cmd/etcdnode && go build -o "$bin/peers" ./cmd/peers)
commit="$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)"

# The harness stops its servers itself and gives up after -timeout; the
# kernel kills them should it die (Pdeathsig). timeout is the last resort.
timeout --kill-after=30s 20m "$bin/peers" \
	-bouncer "$bin/bouncer" -etcdnode "$bin/etcdnode" -work "$tmp/data" \
	-md "$here/RESULTS.md" -png "$here/results.png" \
	-command "$command" -commit "$commit" "$@" &
pid=$!
wait "$pid"
