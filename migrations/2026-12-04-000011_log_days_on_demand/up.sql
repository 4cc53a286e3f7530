-- The decision log's partitions made for the days a batch needs, not only for the
-- days around today. `rules_maintain_log` makes yesterday to `days_ahead` ahead; an
-- entry can carry an older day that has no partition, though its day is within
-- retention: a stream written with explicit ids before the install (a replay, a
-- shard re-created), a day's partition dropped by hand, an outage longer than
-- the days made ahead. Its batch then failed with "no partition of relation" on
-- every retry, and the stream stalled behind it. The recorder now asks this
-- function for the days of the batch it could not record; the worker's parse step
-- dead-letters an entry whose day is outside retention (before today -
-- `retention.executions_days`) or after the days made ahead, so no day asked for
-- here is one maintenance would drop at once.

-- Creates, for each of the three tables, the partition of every day in `days` that
-- no partition covers yet (the legacy partition covers the days before migration
-- 000007). Returns what it made, one row per partition. Serialised with
-- `rules_maintain_log` by the same advisory lock.
CREATE FUNCTION rules_make_log_days(days date[])
RETURNS TABLE (action text, partition_name text)
LANGUAGE plpgsql AS $$
DECLARE
    parent text;
    day date;
    name text;
BEGIN
    PERFORM pg_advisory_xact_lock(7462150923508113);
    FOREACH parent IN ARRAY ARRAY['rule_executions', 'rule_suppressions', 'rule_threshold_counts'] LOOP
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
END
$$;

-- The same maintenance as before, its creating part now the function above (one
-- implementation of making a day).
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
    END LOOP;
    RETURN QUERY SELECT m.action, m.partition_name FROM rules_make_log_days(ARRAY(
        SELECT generate_series(today - 1, today + days_ahead, interval '1 day')::date)) AS m;
END
$$;
