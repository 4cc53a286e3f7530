-- 000013's roll-up, which does not sort the minutes.
DROP FUNCTION rules_roll_up_stats(int, int, timestamptz);
DROP TABLE rule_stats_minute_sorted;

CREATE FUNCTION rules_roll_up_stats(
    minutes_days int,
    stats_days int,
    at timestamptz DEFAULT now(),
    OUT minutes_rolled_up bigint,
    OUT quarters_expired bigint
)
LANGUAGE plpgsql AS $$
DECLARE
    origin CONSTANT timestamptz := TIMESTAMPTZ '2000-01-01 00:00:00+00';
    horizon timestamptz := date_bin('1 day', at - make_interval(days => minutes_days), origin);
    expiry timestamptz := date_bin('1 day', at - make_interval(days => stats_days), origin);
BEGIN
    IF minutes_days < 1 OR stats_days <= minutes_days THEN
        RAISE EXCEPTION 'minutes_days must be at least 1 and stats_days more than minutes_days';
    END IF;
    PERFORM pg_advisory_xact_lock(7462150923508114);
    WITH moved AS (
        DELETE FROM rule_stats_minute WHERE bucket_start < horizon RETURNING *
    ), quarters AS (
        SELECT rule_id, date_bin('15 minutes', bucket_start, origin) AS bucket_start,
               sum(matched)::bigint AS matched, sum(executed)::bigint AS executed,
               sum(suppressed_by_cooldown)::bigint AS suppressed_by_cooldown,
               sum(succeeded)::bigint AS succeeded, sum(failed)::bigint AS failed,
               sum(duration_ms_sum)::bigint AS duration_ms_sum,
               histogram_sum(duration_histogram) AS duration_histogram,
               max(last_executed_at) AS last_executed_at, sum(skipped)::bigint AS skipped
        FROM moved
        GROUP BY 1, 2
    ), added_quarters AS (
        INSERT INTO rule_stats_quarter AS s (rule_id, bucket_start, matched, executed,
            suppressed_by_cooldown, succeeded, failed, duration_ms_sum, duration_histogram,
            last_executed_at, skipped)
        SELECT rule_id, bucket_start, matched, executed, suppressed_by_cooldown, succeeded,
               failed, duration_ms_sum, duration_histogram, last_executed_at, skipped
        FROM quarters
        ORDER BY 1, 2
        ON CONFLICT (rule_id, bucket_start) DO UPDATE SET
            matched = s.matched + excluded.matched,
            executed = s.executed + excluded.executed,
            suppressed_by_cooldown = s.suppressed_by_cooldown + excluded.suppressed_by_cooldown,
            succeeded = s.succeeded + excluded.succeeded,
            failed = s.failed + excluded.failed,
            skipped = s.skipped + excluded.skipped,
            duration_ms_sum = s.duration_ms_sum + excluded.duration_ms_sum,
            duration_histogram = histogram_add(s.duration_histogram, excluded.duration_histogram),
            last_executed_at = greatest(s.last_executed_at, excluded.last_executed_at)
        RETURNING 1
    ), added_days AS (
        INSERT INTO rule_stats_day AS s (rule_id, bucket_start, matched, executed,
            suppressed_by_cooldown, succeeded, failed, duration_ms_sum, duration_histogram,
            last_executed_at, skipped)
        SELECT rule_id, date_bin('1 day', bucket_start, origin),
               sum(matched)::bigint, sum(executed)::bigint, sum(suppressed_by_cooldown)::bigint,
               sum(succeeded)::bigint, sum(failed)::bigint, sum(duration_ms_sum)::bigint,
               histogram_sum(duration_histogram), max(last_executed_at), sum(skipped)::bigint
        FROM quarters
        GROUP BY 1, 2
        ORDER BY 1, 2
        ON CONFLICT (rule_id, bucket_start) DO UPDATE SET
            matched = s.matched + excluded.matched,
            executed = s.executed + excluded.executed,
            suppressed_by_cooldown = s.suppressed_by_cooldown + excluded.suppressed_by_cooldown,
            succeeded = s.succeeded + excluded.succeeded,
            failed = s.failed + excluded.failed,
            skipped = s.skipped + excluded.skipped,
            duration_ms_sum = s.duration_ms_sum + excluded.duration_ms_sum,
            duration_histogram = histogram_add(s.duration_histogram, excluded.duration_histogram),
            last_executed_at = greatest(s.last_executed_at, excluded.last_executed_at)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM moved) INTO minutes_rolled_up;
    DELETE FROM rule_stats_quarter WHERE bucket_start < expiry;
    GET DIAGNOSTICS quarters_expired = ROW_COUNT;
    DELETE FROM rule_stats_day WHERE bucket_start < expiry;
END
$$;
