#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs and starts what it needs
# (npm deps, Docker engine, PostgreSQL binaries, test engine images), then
# type-checks, lints and runs every test against the real engine and database.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-node-deps.sh
bash scripts/ensure-docker.sh
bash scripts/ensure-postgres.sh
bash scripts/ensure-promtool.sh
bash scripts/ensure-containerd.sh
bash test/engine/build.sh

echo "== tsc --noEmit" >&2
npx tsc --noEmit
echo "== eslint" >&2
npx eslint .

echo "== vitest" >&2
reports="$(mktemp -d -t rtm-vitest-XXXX)"
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$reports/main.json" "$@" || status=$?
if [ "$#" -eq 0 ]; then
  # Unit and HTTP suites again on Node 22, 24 and 26 (scripts/test-node-matrix.sh).
  bash scripts/test-node-matrix.sh "$reports" || status=$?
  # Restarts dockerd: only after everything else, never beside other tests.
  echo "== vitest (disruptive: restarts dockerd)" >&2
  npx vitest run --config vitest.disruptive.config.ts --reporter=default --reporter=json --outputFile.json="$reports/disruptive.json" || status=$?
fi
# A plain closing line any CI can read, whatever the runner prints.
node -e '
  const fs = require("fs");
  let passed = 0, failed = 0, skipped = 0;
  for (const f of fs.readdirSync(process.argv[1])) {
    const r = JSON.parse(fs.readFileSync(`${process.argv[1]}/${f}`, "utf8"));
    passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests + r.numTodoTests;
  }
  console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
' "$reports" || true
rm -rf "$reports"
exit "$status"
