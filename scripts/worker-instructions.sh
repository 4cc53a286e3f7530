#!/usr/bin/env bash
# The worker's instructions per event in a drain, counted by valgrind's callgrind:
# the same count for the same build and workload whatever else the machine is doing,
# where events/s and CPU µs per event move by ±10–30% from run to run on a shared
# 2-core machine. Two drains of the generated workload (SMALL and LARGE events,
# default 20,000 and 80,000), each with the worker under callgrind; the difference of
# their counts over the difference of their events is the per-event cost, start-up
# (loading and compiling the rules) cancelling out. Repeat runs of one build agree
# within about 1%. Where the instructions go: KEEP=DIR keeps the two profiles for
# callgrind_annotate (run it outside the source tree: inside, it splits a function's
# lines by source file differently).
#
# The worker's clock-driven tasks (heartbeat, claim loop, rule reconcile) are set far
# apart: under callgrind a drain takes ~50× as long, and they would weigh ~50× what
# they weigh per event at full speed.
#
# Needs valgrind (installed with apt-get when absent), the release rules-bench and rules-worker
# (WORKER_BIN: another worker binary, to compare builds), PostgreSQL and Redis as
# `rules-bench drain` does. FIRE_RATE=F makes that share of the events fire (`drain
# --fire-rate`).
set -euo pipefail
SCRIPT_NAME=worker-instructions
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

target=${CARGO_TARGET_DIR:-target}
bench=$target/release/rules-bench
worker=$(realpath "${WORKER_BIN:-$target/release/rules-worker}")
small=${SMALL:-20000}
large=${LARGE:-80000}
command -v callgrind_annotate >/dev/null || apt_install "${PROFILE_PACKAGES[@]}"
[[ -x $bench ]] || die "$bench not found: cargo build --release -p rules-bench -p rules-worker"
[[ -x $worker ]] || die "$worker not found"
((large > small)) || die "LARGE ($large) must be more than SMALL ($small)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/worker" <<EOF
#!/bin/sh
export RULES__WORKER__CLAIM_IDLE_MS=600000 RULES__WORKER__CLAIM_INTERVAL_MS=600000
export RULES__WORKER__RECONCILE_SECONDS=3600 RULES__WORKER__DEDUPE_SECONDS=86400
exec valgrind --tool=callgrind --dump-instr=no --callgrind-out-file="$work/callgrind.\$\$" "$worker" "\$@"
EOF
chmod +x "$work/worker"

# One drain of $1 events with the worker under callgrind; its profile as $work/$1.out.
profile() {
  rm -f "$work"/callgrind.*
  if ! "$bench" drain --event-count "$1" ${FIRE_RATE:+--fire-rate "$FIRE_RATE"} \
    --worker-bin "$work/worker" >"$work/$1.log" 2>&1; then
    cat "$work/$1.log" >&2
    die "the drain of $1 events failed"
  fi
  mv "$work"/callgrind.* "$work/$1.out"
}

say "worker: $worker; drains of $small and $large events under callgrind (a few minutes)"
profile "$small"
profile "$large"
total() { awk '/^summary:|^totals:/ { print $2; exit }' "$1"; }
per_event() { echo $(( ($2 - $1) / (large - small) )); }
say "instructions per event: $(per_event "$(total "$work/$small.out")" "$(total "$work/$large.out")")"

if [[ -n ${KEEP:-} ]]; then
  mkdir -p "$KEEP"
  cp "$work/$small.out" "$work/$large.out" "$KEEP/"
  say "profiles kept in $KEEP (callgrind_annotate --inclusive=yes $KEEP/$large.out)"
fi
