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
  log "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null || die "apt-get install $* failed"
}

command -v containerd >/dev/null 2>&1 && command -v ctr >/dev/null 2>&1 || apt_install containerd
command -v runc >/dev/null 2>&1 || apt_install runc
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
