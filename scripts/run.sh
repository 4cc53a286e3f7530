#!/usr/bin/env bash
# `make run`: the API and one worker in the foreground, with a development API key.
# Ctrl-C (or SIGTERM) stops both gracefully.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${CARGO_TARGET_DIR:-target}/debug
KEY_FILE=.dev-api-key
if [[ ! -s $KEY_FILE ]]; then
  od -An -N24 -tx1 /dev/urandom | tr -d ' \n' | sed 's/^/dev_/' > "$KEY_FILE"
fi
export RULES_API_KEYS=${RULES_API_KEYS:-$(cat "$KEY_FILE")}
PORT=${RULES__API__BIND:-0.0.0.0:8003}; PORT=${PORT##*:}

"$BIN/rules-api" & api=$!
"$BIN/rules-worker" & worker=$!

stop() { kill -TERM "$api" "$worker" 2>/dev/null || true; wait "$api" "$worker" 2>/dev/null || true; }
trap 'stop; exit 0' INT TERM

cat <<MSG

  rule-engine is running
    API     http://127.0.0.1:$PORT   (docs: README.md, "Quick tour")
    worker  reading stream 'events' as group 'rule-engine'
    dev API key: $RULES_API_KEYS

    curl -H "Authorization: Bearer $RULES_API_KEYS" http://127.0.0.1:$PORT/health/ready

  Ctrl-C stops both.

MSG

# If either process exits, stop the other and report its status.
set +e
wait -n "$api" "$worker"
status=$?
stop
exit "$status"
