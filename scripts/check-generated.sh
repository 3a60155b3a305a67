#!/usr/bin/env bash
# Fails when the committed gqlgen output differs from what `make generate`
# produces from graph/*.graphqls and gqlgen.yml. The regenerated files are left
# in place so `git diff` shows what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
files=(graph/generated.go graph/model/models_gen.go resolvers/schema.resolvers.go)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for f in "${files[@]}"; do
  mkdir -p "$tmp/$(dirname "$f")"
  cp "$f" "$tmp/$f" 2>/dev/null || : > "$tmp/$f"
done
go tool gqlgen generate
stale=0
for f in "${files[@]}"; do
  if ! diff -u "$tmp/$f" "$f" > "$tmp/diff" 2>&1; then
    echo "generated code is stale: $f (run 'make generate' and commit)" >&2
    head -n 40 "$tmp/diff" >&2
    stale=1
  fi
done
exit $stale
