#!/usr/bin/env bash
# Regenerates the Go code for the wire protocol from api/bouncerv1/*.proto.
# Pinned tools: protoc 3.21.12 (Debian's protobuf-compiler), protoc-gen-go
# v1.36.12 and protoc-gen-go-grpc v1.5.1 (both from the Go module proxy).
# The generated files are committed; CI does not run this.
set -euo pipefail
cd "$(dirname "$0")"
want_protoc="libprotoc 3.21.12"
if ! command -v protoc >/dev/null || [ "$(protoc --version)" != "$want_protoc" ]; then
	echo "need $want_protoc: apt-get install protobuf-compiler=3.21.12-3" >&2
	exit 1
fi
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
GOBIN="$bin" go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
GOBIN="$bin" go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1
PATH="$bin:$PATH" protoc -I . \
	--go_out=. --go_opt=paths=source_relative \
	--go-grpc_out=. --go-grpc_opt=paths=source_relative \
	bouncerv1/bouncer.proto
echo "generated api/bouncerv1"
