#!/usr/bin/env bash
# Runs the benchmarks (not tests): each bench file measures rtmanager against
# a baseline in the same run and prints JSON lines and a markdown table; this
# script then prints one combined table. See docs/BENCHMARKS.md.
#
#   npm run bench                     # everything, ~15-25 min on 2 cores
#   BENCH_QUICK=1 npm run bench       # smoke run: small N, short windows, ~3 min
#   npm run bench -- converge patch   # only some files (converge, http, patch, pods, fleetPatch)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-node-deps.sh
bash scripts/ensure-docker.sh
bash scripts/ensure-postgres.sh
bash test/engine/build.sh

# The compiled controller is what the idle CPU/RSS rows prefer; without it they
# measure the tsx process only.
if ! npm run --silent build >&2; then
  echo "bench: npm run build failed; idle CPU/RSS will be measured on the tsx process only" >&2
  export BENCH_NO_BUILT=1
fi

benches=("$@")
if [ "${#benches[@]}" -eq 0 ]; then benches=(converge http patch pods fleetPatch); fi

# What was measured: others may commit or edit src/ during a run.
BENCH_GIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain -- src 2>/dev/null)" ]; then BENCH_GIT="$BENCH_GIT with uncommitted changes under src/"; fi
export BENCH_GIT
export BENCH_LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"

results="$(mktemp -t rtm-bench-XXXXXX.jsonl)"
export BENCH_RESULTS="$results"
# The 1-minute load average every 15 s: other work on the machine skews everything.
export BENCH_LOADLOG="$results.load"
( while :; do cut -d' ' -f1 /proc/loadavg >>"$BENCH_LOADLOG"; sleep 15; done ) &
sampler=$!
trap 'kill "$sampler" 2>/dev/null || true' EXIT
status=0
for b in "${benches[@]}"; do
  file="bench/$b.ts"
  [ -f "$file" ] || { echo "bench: no $file" >&2; status=1; continue; }
  # Each file has its own hard deadline and cleans up on it; this is the backstop.
  if [ -n "${BENCH_QUICK:-}" ]; then limit=420; else limit=1380; fi
  echo "== $file (load average: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  code=0
  timeout --signal=TERM --kill-after=150 "$limit" node --import tsx "$file" || code=$?
  if [ "$code" -ne 0 ]; then
    echo "bench: $file failed (exit $code)" >&2
    status=1
  fi
done

echo
node --import tsx bench/report.ts "$results"
echo
echo "raw rows: $results" >&2
exit "$status"
