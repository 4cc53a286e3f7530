-- The minutes of each UTC day, once it has ended, written again in key order (by
-- rule, then time), so that a rule's minutes of a day lie on a page or two.
--
-- The recorder writes minutes as they come, every rule's minute beside the others',
-- so a rule's week of minutes lay on as many heap pages as it has minutes: an hour
-- bucket over 7 days read ~385 heap pages for a rule active every few minutes, the
-- 90-day answer in days as many for its last week (`EXPLAIN (ANALYZE, BUFFERS)` on
-- the database of `make bench-history`: 394 heap blocks for 394 minute rows).
-- rules_sort_minutes takes the oldest ended day whose minutes are not sorted yet
-- (`rule_stats_minute_sorted.through` says up to where they are), one day a run,
-- and writes its minutes again in key order, in one statement: a reader sees every
-- count once, before or after. Only the layout changes, never a count; a minute
-- written later into a sorted day (a late batch) is counted where it lands. A day
-- is taken an hour after its end, when the recorder no longer writes it, and only
-- from the days whose minutes are kept (rules_roll_up_stats moves the older ones,
-- so the two never touch the same rows). A database upgraded to this starts with
-- the newest ended day (older ones are moved into quarter hours within
-- `minutes_days` anyway). This version's roll-up calls both functions in one
-- statement (rules_store::db::retention::roll_up_stats), under the roll-up's lock.
--
-- Additive: the previous version's workers call rules_roll_up_stats as before and
-- do not sort; its API reads what it read.

CREATE TABLE rule_stats_minute_sorted (
    only_row BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
    through  TIMESTAMPTZ NOT NULL
);

CREATE FUNCTION rules_sort_minutes(
    minutes_days int,
    at timestamptz DEFAULT now(),
    OUT minutes_sorted bigint
)
LANGUAGE plpgsql AS $$
DECLARE
    origin CONSTANT timestamptz := TIMESTAMPTZ '2000-01-01 00:00:00+00';
    -- The oldest day whose minutes are kept (rules_roll_up_stats's horizon).
    horizon timestamptz := date_bin('1 day', at - make_interval(days => minutes_days), origin);
    -- Days before this one ended an hour or more before `at`.
    ended timestamptz := date_bin('1 day', at - interval '1 hour', origin);
    sort_day timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(7462150923508114);
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
