#!/usr/bin/env bash
# Load benchmark of the history endpoints (executions and analytics) of rules-api
# (release build) on a grown database: EXECUTIONS executions (default 50,000,000)
# of RULES rules spread over the last DAYS days (default 90, so 90 daily partitions),
# generated directly in PostgreSQL, and their analytics counters: quarter hours for
# the days older than 8 days (and their day rows), minutes for the last 8, of which the oldest day is then
# rolled up into quarter hours by the roll-up itself, timed (a day's worth; the
# workers run it hourly, an hour's worth). Each request kind is driven by wrk for
# DURATION seconds over CONNECTIONS connections; prints requests/s and the latency
# distribution. Uses its own database (rules_bench_history), dropped at the end
# (KEEP=1 keeps it; REUSE=1 measures again on a kept one, without generating;
# REUSE=1 RECOUNT=1 writes its counters again first).
# Each kind is run twice: first on the caches as generation left them (cold: the
# rule's index pages are read from disk, one descent per partition), then again
# (warm: what a dashboard polling its rules sees).
set -euo pipefail
cd "$(dirname "$0")/.."

EXECUTIONS=${EXECUTIONS:-50000000}
DAYS=${DAYS:-90}
RULES=${RULES:-10000}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-4}
PORT=${PORT:-18094}
ADMIN_URL=${ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
BENCH_DB=rules_bench_history
BENCH_URL=${ADMIN_URL%/*}/$BENCH_DB
KEY=bench-key-0123456789abcdef
WORK=$(mktemp -d)
TARGET=${CARGO_TARGET_DIR:-target}

scripts/services.sh >/dev/null
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p rules-api -p rules-migrate

cleanup() {
  [[ -n ${api:-} ]] && { kill -TERM "$api" 2>/dev/null; wait "$api" 2>/dev/null || true; }
  [[ ${KEEP:-0} == 1 ]] || psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)"
  rm -rf "$WORK"
}
trap cleanup EXIT
seconds() { local t0=$1; echo "$(( $(date +%s) - t0 ))"; }

generate() {
psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" -qc "CREATE DATABASE $BENCH_DB"
DATABASE_URL=$BENCH_URL "$TARGET/release/rules-migrate" >/dev/null

t0=$(date +%s)
psql "$BENCH_URL" -q -v ON_ERROR_STOP=1 <<SQL
ALTER TABLE rules DISABLE TRIGGER rules_notify_change;
INSERT INTO rules (id, livestream_id, name, trigger_config, actions, cooldown_seconds, created_at, updated_at)
SELECT md5('rule' || i)::uuid, md5('ls' || (i % 1000))::uuid, 'rule ' || i,
       '{"event_types": ["donation.received"]}', '[{"type": "log", "message": "hi"}]', 0, now(), now()
FROM generate_series(1, $RULES) AS i;
ALTER TABLE rules ENABLE TRIGGER rules_notify_change;
-- The partitions of the last $DAYS days and tomorrow, none dropped.
SELECT count(*) FROM rules_maintain_log($DAYS + 30, $DAYS + 2, current_date - $DAYS - 1);
SQL
echo "seeded $RULES rules and $(psql "$BENCH_URL" -Atc "SELECT count(*) FROM pg_inherits WHERE inhparent = 'rule_executions'::regclass") partitions of rule_executions in $(seconds "$t0")s"

t0=$(date +%s)
left=$EXECUTIONS
while (( left > 0 )); do
  chunk=$(( left < 1000000 ? left : 1000000 ))
  # One execution in 20 failed; times spread evenly over the last $DAYS days.
  psql "$BENCH_URL" -q -v ON_ERROR_STOP=1 <<SQL
WITH r AS (SELECT array_agg(id ORDER BY id) AS ids, array_agg(livestream_id ORDER BY id) AS ls, count(*)::int AS n FROM rules),
grown AS (
  SELECT gen_random_uuid() AS id, r.ids[1 + g % r.n] AS rule_id, gen_random_uuid() AS event_id,
         r.ls[1 + g % r.n] AS livestream_id, t.at AS executed_at,
         CASE WHEN g % 20 = 0 THEN 'failed' ELSE 'succeeded' END AS status, 1 + g % 50 AS duration_ms,
         '{"actions": [{"type": "log", "status": "succeeded", "duration_ms": 1}]}'::jsonb AS result,
         (t.at AT TIME ZONE 'UTC')::date AS event_day
  FROM generate_series($left - $chunk + 1, $left) AS g, r,
       LATERAL (SELECT now() - (g::bigint * $DAYS * 86400 / $EXECUTIONS) * interval '1 second' AS at) AS t
), keys AS (
  -- The decision memory of each (as the recorder writes both: migration 000012).
  INSERT INTO rule_execution_keys (rule_id, event_id, event_day, execution_id)
  SELECT rule_id, event_id, event_day, id FROM grown
)
INSERT INTO rule_executions (id, rule_id, event_id, livestream_id, executed_at, status, duration_ms, result, event_day)
SELECT * FROM grown;
SQL
  left=$(( left - chunk ))
done
echo "wrote $EXECUTIONS executions over $DAYS days in $(seconds "$t0")s"
}

# The counters of the executions, as the recorder and the hourly roll-up leave
# them: per quarter hour before the last 8 days, per minute in them; and in the
# order they write them (the recorder minute after minute, the roll-up a day at a
# time, its rules in order, and the minutes of each ended day again in key order),
# so that each table's rows lie by time as the service's do (the roll-up's expiry
# and the minutes' move read them by time) and a rule's rows of a day together.
count() {
t0=$(date +%s)
# The duration histogram of a group of executions, as the recorder counts it
# (rules_store::db::stats::DURATION_BUCKETS_MS: bucket i holds the durations up to
# its bound, above the bound before it; the last one the rest), and the element-wise
# sum of a group of histograms.
local bounds=(0 1 2 5 10 20 50 100 200 500 1000 2000 5000 10000 20000 30000) histogram=() summed=()
for i in $(seq 1 15); do
  histogram+=("count(*) FILTER (WHERE duration_ms > ${bounds[i-1]} AND duration_ms <= ${bounds[i]})")
done
histogram+=("count(*) FILTER (WHERE duration_ms > 30000)")
for i in $(seq 1 16); do summed+=("sum(duration_histogram[$i])"); done
psql "$BENCH_URL" -q -v ON_ERROR_STOP=1 -v histogram="ARRAY[$(IFS=,; echo "${histogram[*]}")]" \
  -v summed="ARRAY[$(IFS=,; echo "${summed[*]}")]::int8[]" <<'SQL'
TRUNCATE rule_stats_minute, rule_stats_quarter, rule_stats_day;
INSERT INTO rule_stats_quarter (rule_id, bucket_start, matched, executed, succeeded, failed, duration_ms_sum, duration_histogram, last_executed_at)
SELECT rule_id, date_bin('15 minutes', executed_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS b, count(*), count(*),
       count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status = 'failed'), sum(duration_ms), :histogram,
       max(executed_at)
FROM rule_executions WHERE executed_at < now() - interval '8 days' GROUP BY 1, 2
ORDER BY date_bin('1 day', date_bin('15 minutes', executed_at, TIMESTAMPTZ '2000-01-01 00:00:00+00'), TIMESTAMPTZ '2000-01-01 00:00:00+00'), 1, 2;
-- The quarter hours' day rows, as the roll-up writes them beside the quarter hours (migration 000013).
INSERT INTO rule_stats_day (rule_id, bucket_start, matched, executed, succeeded, failed, duration_ms_sum, duration_histogram, last_executed_at)
SELECT rule_id, date_bin('1 day', bucket_start, TIMESTAMPTZ '2000-01-01 00:00:00+00'), sum(matched), sum(executed),
       sum(succeeded), sum(failed), sum(duration_ms_sum), :summed, max(last_executed_at)
FROM rule_stats_quarter GROUP BY 1, 2 ORDER BY 2, 1;
-- The minutes: of the days that ended an hour ago, a day at a time in key order, as
-- the roll-up leaves them (migration 000018); of the rest, minute after minute.
CREATE TEMP TABLE ended AS SELECT date_bin('1 day', now() - interval '1 hour', TIMESTAMPTZ '2000-01-01 00:00:00+00') AS at;
INSERT INTO rule_stats_minute (rule_id, bucket_start, matched, executed, succeeded, failed, duration_ms_sum, duration_histogram, last_executed_at)
SELECT rule_id, date_trunc('minute', executed_at), count(*), count(*), count(*) FILTER (WHERE status = 'succeeded'),
       count(*) FILTER (WHERE status = 'failed'), sum(duration_ms), :histogram, max(executed_at)
FROM rule_executions WHERE executed_at >= now() - interval '8 days' GROUP BY 1, 2
ORDER BY CASE WHEN date_trunc('minute', executed_at) < (SELECT at FROM ended)
              THEN date_bin('1 day', date_trunc('minute', executed_at), TIMESTAMPTZ '2000-01-01 00:00:00+00') END,
         CASE WHEN date_trunc('minute', executed_at) < (SELECT at FROM ended) THEN rule_id END, 2, 1;
INSERT INTO rule_stats_minute_sorted (through) SELECT at FROM ended
ON CONFLICT (only_row) DO UPDATE SET through = excluded.through;
SQL
echo "counted them into $(psql "$BENCH_URL" -Atc "SELECT count(*) FROM rule_stats_quarter") quarter hours and $(psql "$BENCH_URL" -Atc "SELECT count(*) FROM rule_stats_minute") minutes in $(seconds "$t0")s"
t0=$(date +%s)
rolled=$(psql "$BENCH_URL" -Atc "SELECT minutes_rolled_up FROM rules_roll_up_stats(7, 400)")
echo "the roll-up moved $rolled minute rows (the day older than 7 days) into quarter hours in $(seconds "$t0")s"
psql "$BENCH_URL" -qc "VACUUM ANALYZE"
}

if [[ ${REUSE:-0} == 1 ]]; then
  echo "measuring again on the kept $BENCH_DB"
  DATABASE_URL=$BENCH_URL "$TARGET/release/rules-migrate" >/dev/null
  # RECOUNT=1: its counters written again (as this version of the script writes them).
  [[ ${RECOUNT:-0} == 1 ]] && count
else
  generate
  count
fi
psql "$BENCH_URL" -Atc "SELECT 'database size: ' || pg_size_pretty(pg_database_size(current_database()))"

psql "$BENCH_URL" -Atc "SELECT '\"' || id || '\",' FROM rules ORDER BY random() LIMIT 2000" | { echo 'return {'; cat; echo '}'; } > "$WORK/ids.lua"
since() { date -u -d "$1 days ago" +%Y-%m-%dT%H:%M:%SZ; }
declare -A QUERY=(
  [executions]="/executions?limit=50"
  [executions_failed]="/executions?limit=50&status=failed"
  [executions_a_month_back]="/executions?limit=50&to=$(since 30)"
  [analytics_24h_hours]="/analytics"
  [analytics_7d_hours]="/analytics?from=$(since 7)&bucket=hour&tz=Asia/Kolkata"
  [analytics_90d_days]="/analytics?from=$(since 90)&bucket=day&tz=Europe/Berlin"
)
for name in "${!QUERY[@]}"; do
  cat > "$WORK/$name.lua" <<LUA
local ids = dofile("$WORK/ids.lua")
wrk.headers["Authorization"] = "Bearer $KEY"
request = function() return wrk.format("GET", "/api/rules/" .. ids[math.random(#ids)] .. "${QUERY[$name]}") end
LUA
done

# The API's pool at the database's cores and one (POOL_SIZE=3 on this 2-core
# machine): more connections than PostgreSQL runs at once move the requests'
# queue from the pool (first come, first served) into the kernel's scheduler,
# which serves it by time slices (the 90-day analytics at four connections: p99
# 9.8-11.7 ms with 8 connections, 7.5-9.0 with 2-3; README, History endpoints).
echo "rules-api with database.pool_size ${POOL_SIZE:-3}"
DATABASE_URL=$BENCH_URL RULES_API_KEYS=$KEY RULES__API__BIND=127.0.0.1:$PORT RULES__LOG__FILTER=warn \
  RULES__DATABASE__POOL_SIZE=${POOL_SIZE:-3} "$TARGET/release/rules-api" > "$WORK/api.log" 2>&1 &
api=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/health/live" >/dev/null && break; sleep 0.1; done

# wrk runs a thread per connection up to two (it needs a connection per thread).
THREADS=$(( CONNECTIONS < 2 ? CONNECTIONS : 2 ))
for round in cold warm; do
  for name in executions executions_failed executions_a_month_back analytics_24h_hours analytics_7d_hours analytics_90d_days; do
    echo "== $round: $name (GET /api/rules/{id}${QUERY[$name]}): wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$WORK/$name.lua" "http://127.0.0.1:$PORT" \
      | grep -E 'Requests/sec|50%|90%|99%|Non-2xx|Socket errors'
  done
done
