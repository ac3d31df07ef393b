#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs and starts what it needs
# (npm deps, Docker engine, PostgreSQL binaries, test engine images), then
# type-checks, lints and runs every test against the real engine and database.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-node-deps.sh
bash scripts/ensure-docker.sh
bash scripts/ensure-postgres.sh
bash test/engine/build.sh

echo "== tsc --noEmit" >&2
npx tsc --noEmit
echo "== eslint" >&2
npx eslint .

echo "== vitest" >&2
report="$(mktemp -t rtm-vitest-XXXX.json)"
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
# A plain closing line any CI can read, whatever the runner prints.
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
' "$report" || true
rm -f "$report"
exit "$status"
