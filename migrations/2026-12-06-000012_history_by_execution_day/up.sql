-- The execution history partitioned by the day it was *executed*, and the memory of
-- which (rule, event) pairs executed in a narrow table of its own, partitioned by
-- the event's day as before.
--
-- Until now one table was both: `rule_executions`, partitioned by the event's day
-- because its unique key (rule_id, event_id, event_day) is the exactly-once memory,
-- and only the event's day is the same for every delivery. The history endpoint
-- reads a rule's newest executions (`ORDER BY executed_at DESC, id DESC LIMIT 50`),
-- and nothing bounds the execution time by the event's day (a replay executes
-- week-old events today; an entry with an explicit future id carries its event into
-- a future day), so PostgreSQL had to start a scan in every partition (a Merge
-- Append over 90+ partitions) for every page: 100–200 ms at the p99 on a log of
-- 50,000,000 executions. Partitioned by execution time, the partitions are ordered
-- like the pages, and the same query is an ordered Append that reads the newest
-- partition or two and stops.
--
--   rule_execution_keys (rule_id, event_id, event_day, execution_id)
--       by event_day; the unique key (event_id, rule_id, event_day) that
--       `rules_decided` probes and the recorder's ON CONFLICT infers. A pair is
--       inserted here first; only the pairs that were new go on to the history.
--   rule_executions (the same columns as before)
--       by executed_at, one partition per UTC day; indexed for a rule's pages,
--       and for its rarer statuses by a partial index.
--
-- The rows recorded before this migration are not copied: the old table (itself
-- partitioned by event day) becomes one partition of the new history,
-- `rule_executions_by_event_day`, covering every execution time before the
-- migration's (a partition of a partitioned table may be partitioned by another
-- key), and is dropped whole when retention passes its end. Its keys are copied
-- into rule_execution_keys (one read of the old table; partitions with the same
-- bounds, the legacy day 1970-01-01 included), so every decision recorded before
-- stays recognised for as long as before. Attaching it reads it once more, to check
-- the bound.
--
-- Not additive: a worker of the previous version cannot record on this schema (its
-- ON CONFLICT names a key the history no longer has), so its batches fail and stay
-- pending until the new workers take them over. Deploy it with the workers scaled
-- to zero, or roll them out right after (as for 000007).

-- A time-range partition's bounds (`FOR VALUES FROM ('2026-12-06 00:00:00+00') TO
-- (...)`, rendered with its offset, so the cast is exact in any TimeZone).
CREATE FUNCTION rules_partition_times(partition regclass, OUT lower_at timestamptz, OUT upper_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(m[1], 'MINVALUE'), '-infinity')::timestamptz,
           coalesce(nullif(m[2], 'MAXVALUE'), 'infinity')::timestamptz
    FROM pg_class c,
         regexp_match(pg_get_expr(c.relpartbound, c.oid),
                      'FROM \((?:''([^'']+)''|(MINVALUE))\) TO \((?:''([^'']+)''|(MAXVALUE))\)') AS r,
         LATERAL (SELECT ARRAY[coalesce(r[1], r[2]), coalesce(r[3], r[4])]) AS x(m)
    WHERE c.oid = partition
$$;

-- The old table and everything under it renamed out of the way of the new names.
DO $$
DECLARE
    p record;
BEGIN
    ALTER TABLE rule_executions RENAME TO rule_executions_by_event_day;
    ALTER INDEX rule_executions_key RENAME TO rule_executions_by_event_day_key;
    ALTER INDEX rule_executions_rule_time_idx RENAME TO rule_executions_by_event_day_rule_time_idx;
    FOR p IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'rule_executions_by_event_day'::regclass
    LOOP
        EXECUTE format('ALTER TABLE %I RENAME TO %I', p.relname,
                       'rule_executions_by_event_day' || substr(p.relname, length('rule_executions') + 1));
    END LOOP;
END
$$;

CREATE TABLE rule_execution_keys (
    rule_id      UUID NOT NULL,
    event_id     UUID NOT NULL,
    event_day    DATE NOT NULL,
    execution_id UUID NOT NULL
) PARTITION BY RANGE (event_day);

-- The old table's days (and legacy partition), then its keys; the unique key is
-- built once over what was copied.
DO $$
DECLARE
    p record;
BEGIN
    FOR p IN
        SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'rule_executions_by_event_day'::regclass
    LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF rule_execution_keys %s',
                       'rule_execution_keys' || substr(p.relname, length('rule_executions_by_event_day') + 1),
                       p.bound);
    END LOOP;
END
$$;
INSERT INTO rule_execution_keys (rule_id, event_id, event_day, execution_id)
    SELECT rule_id, event_id, event_day, id FROM rule_executions_by_event_day;
CREATE UNIQUE INDEX rule_execution_keys_key ON rule_execution_keys (event_id, rule_id, event_day);

CREATE TABLE rule_executions (LIKE rule_executions_by_event_day INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (executed_at);

-- The old rows become the partition of every time before the migration's (or
-- after the newest one recorded, should a worker's clock have run ahead); with none,
-- the old table goes.
DO $$
DECLARE
    newest timestamptz;
BEGIN
    SELECT max(executed_at) INTO newest FROM rule_executions_by_event_day;
    IF newest IS NULL THEN
        DROP TABLE rule_executions_by_event_day;
    ELSE
        EXECUTE format('ALTER TABLE rule_executions ATTACH PARTITION rule_executions_by_event_day '
                       'FOR VALUES FROM (MINVALUE) TO (%L)',
                       greatest(now(), newest + interval '1 microsecond'));
    END IF;
END
$$;

-- A rule's pages (the old table's index is attached, not built again), and its
-- pages of one of the rarer statuses (`?status=failed`, `skipped`): the lister
-- states `status <> 'succeeded'` as a literal, so a generic plan can use it too.
CREATE INDEX rule_executions_rule_time_idx ON rule_executions (rule_id, executed_at DESC, id DESC);
CREATE INDEX rule_executions_rule_rare_status_idx ON rule_executions (rule_id, status, executed_at DESC, id DESC)
    WHERE status <> 'succeeded';

-- The days a batch needs, for every table: the decision memory's event days, and
-- the history's days (the same dates as UTC days of execution time; a batch's
-- executed days are today's, an older event day's history partition is made empty
-- and dropped by retention like any other). A history day that a partition covers
-- in part (the old table's partition ends at the migration's time) is made from
-- where that one ends.
CREATE OR REPLACE FUNCTION rules_make_log_days(days date[])
RETURNS TABLE (action text, partition_name text)
LANGUAGE plpgsql AS $$
DECLARE
    parent text;
    day date;
    name text;
    from_at timestamptz;
    to_at timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(7462150923508113);
    FOREACH parent IN ARRAY ARRAY['rule_execution_keys', 'rule_suppressions', 'rule_threshold_counts'] LOOP
        FOR day IN SELECT DISTINCT d FROM unnest(days) AS d WHERE d IS NOT NULL ORDER BY d LOOP
            CONTINUE WHEN EXISTS (
                SELECT 1 FROM pg_inherits i, rules_partition_bounds(i.inhrelid) b
                WHERE i.inhparent = parent::regclass AND b.lower_day <= day AND day < b.upper_day);
            name := parent || '_' || to_char(day, 'YYYYMMDD');
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                           name, parent, day, day + 1);
            action := 'created'; partition_name := name; RETURN NEXT;
        END LOOP;
    END LOOP;
    FOR day IN SELECT DISTINCT d FROM unnest(days) AS d WHERE d IS NOT NULL ORDER BY d LOOP
        from_at := day::timestamp AT TIME ZONE 'UTC';
        to_at := (day + 1)::timestamp AT TIME ZONE 'UTC';
        -- Start where a partition covering the day's start ends; stop where the
        -- first partition starting inside the day begins.
        SELECT greatest(from_at, max(b.upper_at)) INTO from_at
        FROM pg_inherits i, rules_partition_times(i.inhrelid) b
        WHERE i.inhparent = 'rule_executions'::regclass AND b.lower_at <= from_at AND from_at < b.upper_at;
        SELECT least(to_at, min(b.lower_at)) INTO to_at
        FROM pg_inherits i, rules_partition_times(i.inhrelid) b
        WHERE i.inhparent = 'rule_executions'::regclass AND from_at < b.lower_at AND b.lower_at < to_at;
        CONTINUE WHEN from_at >= to_at;
        name := 'rule_executions_' || to_char(day, 'YYYYMMDD');
        EXECUTE format('CREATE TABLE %I PARTITION OF rule_executions FOR VALUES FROM (%L) TO (%L)',
                       name, from_at, to_at);
        action := 'created'; partition_name := name; RETURN NEXT;
    END LOOP;
END
$$;

-- Retention drops the memory's days older than `retention_days` before today and
-- the history's partitions that end before that day's start (UTC).
CREATE OR REPLACE FUNCTION rules_maintain_log(
    retention_days int,
    days_ahead int,
    today date DEFAULT (now() AT TIME ZONE 'UTC')::date
)
RETURNS TABLE (action text, partition_name text)
LANGUAGE plpgsql AS $$
DECLARE
    parent text;
    p record;
BEGIN
    IF retention_days < 1 OR days_ahead < 1 THEN
        RAISE EXCEPTION 'retention_days and days_ahead must be at least 1';
    END IF;
    PERFORM pg_advisory_xact_lock(7462150923508113);
    FOREACH parent IN ARRAY ARRAY['rule_execution_keys', 'rule_suppressions', 'rule_threshold_counts'] LOOP
        FOR p IN
            SELECT i.inhrelid::regclass AS part
            FROM pg_inherits i, rules_partition_bounds(i.inhrelid) b
            WHERE i.inhparent = parent::regclass AND b.upper_day <= today - retention_days
        LOOP
            partition_name := p.part::text;
            EXECUTE format('DROP TABLE %s', p.part);
            action := 'dropped'; RETURN NEXT;
        END LOOP;
    END LOOP;
    FOR p IN
        SELECT i.inhrelid::regclass AS part
        FROM pg_inherits i, rules_partition_times(i.inhrelid) b
        WHERE i.inhparent = 'rule_executions'::regclass
          AND b.upper_at <= (today - retention_days)::timestamp AT TIME ZONE 'UTC'
    LOOP
        partition_name := p.part::text;
        EXECUTE format('DROP TABLE %s', p.part);
        action := 'dropped'; RETURN NEXT;
    END LOOP;
    RETURN QUERY SELECT m.action, m.partition_name FROM rules_make_log_days(ARRAY(
        SELECT generate_series(today - 1, today + days_ahead, interval '1 day')::date)) AS m;
END
$$;

-- The lookup of recorded decisions (000009's), the executions' memory now read from
-- rule_execution_keys.
CREATE OR REPLACE FUNCTION rules_decided(rule_ids uuid[], event_ids uuid[], days date[])
RETURNS TABLE (rule_id uuid, event_id uuid)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET enable_hashjoin = off
SET enable_mergejoin = off
SET enable_seqscan = off
SET enable_bitmapscan = off
AS $$
#variable_conflict use_column
DECLARE
    day date;
BEGIN
    FOR day IN SELECT DISTINCT d FROM unnest(days) AS d LOOP
        RETURN QUERY
            SELECT t.rule_id, t.event_id
            FROM unnest(rule_ids, event_ids, days) AS p(r, e, d)
            JOIN rule_execution_keys t
              ON t.event_id = p.e AND t.event_day = day AND t.rule_id IS NOT DISTINCT FROM p.r
            WHERE p.d = day
            UNION ALL
            SELECT t.rule_id, t.event_id
            FROM unnest(rule_ids, event_ids, days) AS p(r, e, d)
            JOIN rule_suppressions t ON t.rule_id = p.r AND t.event_id = p.e AND t.event_day = day
            WHERE p.d = day
            UNION ALL
            SELECT t.rule_id, t.event_id
            FROM unnest(rule_ids, event_ids, days) AS p(r, e, d)
            JOIN rule_threshold_counts t ON t.rule_id = p.r AND t.event_id = p.e AND t.event_day = day
            WHERE p.d = day;
    END LOOP;
    RETURN QUERY
        SELECT t.rule_id, t.event_id
        FROM unnest(rule_ids, event_ids) AS p(r, e)
        JOIN rule_execution_keys t
          ON t.event_id = p.e AND t.event_day = DATE '1970-01-01' AND t.rule_id IS NOT DISTINCT FROM p.r
        UNION ALL
        SELECT t.rule_id, t.event_id
        FROM unnest(rule_ids, event_ids) AS p(r, e)
        JOIN rule_suppressions t ON t.rule_id = p.r AND t.event_id = p.e AND t.event_day = DATE '1970-01-01'
        UNION ALL
        SELECT t.rule_id, t.event_id
        FROM unnest(rule_ids, event_ids) AS p(r, e)
        JOIN rule_threshold_counts t ON t.rule_id = p.r AND t.event_id = p.e AND t.event_day = DATE '1970-01-01';
END
$$;

-- The days around today exist from the start (made only: what retention drops is
-- the workers' and `rules-migrate maintain`'s call, with the configured days).
SELECT rules_make_log_days(ARRAY(
    SELECT generate_series((now() AT TIME ZONE 'UTC')::date - 1, (now() AT TIME ZONE 'UTC')::date + 7,
                           interval '1 day')::date));
