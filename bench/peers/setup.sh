#!/usr/bin/env bash
# setup.sh: install what the peer benchmarks need beyond Go: Debian's
# redis-server (only when missing). Needs root (or sudo) and apt.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
	exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	sudo="sudo"
fi
echo "setup: installing redis-server with apt-get" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
command -v redis-server >/dev/null
