#!/usr/bin/env bash
# Builds the test game-engine images. Idempotent: an image is rebuilt only
# when it is missing or was built from different inputs (tracked by a hash
# label), so a second run takes well under a second.
#
#   galaxy/test-engine:1.0.0 1.0.1 1.0.2 1.1.0 2.0.0   healthy
#   galaxy/test-engine:1.0.3                            unhealthy (no /healthz)
#   galaxy/test-engine:1.0.4                            fails at start (missing entrypoint)
#   galaxy/test-engine-labelled:1.0.0                   healthy, with com.galaxy.* resource labels
#   galaxy/test-engine-hardened:1.0.0                   healthy, runs as uid/gid 10001 and writes only
#                                                       GAME_STATE_PATH and /tmp (fits a read-only rootfs)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
busybox_bin="${BUSYBOX:-/bin/busybox}"
hash_label="com.galaxy.test-engine.build"

if ! command -v docker >/dev/null 2>&1; then
  echo "build.sh: docker CLI not found; run scripts/ensure-docker.sh first" >&2
  exit 1
fi
if [ ! -x "$busybox_bin" ]; then
  echo "build.sh: no busybox at $busybox_bin; install busybox-static (scripts/ensure-docker.sh does)" >&2
  exit 1
fi
if ldd "$busybox_bin" >/dev/null 2>&1; then
  echo "build.sh: $busybox_bin is dynamically linked; a FROM scratch image needs busybox-static" >&2
  exit 1
fi

# Test files run in parallel and may all call this at once.
exec 9>"${TMPDIR:-/tmp}/galaxy-test-engine-build.lock"
flock 9

build_hash="$(cat "$here/Dockerfile" "$here/entrypoint.sh" "$here/build.sh" | sha256sum | cut -c1-16)"

up_to_date() {
  local got
  got="$(docker image inspect --format "{{ index .Config.Labels \"$hash_label\" }}" "$1" 2>/dev/null || true)"
  [ "$got" = "$build_hash" ]
}

ctx=""
built=0
context() {
  built=1
  if [ -z "$ctx" ]; then
    ctx="$(mktemp -d)"
    trap 'rm -rf "$ctx"' EXIT
    cp "$busybox_bin" "$ctx/busybox"
    cp "$here/Dockerfile" "$here/entrypoint.sh" "$ctx/"
    printf 'FROM galaxy/test-engine:1.0.0\nENV ENGINE_VERSION=1.0.4\nENTRYPOINT ["/engine-binary-that-does-not-exist"]\n' >"$ctx/Dockerfile.broken"
    # FROM scratch has no /tmp: a writable one, as images have, for when no tmpfs is mounted there.
    printf 'FROM galaxy/test-engine:1.0.0\nRUN ["/bin/mkdir", "-m", "1777", "/tmp"]\nENV ENGINE_WWW=/tmp/www\nUSER 10001:10001\n' >"$ctx/Dockerfile.hardened"
  fi
}

build() {
  local tag="$1" version="$2" healthy="$3"
  shift 3
  if up_to_date "$tag"; then return 0; fi
  context
  echo "build.sh: building $tag" >&2
  quiet_build --build-arg "VERSION=$version" --build-arg "HEALTHY=$healthy" "$@" -t "$tag" "$ctx"
}

# The classic builder (the daemon is 20.10) prints a deprecation banner on
# every run; keep the output only when the build fails.
quiet_build() {
  local out
  if ! out="$(DOCKER_BUILDKIT=0 docker build -q --label "$hash_label=$build_hash" "$@" 2>&1)"; then
    echo "$out" >&2
    echo "build.sh: docker build $* failed" >&2
    exit 1
  fi
}

build galaxy/test-engine:1.0.0 1.0.0 true
build galaxy/test-engine:1.0.1 1.0.1 true
build galaxy/test-engine:1.0.2 1.0.2 true
build galaxy/test-engine:1.0.3 1.0.3 false
build galaxy/test-engine:1.1.0 1.1.0 true
build galaxy/test-engine:2.0.0 2.0.0 true
build galaxy/test-engine-labelled:1.0.0 1.0.0 true \
  --label com.galaxy.cpu_quota=0.5 --label com.galaxy.memory=64m --label com.galaxy.pids_limit=64

if ! up_to_date galaxy/test-engine:1.0.4; then
  context
  echo "build.sh: building galaxy/test-engine:1.0.4 (broken entrypoint)" >&2
  quiet_build -f "$ctx/Dockerfile.broken" -t galaxy/test-engine:1.0.4 "$ctx"
fi

if ! up_to_date galaxy/test-engine-hardened:1.0.0; then
  context
  echo "build.sh: building galaxy/test-engine-hardened:1.0.0 (non-root, read-only-rootfs ready)" >&2
  quiet_build -f "$ctx/Dockerfile.hardened" -t galaxy/test-engine-hardened:1.0.0 "$ctx"
fi

# Rebuilds leave the previous images untagged; drop only ours.
if [ "$built" = 1 ]; then
  docker image prune -f --filter "label=$hash_label" >/dev/null 2>&1 || true
fi
