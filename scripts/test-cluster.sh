#!/usr/bin/env bash
# The worker's and the API's end-to-end suites against a Redis Cluster (make
# test-cluster): starts one of its own with scripts/cluster.sh (three masters on free
# loopback ports, in a temporary directory), points the suites' shared Redis at it
# (TEST_REDIS_CLUSTER: the api and the workers they start get RULES__REDIS__CLUSTER),
# runs them, and stops it, whatever the outcome. Tests that start a Redis of their own
# (the fault tests) still use that server. tests/tests/redis_cluster.rs, which starts
# clusters of its own (slots, pipelines per slot, a failover and a slot migration
# during a drain), runs too.
#
#   CLUSTER_TESTS  the nextest filter of what runs (default: the suites below)
set -euo pipefail
SCRIPT_NAME=test-cluster
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
# Every suite of the worker and the API that talks to the shared Redis.
DEFAULT_TESTS='(package(rules-e2e) & (binary(worker) | binary(exactly_once) | binary(stalls) | binary(stream_corpus) | binary(binaries) | binary(decision_log) | binary(console) | binary(redis_cluster))) | package(rules-api)'
CLUSTER_TESTS=${CLUSTER_TESTS:-$DEFAULT_TESTS}

free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Three free ports (and their cluster bus ports, +10000); a start that still fails
# (a port taken between the check and the bind) is tried again on others.
start_cluster() {
  local candidate p ok
  for _ in $(seq 1 10); do
    # Below the kernel's ephemeral range (32768-), bus ports included.
    candidate=$(( 21000 + RANDOM % 1700 ))
    ok=1
    for p in $(seq "$candidate" $(( candidate + 2 ))); do
      free "$p" && free $(( p + 10000 )) || ok=
    done
    [[ -n $ok ]] || continue
    BASE_PORT=$candidate
    CLUSTER_DIR=$(mktemp -u "${TMPDIR:-/tmp}/rules-test-cluster.XXXXXX")
    export BASE_PORT CLUSTER_DIR MASTERS=3 REPLICAS=0
    scripts/cluster.sh start && return 0
    scripts/cluster.sh stop >/dev/null || true
  done
  die "no Redis Cluster could be started"
}
trap '[[ -n ${CLUSTER_DIR:-} ]] && scripts/cluster.sh stop >/dev/null || true' EXIT
start_cluster
base=$BASE_PORT
TEST_REDIS_CLUSTER=$(seq "$base" $(( base + 2 )) | sed 's|^|redis://127.0.0.1:|' | paste -sd,)
export TEST_REDIS_CLUSTER
say "the suites' shared Redis: the cluster at $TEST_REDIS_CLUSTER"
$CARGO nextest run --workspace --no-fail-fast -E "$CLUSTER_TESTS"
