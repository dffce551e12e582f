#!/usr/bin/env bash
# npm test: type-check, build dist/ (the bin, the samples and the package test run it), then every *.test.ts
# through node:test + tsx; the `source` export condition makes the tests import the TypeScript sources.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "typecheck: tsc --noEmit"
npx --no-install tsc --noEmit -p tsconfig.json
echo "build: tsc -b, then the tessera bin bundle"
npx --no-install tsc -b tsconfig.build.json
node packages/host/bundle.mjs

# Node 20's test runner takes no globs and does not discover .ts files, so list them.
mapfile -t files < <(find packages test samples -name node_modules -prune -o -name '*.test.ts' -print | sort)
if [ ${#files[@]} -eq 0 ]; then
  echo "no test files found" >&2
  exit 1
fi
exec node --conditions=@tessera/source --import tsx --test --test-reporter=spec "${files[@]}"
