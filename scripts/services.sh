#!/usr/bin/env bash
# Makes sure PostgreSQL and Redis answer at DATABASE_URL and REDIS_URL.
# When a local one does not, installs the Debian package if missing and starts it
# (no Docker, no systemd), then creates the application database. Idempotent, and
# quick when everything is up already. Never prompts (psql -w).
set -euo pipefail
SCRIPT_NAME=services
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/rules_db}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}

# postgres://user[:pass]@host[:port]/db → parts
re='^postgres(ql)?://(([^:@/]+)(:[^@/]*)?@)?([^:/]+)?(:([0-9]+))?/([^?]+)'
[[ $DATABASE_URL =~ $re ]] || die "DATABASE_URL is not a postgres URL: ${DATABASE_URL%%@*}@…"
PG_USER=${BASH_REMATCH[3]:-postgres}
PG_PASSWORD=${BASH_REMATCH[4]#:}
PG_HOST=${BASH_REMATCH[5]:-127.0.0.1}
PG_PORT=${BASH_REMATCH[7]:-5432}
PG_DB=${BASH_REMATCH[8]}
re='^redis://([^@/]*@)?([^:/]+)(:([0-9]+))?'
[[ $REDIS_URL =~ $re ]] || die "REDIS_URL is not a redis URL"
REDIS_HOST=${BASH_REMATCH[2]}
REDIS_PORT=${BASH_REMATCH[4]:-6379}

is_local() { [[ $1 == 127.0.0.1 || $1 == localhost || $1 == ::1 ]]; }
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_for() { # host port what
  for _ in $(seq 1 100); do port_open "$1" "$2" && return 0; sleep 0.1; done
  die "$3 did not start listening on $1:$2"
}

# psql that never asks for a password and gives up on a dead server.
pg_query() {
  PGPASSWORD=$PG_PASSWORD PGCONNECT_TIMEOUT=5 psql -w -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" \
    -d postgres -Atqc "$1"
}

# The Debian cluster ("version name") listening on PG_PORT, if any.
local_cluster() {
  command -v pg_lsclusters >/dev/null || return 0
  pg_lsclusters -h 2>/dev/null | awk -v p="$PG_PORT" '$3 == p {print $1" "$2; exit}'
}

start_postgres() {
  is_local "$PG_HOST" || die "PostgreSQL at $PG_HOST:$PG_PORT is not reachable and is not local: start it yourself"
  command -v pg_ctlcluster >/dev/null || apt_install "${POSTGRES_PACKAGES[@]}"
  local cluster version
  cluster=$(local_cluster)
  if [[ -z $cluster ]]; then
    version=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)
    if pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "$version main"; then
      die "PostgreSQL cluster $version/main exists on another port than $PG_PORT: start it, or set DATABASE_URL to its port"
    fi
    say "creating PostgreSQL $version cluster on port $PG_PORT"
    as_root pg_createcluster "$version" main --port "$PG_PORT" >/dev/null
    cluster="$version main"
  fi
  say "starting PostgreSQL cluster ${cluster/ //}"
  # shellcheck disable=SC2086
  as_root pg_ctlcluster --skip-systemctl-redirect $cluster start || true
  wait_for "$PG_HOST" "$PG_PORT" PostgreSQL
}

# Debian's own cluster asks for a password on 127.0.0.1 and ::1 (scram-sha-256).
# A development machine connects without one, as DATABASE_URL's default says:
# lets the local cluster trust local TCP connections, said aloud, once.
trust_local_tcp() {
  local cluster hba
  cluster=$(local_cluster)
  [[ -n $cluster ]] || return 1
  hba="/etc/postgresql/${cluster/ //}/pg_hba.conf"
  [[ -f $hba ]] || return 1
  grep -q '^# rule-engine: trust local TCP' "$hba" && return 1
  say "PostgreSQL ${cluster/ //} asks for a password on local TCP; letting it trust 127.0.0.1 and ::1 (development set-up, $hba)"
  as_root sed -i '1i # rule-engine: trust local TCP (scripts/services.sh, development machine)\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  # shellcheck disable=SC2086
  as_root pg_ctlcluster --skip-systemctl-redirect $cluster reload
}

apt_install_missing_clients() {
  command -v psql >/dev/null || apt_install postgresql-client
  command -v redis-cli >/dev/null || apt_install redis-tools
}

start_redis() {
  is_local "$REDIS_HOST" || die "Redis at $REDIS_HOST:$REDIS_PORT is not reachable and is not local: start it yourself"
  command -v redis-server >/dev/null || apt_install "${REDIS_PACKAGES[@]}"
  say "starting Redis on port $REDIS_PORT"
  mkdir -p /tmp/rules-engine-redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir /tmp/rules-engine-redis --logfile /tmp/rules-engine-redis/redis.log >/dev/null
  wait_for "$REDIS_HOST" "$REDIS_PORT" Redis
}

port_open "$PG_HOST" "$PG_PORT" || start_postgres
port_open "$REDIS_HOST" "$REDIS_PORT" || start_redis
apt_install_missing_clients

# Wait until PostgreSQL accepts connections (it listens a moment before it is ready).
for _ in $(seq 1 100); do
  pg_isready -q -h "$PG_HOST" -p "$PG_PORT" && break
  sleep 0.1
done
if ! error=$(pg_query 'SELECT 1' 2>&1 >/dev/null); then
  if [[ $error == *password* ]] && [[ -z $PG_PASSWORD ]] && is_local "$PG_HOST" && trust_local_tcp; then
    error=$(pg_query 'SELECT 1' 2>&1 >/dev/null) || die "cannot query PostgreSQL at $PG_HOST:$PG_PORT as $PG_USER: $error"
  else
    die "cannot query PostgreSQL at $PG_HOST:$PG_PORT as $PG_USER: $error"
  fi
fi
exists=$(pg_query "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")
if [[ $exists != 1 ]]; then
  say "creating database $PG_DB"
  pg_query "CREATE DATABASE \"$PG_DB\"" >/dev/null
fi
redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping >/dev/null || die "Redis at $REDIS_HOST:$REDIS_PORT does not answer PING"
say "PostgreSQL $PG_HOST:$PG_PORT/$PG_DB and Redis $REDIS_HOST:$REDIS_PORT are up"
