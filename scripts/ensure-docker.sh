#!/usr/bin/env bash
# Makes sure a Docker engine answers and a static busybox exists for the test
# engine images. Safe to run repeatedly: each step is skipped when done.
set -euo pipefail

log() { echo "ensure-docker: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    die "need root to run: $*"
  fi
}

apt_updated=0
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "apt-get not available; install $* by hand"
  if [ "$apt_updated" = 0 ]; then
    as_root apt-get update -qq || die "apt-get update failed"
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null || die "apt-get install $* failed"
}

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
  log "installing docker.io"
  apt_install docker.io
fi

# The test images are FROM scratch, so busybox must be the static build.
if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then
  log "installing busybox-static"
  apt_install busybox-static
fi

if docker info >/dev/null 2>&1; then
  exit 0
fi

dockerd_log="${DOCKERD_LOG:-/tmp/dockerd.log}"
start_dockerd() {
  log "starting dockerd (log: $dockerd_log)"
  as_root sh -c "nohup dockerd >>'$dockerd_log' 2>&1 &"
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
