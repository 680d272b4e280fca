#!/usr/bin/env bash
# start-services.sh - install (only if missing) and start PostgreSQL and Redis
# without systemd, for troupe's tests. Idempotent and fast when already up.
# stdout carries only `export ...` lines:  eval "$(scripts/start-services.sh)"
# Everything else goes to stderr. Must run as root.
set -euo pipefail
PG_USER="${PG_USER:-troupe}"
PG_PASS="${PG_PASS:-troupe}"
PG_DB="${PG_DB:-troupe}"
PG_PORT="${PG_PORT:-5432}"
REDIS_PORT="${REDIS_PORT:-6379}"
export REDIS_PORT DEBIAN_FRONTEND=noninteractive
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Keep the real stdout on fd 3 for the final exports; send all else to stderr.
# Daemons started below get `3>&-`: if they inherited fd 3, a caller reading
# our stdout through $(...) would wait for EOF forever (the servers keep it open).
exec 3>&1 1>&2

# 1. Packages. Some machines have PostgreSQL binaries (e.g. /usr/local/bin/pg_ctl)
# but not Debian's cluster tools, so require pg_ctlcluster + a server under
# /usr/lib/postgresql. apt-get update only when something must be installed.
pkgs=()
if ! command -v pg_ctlcluster >/dev/null || ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
  pkgs+=(postgresql)
fi
command -v redis-server >/dev/null && command -v redis-cli >/dev/null || pkgs+=(redis-server)
if ((${#pkgs[@]})); then
  echo "start-services: installing ${pkgs[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi

# 2. PostgreSQL: the Debian cluster <newest version>/main (created if missing,
# e.g. on images where the package was installed but the cluster removed).
PGVER="$(ls /usr/lib/postgresql | sort -V | tail -1)"
pg_lsclusters -h | awk -v v="$PGVER" '$1==v && $2=="main"' | grep -q . ||
  pg_createcluster "$PGVER" main --port "$PG_PORT" >/dev/null

# Settings in the cluster's postgresql.conf, rewritten only when they differ.
# max_connections: several worker processes, each with a pool, run in tests.
conf() {
  [ "$(pg_conftool -s "$PGVER" main show "$1" 2>/dev/null)" = "$2" ] ||
    pg_conftool "$PGVER" main set "$1" "$2"
}
conf port "$PG_PORT"
conf max_connections 300

install -d -o postgres -g postgres -m 2775 /var/run/postgresql # tmpfs after reboot
pgsql() { runuser -u postgres -- psql -X -q -p "$PG_PORT" "$@"; }
if pg_lsclusters -h | awk -v v="$PGVER" '$1==v && $2=="main" && $4=="online"' | grep -q .; then
  # Running: restart only if it does not yet run with our port/max_connections
  # (psql fails on the wrong port, which also yields a mismatch).
  if [ "$(pgsql -Atc 'SHOW max_connections' 2>/dev/null || true)" != 300 ]; then
    echo "start-services: restarting PostgreSQL $PGVER/main to apply settings"
    pg_ctlcluster "$PGVER" main restart 3>&-
  fi
else
  # Without systemd, pg_ctlcluster runs pg_ctl itself (and waits for startup).
  echo "start-services: starting PostgreSQL $PGVER/main"
  pg_ctlcluster "$PGVER" main start 3>&-
fi
for _ in $(seq 100); do pg_isready -q -h 127.0.0.1 -p "$PG_PORT" && break; sleep 0.1; done
pg_isready -q -h 127.0.0.1 -p "$PG_PORT"

# Role and database; TCP connections use scram-sha-256 per Debian's pg_hba.conf.
pgsql -v ON_ERROR_STOP=1 -v u="$PG_USER" -v p="$PG_PASS" -v d="$PG_DB" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'u', :'p')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'u') \gexec
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'u', :'p') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'d', :'u')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'d') \gexec
SQL

# 3. Redis (the command line lives in redis-ctl.sh). A redis-server started by
# the Debian package (if any) may persist to disk; turn that off either way.
bash "$HERE/redis-ctl.sh" start 3>&-
redis-cli -h 127.0.0.1 -p "$REDIS_PORT" config set save '' >/dev/null
redis-cli -h 127.0.0.1 -p "$REDIS_PORT" config set appendonly no >/dev/null

# 4. Verify with the exact URLs we hand out, then print them on the real stdout.
DB_URL="postgres://$PG_USER:$PG_PASS@127.0.0.1:$PG_PORT/$PG_DB"
REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
psql -X "$DB_URL" -Atc "SELECT 'postgres ok: ' || current_user || '@' || current_database() || ', max_connections=' || current_setting('max_connections')"
echo "redis ok: $(redis-cli -u "$REDIS_URL" ping)"
echo "export TROUPE_TEST_DATABASE_URL=$DB_URL" >&3
echo "export TROUPE_TEST_REDIS_URL=$REDIS_URL" >&3
