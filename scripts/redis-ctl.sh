#!/usr/bin/env bash
# redis-ctl.sh start|stop - control the test Redis (127.0.0.1:$REDIS_PORT, no
# persistence). This is the single place that knows the redis-server command
# line; start-services.sh and the fault tests (stop/restart Redis) call it.
set -euo pipefail
REDIS_PORT="${REDIS_PORT:-6379}"
PIDFILE="/tmp/troupe-redis-$REDIS_PORT.pid"
# timeout: a frozen (SIGSTOPped) server must not hang us.
cli() { timeout 1 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }
up() { cli ping 2>/dev/null | grep -q PONG; }

case "${1:-}" in
  start)
    if ! up; then
      # --save '' / --appendonly no: nothing ever touches disk, so a restart
      # starts empty, which is what the fault tests expect.
      redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" \
        --save '' --appendonly no --dir /tmp \
        --pidfile "$PIDFILE" --logfile "/tmp/troupe-redis-$REDIS_PORT.log"
    fi
    deadline=$((SECONDS + 5))
    while ((SECONDS < deadline)); do up && exit 0; sleep 0.05; done
    echo "redis-ctl: redis on port $REDIS_PORT did not answer PING" >&2
    exit 1
    ;;
  stop)
    # Read the pidfile first: redis deletes it while shutting down.
    pid="$(cat "$PIDFILE" 2>/dev/null || true)"
    up && { cli shutdown nosave >/dev/null 2>&1 || true; }
    # Wait until both the port and the process are gone (a zombie counts as
    # gone), so a following start cannot race a dying server; SIGKILL a hang.
    alive() { [ -n "$pid" ] && ps -o stat= -p "$pid" 2>/dev/null | grep -qv Z; }
    deadline=$((SECONDS + 5))
    while ((SECONDS < deadline)); do up || alive || exit 0; sleep 0.05; done
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
    sleep 0.2
    ! up
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
