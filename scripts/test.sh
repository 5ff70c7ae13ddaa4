#!/usr/bin/env bash
# `npm test`: installs what is missing, checks lint/format/types, brings up the local stack if it
# is not already up, runs every test (unit, workflow, integration, replay), and stops the parts
# of the stack it started itself.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=bootstrap.sh
source scripts/bootstrap.sh
started=$(date +%s)

echo "== lint, format and types"
node_modules/.bin/eslint .
node_modules/.bin/prettier --check . >/dev/null || { node_modules/.bin/prettier --check .; exit 1; }
node_modules/.bin/tsc -p tsconfig.json

echo "== local stack"
stack_was_up=false
if lifeboat stack status --json 2>/dev/null | node -e 'const s=JSON.parse(require("fs").readFileSync(0,"utf8"));process.exit(s.parts.every(p=>p.running)?0:1)'; then
  stack_was_up=true
  echo "reusing the running stack"
fi
lifeboat stack up
if [ "$stack_was_up" = false ]; then
  trap 'echo "== stopping the stack this run started"; lifeboat stack down || true' EXIT
fi

echo "== tests"
node --disable-warning=ExperimentalWarning --test --test-concurrency=1 --test-timeout=600000 \
  'test/**/*.test.ts'
echo "npm test: $(( $(date +%s) - started ))s in all"
