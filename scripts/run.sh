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
API_PORT=${RULES__API__BIND:-0.0.0.0:8003}; API_PORT=${API_PORT##*:}
WORKER_PORT=${RULES__WORKER__HTTP_BIND:-0.0.0.0:9003}; WORKER_PORT=${WORKER_PORT##*:}

"$BIN/rules-api" & api=$!
"$BIN/rules-worker" & worker=$!

stop() { kill -TERM "$api" "$worker" 2>/dev/null || true; wait "$api" "$worker" 2>/dev/null || true; }
trap stop EXIT
trap 'exit 0' INT TERM

# The banner says what the running processes report, once both are ready.
worker_ready=
for _ in $(seq 1 300); do
  kill -0 "$api" 2>/dev/null && kill -0 "$worker" 2>/dev/null || break
  if curl -fs "http://127.0.0.1:$API_PORT/health/ready" >/dev/null &&
    worker_ready=$(curl -fs "http://127.0.0.1:$WORKER_PORT/health/ready"); then
    break
  fi
  sleep 0.1
done
if [[ -n $worker_ready ]]; then
  reading=$(python3 -c 'import json, sys
r = json.load(sys.stdin)
streams = ", ".join(repr(s) for s in r["streams"])
group, loaded = r["group"], r["rules_loaded"]
print(f"reading {streams} as group {group!r}, {loaded} rules loaded")' <<<"$worker_ready")
  cat <<MSG

  rule-engine is running
    API      http://127.0.0.1:$API_PORT   (tour: README.md, "Quick tour"; API docs: http://127.0.0.1:$API_PORT/docs/)
    console  http://127.0.0.1:$API_PORT/console/   (sign in with the dev API key)
    worker   $reading   (health: http://127.0.0.1:$WORKER_PORT/health/ready)
    dev API key: $RULES_API_KEYS

    curl -H "Authorization: Bearer $RULES_API_KEYS" http://127.0.0.1:$API_PORT/api/rules

  Ctrl-C stops both.

MSG
else
  echo "run: the API or the worker did not become ready within 30 s; their logs above say why" >&2
fi

# If either process exits, stop the other and report its status.
set +e
wait -n "$api" "$worker"
status=$?
stop
exit "$status"
