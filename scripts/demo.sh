#!/usr/bin/env bash
# The demo on embedded defaults: PGlite under ./.rtmanager, the local Docker
# engine (or Docker Desktop, or DOCKER_HOST), a locally built engine image,
# one demo game converging. Ctrl-C stops rtmanager only: the game container
# keeps running, and a dockerd this script started runs on in its own session.
set -euo pipefail
cd "$(dirname "$0")/.."

# The docker CLI follows `docker context use` (Docker Desktop on Linux uses a
# socket under ~/.docker/desktop/); rtmanager (dockerode) reads only
# DOCKER_HOST. Export the CLI's endpoint so both talk to the same engine.
if [ -z "${DOCKER_HOST:-}" ] && command -v docker >/dev/null 2>&1; then
  endpoint="$(docker context inspect --format '{{.Endpoints.docker.Host}}' 2>/dev/null || true)"
  if [ -n "$endpoint" ] && [ "$endpoint" != "unix:///var/run/docker.sock" ]; then
    export DOCKER_HOST="$endpoint"
    echo "demo: using the docker context's engine, DOCKER_HOST=$DOCKER_HOST" >&2
  fi
fi

bash scripts/ensure-node-deps.sh
bash scripts/ensure-docker.sh
bash test/engine/build.sh

export RTMANAGER_DOCKER_NETWORK="${RTMANAGER_DOCKER_NETWORK:-galaxy-net}"
export RTMANAGER_INTERNAL_HTTP_ADDR="${RTMANAGER_INTERNAL_HTTP_ADDR:-127.0.0.1:8096}"
# The demo runs on the host, outside galaxy-net: reach engines through loopback.
export RTMANAGER_ENGINE_PUBLISH_HOST="${RTMANAGER_ENGINE_PUBLISH_HOST:-127.0.0.1}"
export RTMANAGER_CONTAINER_STOP_TIMEOUT="${RTMANAGER_CONTAINER_STOP_TIMEOUT:-5s}"
port="${RTMANAGER_INTERNAL_HTTP_ADDR##*:}"
base="http://127.0.0.1:${port}"
game="${DEMO_GAME_ID:-demo-1}"
image="${DEMO_IMAGE:-galaxy/test-engine:1.0.0}"

if ! docker network inspect "$RTMANAGER_DOCKER_NETWORK" >/dev/null 2>&1; then
  echo "demo: creating Docker network $RTMANAGER_DOCKER_NETWORK" >&2
  docker network create "$RTMANAGER_DOCKER_NETWORK" >/dev/null
fi

npx tsx src/main.ts &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null' INT TERM EXIT

# First start compiles TypeScript and PGlite's WebAssembly: allow two minutes.
ready=0
for _ in $(seq 1 600); do
  if curl -fsS "$base/readyz" >/dev/null 2>&1; then ready=1; break; fi
  kill -0 $pid 2>/dev/null || { echo "demo: rtmanager exited during start-up" >&2; exit 1; }
  sleep 0.2
done
[ "$ready" = 1 ] || { echo "demo: rtmanager was not ready on $base/readyz within 120 s" >&2; exit 1; }

cat >&2 <<MSG

demo: rtmanager is ready on $base. Starting game "$game" on $image:
  curl -X POST -H 'Content-Type: application/json' -d '{"image_ref":"$image"}' $base/api/v1/internal/runtimes/$game/start
MSG
curl -sS -X POST -H 'Content-Type: application/json' -H 'X-Galaxy-Caller: admin' \
  -d "{\"image_ref\":\"$image\"}" "$base/api/v1/internal/runtimes/$game/start"
echo
echo "demo: the container:" >&2
docker ps --filter "name=galaxy-game-$game" --format '  {{.Names}}  {{.Image}}  {{.Status}}  {{.Ports}}'
cat >&2 <<MSG

Try:
  npm run rtmctl -- list
  npm run rtmctl -- patch $game galaxy/test-engine:1.0.1
  docker kill galaxy-game-$game     # watch it come back (restart policy on-failure)
  curl -s $base/metrics | grep rtmanager_
Ctrl-C stops rtmanager only: the game container keeps running (dockerd runs
detached from this terminal) and is adopted on the next start.
MSG
wait $pid
