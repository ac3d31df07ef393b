#!/usr/bin/env bash
# Installs npm dependencies when node_modules is missing or older than the lock file.
#
# A node_modules that is a symlink (a git worktree sharing another checkout's
# install) is never reinstalled: `npm ci` empties the directory it points to,
# which is someone else's. Such a setup gets a warning and is used as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -L node_modules ]; then
  if [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "ensure-node-deps: node_modules is a symlink to $(readlink node_modules) and may be older than package-lock.json; not reinstalling into a shared directory (run npm ci where it points if tests fail to import)" >&2
  fi
  exit 0
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "ensure-node-deps: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
