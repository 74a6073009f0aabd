#!/usr/bin/env bash
# Regenerates the Go code for every .proto file under api/ (the generated
# code is committed; CI does not need protoc).
# Needs: protoc (Debian: apt-get install protobuf-compiler) and the plugins
#   go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
#   go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:$(go env GOPATH)/bin"
for tool in protoc protoc-gen-go protoc-gen-go-grpc; do
  command -v "$tool" >/dev/null || { echo "genproto: $tool not found (see the comment at the top of $0)" >&2; exit 1; }
done
find api -name '*.proto' -print0 | xargs -0 protoc -I api \
  --go_out=api --go_opt=paths=source_relative \
  --go-grpc_out=api --go-grpc_opt=paths=source_relative
