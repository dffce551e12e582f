#!/usr/bin/env bash
# npm test: type-check, then every *.test.ts through node:test + tsx.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "typecheck: tsc --noEmit"
npx --no-install tsc --noEmit -p tsconfig.json

# Node 20's test runner takes no globs and does not discover .ts files, so list them.
mapfile -t files < <(find packages test samples -name node_modules -prune -o -name '*.test.ts' -print | sort)
if [ ${#files[@]} -eq 0 ]; then
  echo "no test files found" >&2
  exit 1
fi
exec node --import tsx --test --test-reporter=spec "${files[@]}"
