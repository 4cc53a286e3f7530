-- Back to migration 000007's maintenance, which makes the days itself.
CREATE OR REPLACE FUNCTION rules_maintain_log(
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
DROP FUNCTION rules_make_log_days(date[]);
