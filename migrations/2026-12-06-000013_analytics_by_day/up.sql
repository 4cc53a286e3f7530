-- Analytics counters by UTC day beside the quarter hours, so an answer over months
-- reads a row per day instead of 96, and a roll-up that writes a rule's day
-- together.
--
-- rule_stats_day holds, for every rule and UTC day, the sum of that day's quarter
-- hours (the roll-up adds to both in one statement, so the invariant holds in every
-- snapshot). Other zones' days do not begin at UTC midnight, but their midnights
-- fall on quarter hours: a day bucket is read as the UTC days between the UTC
-- midnights nearest to its ends, corrected by the quarter hours between each end
-- and that midnight (added or subtracted: counts and histograms are sums, exact
-- either way) -- for Europe/Berlin four quarter hours at each end, at most 48
-- (rules_store::db::stats::sum_by_day). Hour and minute buckets read as before.
--
-- The roll-up moves whole UTC days: the minute rows of the days that ended
-- `minutes_days` before `at` (not, as 000008's did, every quarter hour that did),
-- each day in one statement ordered by rule and time, so a rule's quarter hours of
-- a day are written together on the same few pages (hourly runs wrote every other
-- rule's hour between two of its hours). Minutes are kept up to a day longer
-- (minute buckets still reach back `retention.stats_minutes_days`); the hourly
-- runs move nothing until a day is whole, then the day. Expiry deletes whole days
-- too, quarter hours and day rows alike.
--
-- Additive: the previous version's API reads minutes and quarter hours as before;
-- its workers call this function as they called the old one. The day rows of the
-- quarter hours already there are written here, with the roll-up's lock held.

SELECT pg_advisory_xact_lock(7462150923508114);

CREATE TABLE rule_stats_day (LIKE rule_stats_minute INCLUDING ALL);
ALTER TABLE rule_stats_day ADD CONSTRAINT rule_stats_day_bucket_check
    CHECK (date_bin('1 day', bucket_start, TIMESTAMPTZ '2000-01-01 00:00:00+00') = bucket_start);
CREATE INDEX rule_stats_day_time_idx ON rule_stats_day USING BRIN (bucket_start);

-- The histograms the service writes have 16 buckets
-- (rules_store::db::stats::HISTOGRAM_LEN); summed element by element, as
-- histogram_add sums them.
INSERT INTO rule_stats_day (rule_id, bucket_start, matched, executed, suppressed_by_cooldown,
    succeeded, failed, duration_ms_sum, duration_histogram, last_executed_at, skipped)
SELECT rule_id, date_bin('1 day', bucket_start, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
    sum(matched)::bigint, sum(executed)::bigint, sum(suppressed_by_cooldown)::bigint,
    sum(succeeded)::bigint, sum(failed)::bigint, sum(duration_ms_sum)::bigint,
    ARRAY[
        coalesce(sum(duration_histogram[1]), 0),
        coalesce(sum(duration_histogram[2]), 0),
        coalesce(sum(duration_histogram[3]), 0),
        coalesce(sum(duration_histogram[4]), 0),
        coalesce(sum(duration_histogram[5]), 0),
        coalesce(sum(duration_histogram[6]), 0),
        coalesce(sum(duration_histogram[7]), 0),
        coalesce(sum(duration_histogram[8]), 0),
        coalesce(sum(duration_histogram[9]), 0),
        coalesce(sum(duration_histogram[10]), 0),
        coalesce(sum(duration_histogram[11]), 0),
        coalesce(sum(duration_histogram[12]), 0),
        coalesce(sum(duration_histogram[13]), 0),
        coalesce(sum(duration_histogram[14]), 0),
        coalesce(sum(duration_histogram[15]), 0),
        coalesce(sum(duration_histogram[16]), 0)
    ]::bigint[],
    max(last_executed_at), sum(skipped)::bigint
FROM rule_stats_quarter
GROUP BY 1, 2
ORDER BY 1, 2;

-- The quarter hours and day rows of the UTC days that ended `minutes_days` before
-- `at`, from their minutes, and the deletion of both older than `stats_days`
-- (whole UTC days). One transaction: a reader sees every count once, in the
-- minutes or in the quarter hours and days. Returns the minute rows moved and the
-- quarter hours expired. Safe to run from every worker at once (an advisory lock
-- serialises it).
CREATE OR REPLACE FUNCTION rules_roll_up_stats(
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
