#!/usr/bin/env bash
# The pod sandbox ("pause") image for the CRI-backed test kubelet, built
# locally because no registry is reachable: FROM scratch with a static
# busybox, whose `sleep` holds the sandbox's namespaces open. PID 1 ignores
# SIGTERM; containerd kills the sandbox with SIGKILL on StopPodSandbox.
set -euo pipefail
image="${RTM_PAUSE_IMAGE:-galaxy/test-pause:1.0}"
busybox_bin="${BUSYBOX:-/bin/busybox}"
label="com.galaxy.test-pause.build"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
hash="$(cat "$here/build-pause.sh" | sha256sum | cut -c1-16)"

exec 9>"${TMPDIR:-/tmp}/galaxy-test-pause-build.lock"
flock 9
got="$(docker image inspect --format "{{ index .Config.Labels \"$label\" }}" "$image" 2>/dev/null || true)"
[ "$got" = "$hash" ] && exit 0
if [ ! -x "$busybox_bin" ] || ldd "$busybox_bin" >/dev/null 2>&1; then
  echo "build-pause.sh: need a static busybox at $busybox_bin (apt-get install busybox-static)" >&2
  exit 1
fi
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cp "$busybox_bin" "$ctx/busybox"
printf 'FROM scratch\nCOPY busybox /busybox\nENTRYPOINT ["/busybox", "sleep", "2147483647"]\n' >"$ctx/Dockerfile"
echo "build-pause.sh: building $image" >&2
if ! out="$(DOCKER_BUILDKIT=0 docker build -q --label "$label=$hash" -t "$image" "$ctx" 2>&1)"; then
  echo "$out" >&2
  exit 1
fi
