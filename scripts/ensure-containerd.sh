#!/usr/bin/env bash
# What the CRI-backed test kubelet needs (test/k8s/cri/containerd.ts starts
# its own containerd per test cluster from these): containerd and runc (Debian
# packages, they come with docker.io), the CNI plugins bridge, host-local and
# loopback in /usr/lib/cni (containernetworking-plugins), and the locally
# built pause image galaxy/test-pause. Idempotent; installs only what is
# missing and never starts or touches the machine's own containerd.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "ensure-containerd: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# shellcheck source=scripts/apt-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/apt-lib.sh"

command -v containerd >/dev/null 2>&1 && command -v ctr >/dev/null 2>&1 || apt_install containerd
command -v runc >/dev/null 2>&1 || apt_install runc
# The Pods install test (test/helpers/podSandbox.ts) runs rtmanager in its own
# network and mount namespaces: ip (iproute2), unshare and nsenter (util-linux).
command -v ip >/dev/null 2>&1 || apt_install iproute2
command -v unshare >/dev/null 2>&1 && command -v nsenter >/dev/null 2>&1 || apt_install util-linux
command -v kubectl >/dev/null 2>&1 || log "WARNING: no kubectl on PATH: test/integration/install-pods.test.ts and the kustomize tests need it (these machines ship kubectl 1.32)"
cni_dir="${RTM_CNI_BIN_DIR:-/usr/lib/cni}"
for plugin in bridge host-local loopback; do
  if [ ! -x "$cni_dir/$plugin" ]; then
    apt_install containernetworking-plugins
    break
  fi
done
for plugin in bridge host-local loopback; do
  [ -x "$cni_dir/$plugin" ] || die "no CNI plugin $cni_dir/$plugin after installing containernetworking-plugins"
done

bash test/k8s/cri/build-pause.sh
