#!/usr/bin/env bash
# Installs Debian's `chromium` for the console's browser tests
# (test/integration/console.test.ts drives it with playwright-core through its
# executablePath; playwright's own browser download is never used, so nothing
# is fetched at test time but the distribution package). Idempotent: does
# nothing when /usr/bin/chromium (or RTMANAGER_CHROMIUM) exists.
set -euo pipefail

bin="${RTMANAGER_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$bin" ]; then
  exit 0
fi

command -v apt-get >/dev/null 2>&1 || { echo "ensure-chromium: ERROR: no apt-get; install chromium by hand or set RTMANAGER_CHROMIUM" >&2; exit 1; }
run() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

echo "ensure-chromium: installing chromium" >&2
run apt-get update -qq || { echo "ensure-chromium: ERROR: apt-get update failed" >&2; exit 1; }
run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null \
  || { echo "ensure-chromium: ERROR: apt-get install chromium failed" >&2; exit 1; }

[ -x "$bin" ] || { echo "ensure-chromium: ERROR: chromium installed but $bin is missing" >&2; exit 1; }
