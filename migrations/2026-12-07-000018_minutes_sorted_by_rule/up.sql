-- The minutes of each UTC day, once it has ended, written again in key order (by
-- rule, then time), so that a rule's minutes of a day lie on a page or two.
--
-- The recorder writes minutes as they come, every rule's minute beside the others',
-- so a rule's week of minutes lay on as many heap pages as it has minutes: an hour
-- bucket over 7 days read ~385 heap pages for a rule active every few minutes, the
-- 90-day answer in days as many for its last week (`EXPLAIN (ANALYZE, BUFFERS)` on
-- the database of `make bench-history`: 394 heap blocks for 394 minute rows). The
-- roll-up now also takes the oldest ended day whose minutes are not sorted yet
-- (`rule_stats_minute_sorted.through` says up to where they are), one day a run,
-- and writes its minutes again in key order, in one statement: a reader sees every
-- count once, before or after. Only the layout changes, never a count; a minute
-- written later into a sorted day (a late batch) is counted where it lands. A day
-- is taken an hour after its end, when the recorder no longer writes it. A database
-- upgraded to this starts with the newest ended day (older ones are moved into
-- quarter hours within `minutes_days` anyway).
--
-- Additive: the previous version's workers call the function as before (one more
-- output column they do not select); its API reads what it read.

CREATE TABLE rule_stats_minute_sorted (
    only_row BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
    through  TIMESTAMPTZ NOT NULL
);

DROP FUNCTION rules_roll_up_stats(int, int, timestamptz);

CREATE FUNCTION rules_roll_up_stats(
    minutes_days int,
    stats_days int,
    at timestamptz DEFAULT now(),
    OUT minutes_rolled_up bigint,
    OUT quarters_expired bigint,
    OUT minutes_sorted bigint
)
LANGUAGE plpgsql AS $$
DECLARE
    origin CONSTANT timestamptz := TIMESTAMPTZ '2000-01-01 00:00:00+00';
    horizon timestamptz := date_bin('1 day', at - make_interval(days => minutes_days), origin);
    expiry timestamptz := date_bin('1 day', at - make_interval(days => stats_days), origin);
    -- Days before this one ended an hour or more before `at`.
    ended timestamptz := date_bin('1 day', at - interval '1 hour', origin);
    sort_day timestamptz;
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
    -- The oldest ended day whose minutes are not sorted yet (none kept before the
    -- horizon), written again in key order.
    SELECT greatest(coalesce((SELECT through FROM rule_stats_minute_sorted),
                             ended - interval '1 day'), horizon)
    INTO sort_day;
    minutes_sorted := 0;
    IF sort_day < ended THEN
        WITH taken AS (
            DELETE FROM rule_stats_minute
            WHERE bucket_start >= sort_day AND bucket_start < sort_day + interval '1 day'
            RETURNING *
        ), put AS (
            INSERT INTO rule_stats_minute SELECT * FROM taken ORDER BY rule_id, bucket_start
            RETURNING 1
        )
        SELECT count(*) INTO minutes_sorted FROM put;
        INSERT INTO rule_stats_minute_sorted (through) VALUES (sort_day + interval '1 day')
        ON CONFLICT (only_row) DO UPDATE SET through = excluded.through;
    END IF;
END
$$;
