#!/usr/bin/env bash
# For each `SOURCE=VARIANT` given (SOURCE built by test/engine/build.sh), a
# variant for the CRI test kubelet, tagged VARIANT: the same
# image with its served directory /www writable by any uid. A Pod runs the
# engine as rtmanager's non-root uid (runAsUser 65532), which containerd
# enforces, and an image built for Kubernetes has to allow that; the Docker
# images stay as they are (Docker mode runs them as root). containerd.ts
# imports the variants under the original names. Idempotent: a variant is
# rebuilt only when its source image or this script changed.
set -euo pipefail
label="com.galaxy.test-engine-cri.build"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
script_hash="$(sha256sum <"$here/build-cri-images.sh" | cut -c1-16)"

exec 9>"${TMPDIR:-/tmp}/galaxy-test-engine-cri-build.lock"
flock 9
ctx=""
for pair in "$@"; do
  src="${pair%%=*}"
  dst="${pair#*=}"
  src_id="$(docker image inspect --format '{{.Id}}' "$src")"
  want="${script_hash}-${src_id#sha256:}"
  want="${want:0:40}"
  got="$(docker image inspect --format "{{ index .Config.Labels \"$label\" }}" "$dst" 2>/dev/null || true)"
  [ "$got" = "$want" ] && continue
  if [ -z "$ctx" ]; then
    ctx="$(mktemp -d)"
    trap 'rm -rf "$ctx"' EXIT
    mkdir -m 1777 "$ctx/www"
    # ADD of a tar keeps the 1777 mode; COPY of a directory does not.
    tar -C "$ctx" -cf "$ctx/www.tar" --owner=0 --group=0 www
  fi
  printf 'FROM %s\nADD www.tar /\n' "$src" >"$ctx/Dockerfile"
  if ! out="$(DOCKER_BUILDKIT=0 docker build -q --network=none --label "$label=$want" -t "$dst" "$ctx" 2>&1)"; then
    echo "$out" >&2
    echo "build-cri-images.sh: building $dst failed" >&2
    exit 1
  fi
done
