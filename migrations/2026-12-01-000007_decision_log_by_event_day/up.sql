-- The gate's durable memory (rule_executions, rule_suppressions,
-- rule_threshold_counts) partitioned by day, so retention drops a day's partition
-- (O(1)) instead of deleting rows, and the day being written keeps its indexes small.
--
-- The partition key is the day of the *event* (its time on the gate's clock,
-- rules_core::clock, UTC), not of the decision: a unique key on a partitioned table
-- must include the partition key, and only the event's day is the same for every
-- delivery of the event (a redelivery, a takeover, a replay of the stream from `0`),
-- so (rule_id, event_id, event_day) still recognises a decision however late it
-- comes, for as long as its day is kept (retention.executions_days).
--
-- The rows already recorded become one partition, `<table>_legacy`, covering the
-- days before the migration's, with event_day 1970-01-01 (their event's day was not
-- recorded): the worker's lookup probes that day too, so a pre-migration decision
-- stays recognised until retention drops the legacy partition whole. Adding the
-- column rewrites nothing (a constant default); one unique index is built per
-- table. A table with no rows yet keeps no legacy partition (a fresh install).
--
-- Not additive: a worker of the previous version cannot record on this schema (its
-- ON CONFLICT names the old key), so its batches fail and stay pending until the new
-- workers take them over. Deploy it with the workers scaled to zero, or roll them
-- out right after (the README's "Upgrading to the partitioned decision log").

CREATE FUNCTION rules_partition_bounds(partition regclass, OUT lower_day date, OUT upper_day date)
LANGUAGE sql STABLE AS $$
    -- `FOR VALUES FROM ('2026-12-01') TO ('2026-12-02')`, MINVALUE as -infinity.
    SELECT coalesce(nullif(m[1], 'MINVALUE'), '-infinity')::date,
           coalesce(nullif(m[2], 'MAXVALUE'), 'infinity')::date
    FROM pg_class c,
         regexp_match(pg_get_expr(c.relpartbound, c.oid),
                      'FROM \((?:''([^'']+)''|(MINVALUE))\) TO \((?:''([^'']+)''|(MAXVALUE))\)') AS r,
         LATERAL (SELECT ARRAY[coalesce(r[1], r[2]), coalesce(r[3], r[4])]) AS x(m)
    WHERE c.oid = partition
$$;

-- Creates the partitions of the days from yesterday to `days_ahead` days ahead that
-- no partition covers yet, and drops the partitions whose every day is older than
-- `retention_days` before today (UTC; `today` is a parameter for tests). Returns
-- what it did, one row per partition. Safe to run from every worker at once (an
-- advisory lock serialises it).
CREATE FUNCTION rules_maintain_log(
    retention_days int,
    days_ahead int,
    today date DEFAULT (now() AT TIME ZONE 'UTC')::date
)
RETURNS TABLE (action text, partition_name text)
LANGUAGE plpgsql AS $$
DECLARE
    parent text;
    day date;
    name text;
    p record;
BEGIN
    IF retention_days < 1 OR days_ahead < 1 THEN
        RAISE EXCEPTION 'retention_days and days_ahead must be at least 1';
    END IF;
    PERFORM pg_advisory_xact_lock(7462150923508113);
    FOREACH parent IN ARRAY ARRAY['rule_executions', 'rule_suppressions', 'rule_threshold_counts'] LOOP
        FOR p IN
            SELECT i.inhrelid::regclass AS part, b.upper_day
            FROM pg_inherits i, rules_partition_bounds(i.inhrelid) b
            WHERE i.inhparent = parent::regclass AND b.upper_day <= today - retention_days
        LOOP
            partition_name := p.part::text;
            EXECUTE format('DROP TABLE %s', p.part);
            action := 'dropped'; RETURN NEXT;
        END LOOP;
        FOR day IN SELECT generate_series(today - 1, today + days_ahead, interval '1 day')::date LOOP
            CONTINUE WHEN EXISTS (
                SELECT 1 FROM pg_inherits i, rules_partition_bounds(i.inhrelid) b
                WHERE i.inhparent = parent::regclass AND b.lower_day <= day AND day < b.upper_day);
            name := parent || '_' || to_char(day, 'YYYYMMDD');
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                           name, parent, day, day + 1);
            action := 'created'; partition_name := name; RETURN NEXT;
        END LOOP;
    END LOOP;
END
$$;

DO $$
DECLARE
    t text;
    legacy text;
    today date := (now() AT TIME ZONE 'UTC')::date;
BEGIN
    FOREACH t IN ARRAY ARRAY['rule_executions', 'rule_suppressions', 'rule_threshold_counts'] LOOP
        legacy := t || '_legacy';
        EXECUTE format('ALTER TABLE %I RENAME TO %I', t, legacy);
        EXECUTE format('ALTER TABLE %I ADD COLUMN event_day date NOT NULL DEFAULT DATE ''1970-01-01''', legacy);
        EXECUTE format('ALTER TABLE %I ALTER COLUMN event_day DROP DEFAULT', legacy);
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (event_day)',
                       t, legacy);
        -- A valid CHECK matching the bound spares ATTACH its scan of the rows.
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (event_day < %L)', legacy, legacy || '_days', today);
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (MINVALUE) TO (%L)', t, legacy, today);
        EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', legacy, legacy || '_days');
    END LOOP;
END
$$;

-- The pair key becomes (rule_id, event_id, event_day), a unique index on each table
-- (built once over the legacy rows; ON CONFLICT infers it); the old keys go, and the
-- BRIN indexes that served a row-by-row retention. The tables are insert-only (no
-- update or delete ever runs on them: retention drops partitions), so replica
-- identity is left at its default. The executions' history index is attached to
-- the parent's, not built again.
ALTER TABLE rule_executions_legacy REPLICA IDENTITY DEFAULT;
ALTER TABLE rule_executions_legacy DROP CONSTRAINT rule_executions_rule_event_key;
DROP INDEX rule_executions_time_idx;
ALTER INDEX rule_executions_rule_time_idx RENAME TO rule_executions_legacy_rule_time_idx;
CREATE UNIQUE INDEX rule_executions_key ON rule_executions (rule_id, event_id, event_day);
CREATE INDEX rule_executions_rule_time_idx ON rule_executions (rule_id, executed_at DESC, id DESC);

ALTER TABLE rule_suppressions_legacy DROP CONSTRAINT rule_suppressions_pkey;
DROP INDEX rule_suppressions_time_idx;
CREATE UNIQUE INDEX rule_suppressions_key ON rule_suppressions (rule_id, event_id, event_day);

ALTER TABLE rule_threshold_counts_legacy DROP CONSTRAINT rule_threshold_counts_pkey;
DROP INDEX rule_threshold_counts_time_idx;
CREATE UNIQUE INDEX rule_threshold_counts_key ON rule_threshold_counts (rule_id, event_id, event_day);

DO $$
DECLARE
    t text;
    has_rows boolean;
BEGIN
    FOREACH t IN ARRAY ARRAY['rule_executions', 'rule_suppressions', 'rule_threshold_counts'] LOOP
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I)', t || '_legacy') INTO has_rows;
        IF NOT has_rows THEN
            EXECUTE format('DROP TABLE %I', t || '_legacy');
        END IF;
    END LOOP;
END
$$;

-- The days ahead exist from the start; the worker and `rules-migrate maintain` keep it so.
SELECT rules_maintain_log(30, 7);
