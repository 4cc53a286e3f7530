#!/usr/bin/env bash
# Makes sure PostgreSQL and Redis answer at DATABASE_URL and REDIS_URL.
# When a local one does not, installs the Debian package if missing and starts it
# (no Docker, no systemd), then creates the application database. Idempotent, and
# quick when everything is up already.
set -euo pipefail

DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/rules_db}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}

say() { printf 'services: %s\n' "$*"; }
die() { printf 'services: error: %s\n' "$*" >&2; exit 1; }

# postgres://user[:pass]@host[:port]/db → parts
re='^postgres(ql)?://(([^:@/]+)(:[^@/]*)?@)?([^:/]+)?(:([0-9]+))?/([^?]+)'
[[ $DATABASE_URL =~ $re ]] || die "DATABASE_URL is not a postgres URL: $DATABASE_URL"
PG_USER=${BASH_REMATCH[3]:-postgres}
PG_HOST=${BASH_REMATCH[5]:-127.0.0.1}
PG_PORT=${BASH_REMATCH[7]:-5432}
PG_DB=${BASH_REMATCH[8]}
re='^redis://([^@/]*@)?([^:/]+)(:([0-9]+))?'
[[ $REDIS_URL =~ $re ]] || die "REDIS_URL is not a redis URL: $REDIS_URL"
REDIS_HOST=${BASH_REMATCH[2]}
REDIS_PORT=${BASH_REMATCH[4]:-6379}

is_local() { [[ $1 == 127.0.0.1 || $1 == localhost || $1 == ::1 ]]; }
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
as_root() { if [[ $(id -u) == 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else die "need root to run: $*"; fi; }

apt_updated=
apt_install() {
  command -v apt-get >/dev/null || die "apt-get not found: install $* yourself"
  if [[ -z $apt_updated ]]; then as_root apt-get update -qq; apt_updated=1; fi
  say "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_for() { # host port what
  for _ in $(seq 1 100); do port_open "$1" "$2" && return 0; sleep 0.1; done
  die "$3 did not start listening on $1:$2"
}

start_postgres() {
  is_local "$PG_HOST" || die "PostgreSQL at $PG_HOST:$PG_PORT is not reachable and is not local: start it yourself"
  command -v pg_ctlcluster >/dev/null || apt_install postgresql postgresql-client
  local version
  version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  if ! pg_lsclusters -h 2>/dev/null | grep -q .; then
    say "creating PostgreSQL $version cluster on port $PG_PORT"
    as_root pg_createcluster "$version" main --port "$PG_PORT" >/dev/null
    # A development machine: trust local TCP connections, as the test suite expects.
    local hba="/etc/postgresql/$version/main/pg_hba.conf"
    as_root sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
    as_root sed -i -E 's/^(local\s+all\s+postgres\s+)\S+/\1trust/' "$hba"
  fi
  local cluster
  cluster=$(pg_lsclusters -h | awk -v p="$PG_PORT" '$3 == p {print $1" "$2; exit}')
  [[ -n $cluster ]] || cluster=$(pg_lsclusters -h | awk '{print $1" "$2; exit}')
  say "starting PostgreSQL cluster $cluster"
  # shellcheck disable=SC2086
  as_root pg_ctlcluster --skip-systemctl-redirect $cluster start || true
  wait_for "$PG_HOST" "$PG_PORT" PostgreSQL
}

start_redis() {
  is_local "$REDIS_HOST" || die "Redis at $REDIS_HOST:$REDIS_PORT is not reachable and is not local: start it yourself"
  command -v redis-server >/dev/null || apt_install redis-server
  say "starting Redis on port $REDIS_PORT"
  mkdir -p /tmp/rules-engine-redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir /tmp/rules-engine-redis --logfile /tmp/rules-engine-redis/redis.log >/dev/null
  wait_for "$REDIS_HOST" "$REDIS_PORT" Redis
}

port_open "$PG_HOST" "$PG_PORT" || start_postgres
port_open "$REDIS_HOST" "$REDIS_PORT" || start_redis
command -v psql >/dev/null || apt_install postgresql-client
command -v redis-cli >/dev/null || apt_install redis-tools

# Wait until PostgreSQL accepts queries (it listens a moment before it is ready).
for _ in $(seq 1 100); do
  psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1 && break
  sleep 0.1
done
exists=$(psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -Atqc \
  "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'") || die "cannot query PostgreSQL at $PG_HOST:$PG_PORT as $PG_USER"
if [[ $exists != 1 ]]; then
  say "creating database $PG_DB"
  psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -qc "CREATE DATABASE \"$PG_DB\"" >/dev/null
fi
redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping >/dev/null || die "Redis at $REDIS_HOST:$REDIS_PORT does not answer PING"
say "PostgreSQL $PG_HOST:$PG_PORT/$PG_DB and Redis $REDIS_HOST:$REDIS_PORT are up"
