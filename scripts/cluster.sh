#!/usr/bin/env bash
# A real local Redis Cluster from Debian's redis-server, no Docker: MASTERS masters
# (default 3) with REPLICAS replicas each (default 0) on loopback ports from
# BASE_PORT (default 7000), data and logs in CLUSTER_DIR (default
# ${TMPDIR:-/tmp}/rule-engine-cluster). Each node is a plain redis-server with
# cluster-enabled; `redis-cli --cluster create` assigns the 16,384 slots.
#
#   scripts/cluster.sh start   # (make cluster) starts it, waits for cluster_state:ok,
#                              # prints the seed URLs
#   scripts/cluster.sh stop    # (make cluster-stop) stops every node, removes CLUSTER_DIR
#   scripts/cluster.sh status  # CLUSTER NODES of the first node
set -euo pipefail
SCRIPT_NAME=cluster
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

MASTERS=${MASTERS:-3}
REPLICAS=${REPLICAS:-0}
BASE_PORT=${BASE_PORT:-7000}
CLUSTER_DIR=${CLUSTER_DIR:-${TMPDIR:-/tmp}/rule-engine-cluster}
NODES=$(( MASTERS * (1 + REPLICAS) ))
ports() { seq "$BASE_PORT" $(( BASE_PORT + NODES - 1 )); }

start() {
  (( MASTERS >= 3 )) || die "a Redis Cluster needs at least 3 masters (MASTERS=$MASTERS)"
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null || apt_install "${REDIS_PACKAGES[@]}"
  [[ -e $CLUSTER_DIR ]] && die "$CLUSTER_DIR exists: a cluster is running there (scripts/cluster.sh stop)"
  mkdir -p "$CLUSTER_DIR"
  local port addrs=()
  for port in $(ports); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && die "port $port is taken (BASE_PORT=...)"
    mkdir -p "$CLUSTER_DIR/$port"
    redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
      --cluster-config-file "$CLUSTER_DIR/$port/nodes.conf" --cluster-node-timeout 2000 \
      --appendonly yes --appendfsync everysec --save "" --dir "$CLUSTER_DIR/$port" \
      --daemonize yes --pidfile "$CLUSTER_DIR/$port/redis.pid" --logfile "$CLUSTER_DIR/$port/redis.log"
    addrs+=("127.0.0.1:$port")
  done
  for port in $(ports); do
    for _ in $(seq 1 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    redis-cli -p "$port" ping >/dev/null 2>&1 \
      || die "node $port did not start: $(tail -n 3 "$CLUSTER_DIR/$port/redis.log" 2>/dev/null | tr '\n' ' ')"
  done
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas "$REPLICAS" --cluster-yes >"$CLUSTER_DIR/create.log" \
    || die "cluster create failed: $CLUSTER_DIR/create.log"
  for port in $(ports); do
    for _ in $(seq 1 100); do
      redis-cli -p "$port" cluster info | grep -q '^cluster_state:ok' && break
      sleep 0.1
    done
    redis-cli -p "$port" cluster info | grep -q '^cluster_state:ok' || die "node $port is not ok: $CLUSTER_DIR/$port/redis.log"
  done
  # Every node must also know every replica, and every replica be in sync with its
  # master, before the cluster is used: a failover or a kill asked for sooner found
  # no replica (the masters' views of the replicas arrive by gossip, after ok).
  local want=$(( MASTERS * REPLICAS ))
  replicas_seen() { redis-cli -p "$1" cluster nodes | awk '$3 ~ /(^|,)slave(,|$)/' | wc -l; }
  link_down() { redis-cli -p "$1" info replication | grep -q '^master_link_status:down'; }
  for port in $(ports); do
    for _ in $(seq 1 200); do
      [[ $(replicas_seen "$port") -eq $want ]] && ! link_down "$port" && break
      sleep 0.1
    done
    [[ $(replicas_seen "$port") -eq $want ]] \
      || die "node $port does not see the $want replicas: $CLUSTER_DIR/$port/redis.log"
    ! link_down "$port" || die "replica $port is not in sync with its master: $CLUSTER_DIR/$port/redis.log"
  done
  say "$MASTERS masters, $REPLICAS replica(s) each, on 127.0.0.1:$BASE_PORT-$(( BASE_PORT + NODES - 1 )) ($CLUSTER_DIR)"
  say "seed URLs: $(printf 'redis://%s ' "${addrs[@]}")"
}

stop() {
  local port pid
  [[ -d $CLUSTER_DIR ]] || { say "no cluster at $CLUSTER_DIR"; return 0; }
  for port in $(ports); do
    pid=$(cat "$CLUSTER_DIR/$port/redis.pid" 2>/dev/null || true)
    [[ -n $pid ]] && kill "$pid" 2>/dev/null || true
  done
  for port in $(ports); do
    for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 || break; sleep 0.1; done
  done
  rm -rf "$CLUSTER_DIR"
  say "stopped"
}

case ${1:-start} in
  start) start ;;
  stop) stop ;;
  status) redis-cli -p "$BASE_PORT" cluster nodes ;;
  *) die "usage: scripts/cluster.sh start|stop|status" ;;
esac
