-- Back to one table partitioned by the event's day: every execution (those of the
-- partition from before 000012 included) is copied into partitions with the bounds
-- of rule_execution_keys', then the two tables go and the functions are 000011's.
ALTER TABLE rule_executions RENAME TO rule_executions_by_execution_day;
CREATE TABLE rule_executions (LIKE rule_executions_by_execution_day INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (event_day);
DO $$
DECLARE
    p record;
BEGIN
    FOR p IN
        SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'rule_execution_keys'::regclass
    LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF rule_executions %s',
                       'rule_executions_back' || substr(p.relname, length('rule_execution_keys') + 1),
                       p.bound);
    END LOOP;
END
$$;
INSERT INTO rule_executions SELECT * FROM rule_executions_by_execution_day;
DROP TABLE rule_executions_by_execution_day;
DROP TABLE rule_execution_keys;
DO $$
DECLARE
    p record;
BEGIN
    FOR p IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'rule_executions'::regclass
    LOOP
        EXECUTE format('ALTER TABLE %I RENAME TO %I', p.relname,
                       'rule_executions' || substr(p.relname, length('rule_executions_back') + 1));
    END LOOP;
END
$$;
CREATE UNIQUE INDEX rule_executions_key ON rule_executions (event_id, rule_id, event_day);
CREATE INDEX rule_executions_rule_time_idx ON rule_executions (rule_id, executed_at DESC, id DESC);

CREATE OR REPLACE FUNCTION rules_make_log_days(days date[])
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
    -- One query per event day (a live batch has one, two around midnight), the day a
    -- scalar so each table is pruned to that day's partition before it is read.
    FOR day IN SELECT DISTINCT d FROM unnest(days) AS d LOOP
        RETURN QUERY
            SELECT t.rule_id, t.event_id
            FROM unnest(rule_ids, event_ids, days) AS p(r, e, d)
            JOIN rule_executions t
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
    -- The legacy rows (event_day 1970-01-01, rules_store::db::record::LEGACY_EVENT_DAY)
    -- answer for any key; the literal day prunes these branches to nothing once
    -- retention has dropped the legacy partitions.
    RETURN QUERY
        SELECT t.rule_id, t.event_id
        FROM unnest(rule_ids, event_ids) AS p(r, e)
        JOIN rule_executions t
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

DROP FUNCTION rules_partition_times(regclass);
