#!/usr/bin/env bash
# Run by scripts/fresh-check.sh inside the fresh root, as a new user would:
# `make run`, the README's quick tour against it, then `make test`. Not for the host.
set -euo pipefail
SCRIPT_NAME=fresh-check
cd /root/rule-engine
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
[[ -f /.fresh-check-base ]] || die "this runs inside the root scripts/fresh-check.sh builds"

elapsed() { echo $(($(date +%s) - $1)); }
ready() { (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && [[ $(</tmp/run.log) == *"rule-engine is running"* ]]; }

say "make run"
start=$(date +%s)
setsid make run >/tmp/run.log 2>&1 </dev/null &
run=$!
until ready 8003; do
  if ! kill -0 "$run" 2>/dev/null; then
    tail -n 40 /tmp/run.log >&2
    die "make run exited before the API and the worker were ready"
  fi
  (($(elapsed "$start") < 3600)) || die "make run was not ready within an hour"
  sleep 2
done
run_seconds=$(elapsed "$start")
sed -n '/rule-engine is running/,/Ctrl-C/p' /tmp/run.log
say "make run: ready after ${run_seconds} s (cold build included)"

python3 scripts/check_tour.py
kill -TERM -- "-$run"
wait "$run" || true
grep -q 'error' <(tail -n 5 /tmp/run.log) && tail -n 5 /tmp/run.log >&2

say "make test"
start=$(date +%s)
make test
test_seconds=$(elapsed "$start")
say "passed: make run ready after ${run_seconds} s, make test took ${test_seconds} s (cold builds, $(nproc) cores)"
