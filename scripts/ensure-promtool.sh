#!/usr/bin/env bash
# Installs promtool (Debian's `prometheus` package) for the alert-rule tests
# (test/unit/prometheus-rules.test.ts runs `promtool check config`, `check
# rules` and `test rules`). Idempotent: does nothing when promtool is on the
# PATH. The package's Prometheus server is NOT started: a policy-rc.d denies
# service starts for the duration of the install (unless one already exists),
# so nothing listens on :9090 afterwards.
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then
  exit 0
fi

command -v apt-get >/dev/null 2>&1 || { echo "ensure-promtool: ERROR: no apt-get; install promtool (Prometheus >= 2.36) by hand" >&2; exit 1; }
run() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

policy=/usr/sbin/policy-rc.d
added_policy=0
if [ ! -e "$policy" ]; then
  run sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 0755 $policy"
  added_policy=1
fi
cleanup() { if [ "$added_policy" = 1 ]; then run rm -f "$policy"; fi; }
trap cleanup EXIT

echo "ensure-promtool: installing prometheus (for promtool)" >&2
run apt-get update -qq || { echo "ensure-promtool: ERROR: apt-get update failed" >&2; exit 1; }
run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
  || { echo "ensure-promtool: ERROR: apt-get install prometheus failed" >&2; exit 1; }

command -v promtool >/dev/null 2>&1 \
  || { echo "ensure-promtool: ERROR: prometheus installed but no promtool on the PATH" >&2; exit 1; }
