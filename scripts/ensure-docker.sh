#!/usr/bin/env bash
# Makes sure a Docker engine answers and a static busybox exists for the test
# engine images. Safe to run repeatedly: each step is skipped when done, and
# when `docker info` already answers nothing at all is installed or started.
set -euo pipefail

log() { echo "ensure-docker: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# shellcheck source=scripts/apt-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/apt-lib.sh"

static_busybox() { [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; }

# An engine that already answers (a local dockerd, Docker Desktop, a remote
# DOCKER_HOST) is used as it is: nothing is installed or started.
if docker info >/dev/null 2>&1; then
  static_busybox || log "note: building the test engine images needs a static busybox at /bin/busybox (Debian: apt-get install busybox-static, or set BUSYBOX=<path>); not installing anything because Docker already answers"
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
  apt_install docker.io
fi

# The test images are FROM scratch, so busybox must be the static build.
if ! static_busybox; then
  apt_install busybox-static
fi

if docker info >/dev/null 2>&1; then
  exit 0
fi

dockerd_log="${DOCKERD_LOG:-/tmp/dockerd.log}"
start_dockerd() {
  log "starting dockerd detached from this terminal (log: $dockerd_log)"
  # A session of its own (setsid): Ctrl-C in the terminal that ran the demo or
  # the tests reaches their process group only, never dockerd, so the engines
  # it runs (the demo's game) keep running. No terminal on any of its streams.
  as_root setsid -f sh -c "exec dockerd >>'$dockerd_log' 2>&1 </dev/null"
}
if pgrep -x dockerd >/dev/null 2>&1; then
  log "dockerd is running but not answering yet; waiting"
else
  start_dockerd
fi

# A dockerd found "running but not answering" may be one that is shutting
# down: if it exits while we wait, start a new one.
for _ in $(seq 1 120); do
  if docker info >/dev/null 2>&1; then
    log "docker is up"
    exit 0
  fi
  if ! pgrep -x dockerd >/dev/null 2>&1; then
    start_dockerd
  fi
  sleep 0.5
done

tail -n 20 "$dockerd_log" >&2 2>/dev/null || true
die "docker did not answer within 60 s (see $dockerd_log)"
