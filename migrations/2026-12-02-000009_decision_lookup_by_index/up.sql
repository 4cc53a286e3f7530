-- The one lookup of the decisions already recorded (rules_store::db::record::
-- already_decided): which of a batch's (rule, event, event day) keys are in the
-- decision log, each key one probe of its day's partition of each table through the
-- table's unique key, and one of the legacy partition (rows recorded before the log
-- was partitioned) while there is one.
--
-- Left to its cost model, PostgreSQL answered a batch's ~1,000 keys in ways that
-- read the day so far instead of probing it: a hash join over a sequential scan of
-- the day's partition (it prices each in-cache index probe as a random read), or,
-- while the partition had no statistics yet (a new day, before autovacuum's first
-- ANALYZE), a probe of the executions' history index (rule_id, executed_at), which
-- reads every execution of the rule that day; and a cached plan kept doing so as the
-- partition grew. Measured on a day of 200,000 executions of 1,000 rules: 47–90 ms
-- per batch of 1,000 keys, against 7 ms probing the unique key. Two changes make
-- probing the only plan, whatever the statistics say:
--
-- 1. The executions' unique key leads with event_id, (event_id, rule_id,
--    event_day), and the lookup compares rule_id with IS NOT DISTINCT FROM (the
--    same for these NOT NULL columns, but no index can use it): only the unique
--    key answers `event_id = ?`, so no other index can be chosen. ON CONFLICT
--    (rule_id, event_id, event_day) infers the key from its columns, in any order.
--    Building it reads the whole log once (this migration: 0.24 s for 202,000
--    executions on a 2-core machine, so minutes for tens of millions; the worker's
--    writes wait meanwhile).
-- 2. The lookup is a function that runs with hash and merge joins, sequential and
--    bitmap scans disabled: nested loops over index probes.
CREATE UNIQUE INDEX rule_executions_event_key ON rule_executions (event_id, rule_id, event_day);
DROP INDEX rule_executions_key;
ALTER INDEX rule_executions_event_key RENAME TO rule_executions_key;

CREATE FUNCTION rules_decided(rule_ids uuid[], event_ids uuid[], days date[])
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
