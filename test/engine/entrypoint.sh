#!/bin/sh
# Test game engine. Runs as PID 1 under busybox sh, which ignores SIGTERM
# unless a handler is installed: without the trap `docker stop` would wait
# out its whole timeout and then SIGKILL (exit 137).
#
# ENGINE_VERSION / ENGINE_HEALTHY are baked in at build time; a test may
# override ENGINE_HEALTHY at run time. ENGINE_EXIT_AFTER (seconds) and
# ENGINE_EXIT_CODE make the engine exit on its own, to exercise the restart
# policy without killing anything from outside. ENGINE_WWW is where the
# served files go (default /www; the hardened variant, non-root and fit for a
# read-only root filesystem, sets /tmp/www).

version="${ENGINE_VERSION:-unknown}"
now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

if [ -n "$GAME_STATE_PATH" ]; then
  mkdir -p "$GAME_STATE_PATH"
  echo "boot version=$version game=${GAME_ID:-} at=$now" >>"$GAME_STATE_PATH/boots.log"
fi

www="${ENGINE_WWW:-/www}"
mkdir -p "$www"
rm -f "$www/healthz"
if [ "$ENGINE_HEALTHY" = "true" ]; then
  echo ok >"$www/healthz"
fi
echo "$version" >"$www/version"

echo "engine $version starting (healthy=$ENGINE_HEALTHY)"

httpd_pid=""
shutdown() {
  echo "engine $version: signal received, stopping"
  [ -n "$httpd_pid" ] && kill "$httpd_pid" 2>/dev/null
  exit 0
}
trap shutdown TERM INT

busybox httpd -f -p 8080 -h "$www" &
httpd_pid=$!

if [ -n "$ENGINE_EXIT_AFTER$ENGINE_EXIT_CODE" ]; then
  # sleep runs in the background so `wait` stays interruptible by the trap.
  sleep "${ENGINE_EXIT_AFTER:-0}" &
  wait $!
  echo "engine $version: exiting on purpose with ${ENGINE_EXIT_CODE:-1}" >&2
  kill "$httpd_pid" 2>/dev/null
  exit "${ENGINE_EXIT_CODE:-1}"
fi

wait "$httpd_pid"
