#!/usr/bin/env bash
# Builds rtmanager's image so that it can be traced back to its source:
# the commit (RTMANAGER_COMMIT: `rtmctl version`, /api/v1/ext/version,
# rtmanager_build_info) and the OCI labels org.opencontainers.image.*
# (version, revision, created, source). deploy/Dockerfile explains each.
#
#   npm run -s image                         # galaxy/rtmanager:<package.json version>
#   IMAGE=registry.example.com/galaxy/rtmanager npm run -s image -- --push   # extra args go to docker build
#
# A checkout with uncommitted changes gets the commit with a "-dirty" suffix:
# the image is not exactly that commit.
set -euo pipefail
cd "$(dirname "$0")/.."

version="$(node -p 'require("./package.json").version')"
commit="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
if [ "$commit" != unknown ] && [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  commit="${commit}-dirty"
fi
image="${IMAGE:-galaxy/rtmanager}:${TAG:-$version}"
docker_gid="${DOCKER_GID:-$(stat -c %g /var/run/docker.sock 2>/dev/null || echo 999)}"

set -x
docker build -f deploy/Dockerfile \
  --build-arg DOCKER_GID="$docker_gid" \
  --build-arg RTMANAGER_COMMIT="$commit" \
  --build-arg VERSION="$version" \
  --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  -t "$image" "$@" .
