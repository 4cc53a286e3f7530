-- 000008's roll-up (every quarter hour that ended `minutes_days` before `at`,
-- expiry by quarter hour), and no day rows: the quarter hours hold every count.
DROP TABLE rule_stats_day;

CREATE OR REPLACE FUNCTION rules_roll_up_stats(
    minutes_days int,
    stats_days int,
    at timestamptz DEFAULT now(),
    OUT minutes_rolled_up bigint,
    OUT quarters_expired bigint
)
LANGUAGE plpgsql AS $$
DECLARE
    horizon timestamptz := date_bin('15 minutes', at - make_interval(days => minutes_days),
                                    TIMESTAMPTZ '2000-01-01 00:00:00+00');
BEGIN
    IF minutes_days < 1 OR stats_days <= minutes_days THEN
        RAISE EXCEPTION 'minutes_days must be at least 1 and stats_days more than minutes_days';
    END IF;
    PERFORM pg_advisory_xact_lock(7462150923508114);
    WITH moved AS (
        DELETE FROM rule_stats_minute WHERE bucket_start < horizon RETURNING *
    ), added AS (
        INSERT INTO rule_stats_quarter AS s (rule_id, bucket_start, matched, executed,
            suppressed_by_cooldown, succeeded, failed, duration_ms_sum, duration_histogram,
            last_executed_at, skipped)
        SELECT rule_id, date_bin('15 minutes', bucket_start, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
               sum(matched)::bigint, sum(executed)::bigint, sum(suppressed_by_cooldown)::bigint,
               sum(succeeded)::bigint, sum(failed)::bigint, sum(duration_ms_sum)::bigint,
               histogram_sum(duration_histogram), max(last_executed_at), sum(skipped)::bigint
        FROM moved
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
    DELETE FROM rule_stats_quarter WHERE bucket_start < at - make_interval(days => stats_days);
    GET DIAGNOSTICS quarters_expired = ROW_COUNT;
END
$$;
