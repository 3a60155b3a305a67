#!/usr/bin/env bash
# Fails when the committed generated code differs from what `make generate`
# produces: gqlgen's from graph/*.graphqls and gqlgen.yml, and the time zone
# maps from the CLDR data in internal/zonedata. The regenerated files are left
# in place so `git diff` shows what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
files=(graph/generated.go graph/model/models_gen.go resolvers/*.resolvers.go internal/schedule/zones_gen.go graphemu/zones_gen.go)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for f in "${files[@]}"; do
  mkdir -p "$tmp/$(dirname "$f")"
  cp "$f" "$tmp/$f" 2>/dev/null || : > "$tmp/$f"
done
# gqlgen type-checks the resolvers from compiled packages: it loads them
# race-instrumented (GOFLAGS=-race), the build make test's vet and tests
# use, so a fresh machine does not compile the Graph SDK a second time for
# it. The tool itself is built without (go tool -n builds it and names it).
gqlgen=$(go tool -n gqlgen)
GOFLAGS="${GOFLAGS:-} -race" "$gqlgen" generate
go generate ./internal/schedule ./graphemu
stale=0
for f in "${files[@]}"; do
  if ! diff -u "$tmp/$f" "$f" > "$tmp/diff" 2>&1; then
    echo "generated code is stale: $f (run 'make generate' and commit)" >&2
    head -n 40 "$tmp/diff" >&2
    stale=1
  fi
done
exit $stale
