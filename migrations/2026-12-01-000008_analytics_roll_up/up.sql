-- Analytics counters kept long and small: minute rows older than a week are rolled
-- up into quarter hours (rule_stats_quarter), and quarter hours are kept for
-- retention.stats_days (400 by default), so a year of a busy rule is some 35,000
-- rows instead of 525,000. The analytics endpoint reads both tables: hour and day
-- buckets, in every time zone, answer as they did from minutes (every time zone's
-- hours and midnights fall on UTC quarter hours: offsets are whole quarters, like
-- +05:30 or +05:45, which whole hours would not keep).
--
-- Additive: the previous version's workers and API keep working on this schema
-- (they read and write rule_stats_minute only; an API of the previous version does
-- not see what was rolled up).

CREATE TABLE rule_stats_quarter (LIKE rule_stats_minute INCLUDING ALL);
ALTER TABLE rule_stats_quarter ADD CONSTRAINT rule_stats_quarter_bucket_check
    CHECK (date_bin('15 minutes', bucket_start, TIMESTAMPTZ '2000-01-01 00:00:00+00') = bucket_start);

-- The roll-up and the expiry select by time across rules: BRIN indexes (rows are
-- written in time order) spare them a scan of either table every hour.
CREATE INDEX rule_stats_minute_time_idx ON rule_stats_minute USING BRIN (bucket_start);
CREATE INDEX rule_stats_quarter_time_idx ON rule_stats_quarter USING BRIN (bucket_start);

-- Element-wise sum of histograms (rule_stats_minute.duration_histogram).
CREATE AGGREGATE histogram_sum(BIGINT[]) (SFUNC = histogram_add, STYPE = BIGINT[], INITCOND = '{}');

-- Moves the minute rows older than `minutes_days` before `at` (down to a quarter
-- hour) into their quarter hours, adding to what is there (a minute written late,
-- after its quarter was rolled up, is added on the next run), and deletes the
-- quarter hours older than `stats_days`. One transaction: a reader sees every count
-- once, in one table or the other. Returns the rows moved and the rows expired.
-- Safe to run from every worker at once (an advisory lock serialises it).
CREATE FUNCTION rules_roll_up_stats(
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
