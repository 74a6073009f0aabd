#!/usr/bin/env bash
# The project's test command (README): hygiene checks, vet, staticcheck,
# then every package's tests. Needs only Go and the module proxy.
set -euo pipefail
cd "$(dirname "$0")/.."

# staticcheck, pinned; `go run pkg@version` builds it once into the build
# cache and leaves go.mod alone.
STATICCHECK=honnef.co/go/tools/cmd/staticcheck@v0.8.2

echo "== gofmt -l"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
  echo "gofmt: these files need gofmt -w:" >&2
  echo "$unformatted" >&2
  exit 1
fi

echo "== go mod tidy -diff"
go mod tidy -diff

echo "== go vet"
go vet ./...

echo "== staticcheck ($STATICCHECK)"
go run "$STATICCHECK" ./...

echo "== go test"
go test -count=1 -timeout 45m ./...
