#!/usr/bin/env bash
# Load benchmark of rules-api (release build) with 100,000 rules in the table.
# GET /api/rules/{id}, GET /api/rules?livestream_id=..., POST /api/rules, each for
# DURATION seconds with wrk over CONNECTIONS connections; prints requests/s and the
# latency distribution. Uses its own database (rules_bench), dropped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20}
CONNECTIONS=${CONNECTIONS:-16}
RULES=${RULES:-100000}
PORT=${PORT:-18093}
ADMIN_URL=${ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
BENCH_DB=rules_bench
BENCH_URL=${ADMIN_URL%/*}/$BENCH_DB
KEY=bench-key-0123456789abcdef
WORK=$(mktemp -d)
TARGET=${CARGO_TARGET_DIR:-target}

scripts/services.sh >/dev/null
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p rules-api -p rules-migrate

psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" -qc "CREATE DATABASE $BENCH_DB"
DATABASE_URL=$BENCH_URL "$TARGET/release/rules-migrate" >/dev/null
echo "seeding $RULES rules over 1000 livestreams"
psql "$BENCH_URL" -q <<SQL
ALTER TABLE rules DISABLE TRIGGER rules_notify_change;
INSERT INTO rules (id, livestream_id, name, trigger_config, actions, cooldown_seconds, cooldown_key, created_at, updated_at)
SELECT md5('rule' || i)::uuid,
       md5('ls' || (i % 1000))::uuid,
       'rule ' || i,
       jsonb_build_object('event_types', jsonb_build_array((ARRAY['chat.message','follow','donation.received','cheer'])[1 + i % 4]),
                          'condition', jsonb_build_object('field', 'data.amount', 'op', 'gte', 'value', i % 100)),
       jsonb_build_array(jsonb_build_object('type', 'publish', 'stream', 'overlay:alerts',
                          'payload', jsonb_build_object('text', '{{ event.data.user.name }} triggered rule ' || i))),
       30, 'data.user.id',
       now() - (i || ' seconds')::interval, now() - (i || ' seconds')::interval
FROM generate_series(1, $RULES) AS i;
ALTER TABLE rules ENABLE TRIGGER rules_notify_change;
ANALYZE rules;
SQL

# Request scripts: random ids and livestreams drawn from the seeded rows.
psql "$BENCH_URL" -Atc "SELECT '\"' || id || '\",' FROM rules ORDER BY random() LIMIT 2000" | { echo 'return {'; cat; echo '}'; } > "$WORK/ids.lua"
psql "$BENCH_URL" -Atc "SELECT DISTINCT '\"' || livestream_id || '\",' FROM rules" | { echo 'return {'; cat; echo '}'; } > "$WORK/livestreams.lua"
cat > "$WORK/get.lua" <<LUA
local ids = dofile("$WORK/ids.lua")
wrk.headers["Authorization"] = "Bearer $KEY"
request = function() return wrk.format("GET", "/api/rules/" .. ids[math.random(#ids)]) end
LUA
cat > "$WORK/list.lua" <<LUA
local ls = dofile("$WORK/livestreams.lua")
wrk.headers["Authorization"] = "Bearer $KEY"
request = function() return wrk.format("GET", "/api/rules?limit=50&livestream_id=" .. ls[math.random(#ls)]) end
LUA
cat > "$WORK/post.lua" <<LUA
local ls = dofile("$WORK/livestreams.lua")
wrk.headers["Authorization"] = "Bearer $KEY"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local body = '{"livestream_id":"' .. ls[math.random(#ls)] .. '","name":"bench","trigger_config":{"event_types":["follow"],' ..
    '"condition":{"field":"data.user.tier","op":"gte","value":2}},"actions":[{"type":"log","message":"{{ event.data.user.name }} followed"}]}'
  return wrk.format("POST", "/api/rules", nil, body)
end
LUA

DATABASE_URL=$BENCH_URL RULES_API_KEYS=$KEY RULES__API__BIND=127.0.0.1:$PORT RULES__LOG__FILTER=warn \
  RULES__DATABASE__POOL_SIZE=${POOL_SIZE:-16} "$TARGET/release/rules-api" > "$WORK/api.log" 2>&1 &
api=$!
trap 'kill -TERM $api 2>/dev/null; wait $api 2>/dev/null; psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)"; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/health/live" >/dev/null && break; sleep 0.1; done

for name in get list post; do
  echo "== $name: wrk -t2 -c$CONNECTIONS -d${DURATION}s"
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$WORK/$name.lua" "http://127.0.0.1:$PORT" \
    | grep -E 'Requests/sec|Latency|50%|75%|90%|99%|Non-2xx|Socket errors'
done
