#!/usr/bin/env bash
# Installs the PostgreSQL server binaries the integration tests use to start
# their own throwaway clusters. Does not start or configure anything.
set -euo pipefail

if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  exit 0
fi

command -v apt-get >/dev/null 2>&1 || { echo "ensure-postgres: ERROR: no apt-get; install PostgreSQL by hand" >&2; exit 1; }
run() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

echo "ensure-postgres: installing postgresql" >&2
run apt-get update -qq || { echo "ensure-postgres: ERROR: apt-get update failed" >&2; exit 1; }
run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null \
  || { echo "ensure-postgres: ERROR: apt-get install postgresql failed" >&2; exit 1; }

compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null \
  || { echo "ensure-postgres: ERROR: postgresql installed but no initdb under /usr/lib/postgresql/*/bin" >&2; exit 1; }
