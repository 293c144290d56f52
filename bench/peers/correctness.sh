#!/usr/bin/env bash
# correctness.sh: the same lock workload and the same faults against
# Bouncer, etcd and Redis, and the verdicts (see CORRECTNESS.md).
#
# Builds bouncer from this repository, cmd/etcdnode and cmd/correctness,
# installs redis-server if it is missing (setup.sh), runs every system
# under every fault with every seed (client processes, servers killed and
# restarted, a client stopped with SIGSTOP: all on 127.0.0.1), and writes
# bench/peers/CORRECTNESS.md from the template's text and the results.
# About 6 minutes with the default two seeds. Extra arguments go to the
# harness, e.g.
#   bench/peers/correctness.sh -seeds 3,4            # other seeds
#   bench/peers/correctness.sh -systems bouncer,etcd -faults pause-client -md /tmp/c.md
# (cmd/correctness -h lists them). The runs' records (histories, beliefs,
# store logs, Porcupine's pages for failed checks) stay in
# ${CORRECTNESS_WORK:-/tmp/bouncer-correctness}.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
command="bench/peers/correctness.sh${*:+ $*}"
"$here/setup.sh"

work="${CORRECTNESS_WORK:-/tmp/bouncer-correctness}"
bin="$work/bin"
mkdir -p "$bin"
echo "correctness.sh: building bouncer, etcdnode and the harness" >&2
(cd "$root" && go build -o "$bin/bouncer" ./cmd/bouncer)
(cd "$here" && go build -o "$bin/etcdnode" ./cmd/etcdnode && go build -o "$bin/correctness" ./cmd/correctness)
commit="$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)"

# The harness stops its servers and clients itself and gives up after
# -timeout; the kernel kills them should it die (Pdeathsig).
timeout --kill-after=30s 15m "$bin/correctness" \
	-bouncer "$bin/bouncer" -etcdnode "$bin/etcdnode" -redis "$(command -v redis-server)" \
	-work "$work/runs" -md "$here/CORRECTNESS.md" -command "$command" -commit "$commit" "$@"
