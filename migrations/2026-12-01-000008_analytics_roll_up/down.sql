-- The quarter hours go back into minute rows, one per quarter at its first minute
-- (the minutes inside a rolled-up quarter are not known any more).
INSERT INTO rule_stats_minute AS s (rule_id, bucket_start, matched, executed,
    suppressed_by_cooldown, succeeded, failed, duration_ms_sum, duration_histogram,
    last_executed_at, skipped)
SELECT rule_id, bucket_start, matched, executed, suppressed_by_cooldown, succeeded, failed,
       duration_ms_sum, duration_histogram, last_executed_at, skipped
FROM rule_stats_quarter
ON CONFLICT (rule_id, bucket_start) DO UPDATE SET
    matched = s.matched + excluded.matched,
    executed = s.executed + excluded.executed,
    suppressed_by_cooldown = s.suppressed_by_cooldown + excluded.suppressed_by_cooldown,
    succeeded = s.succeeded + excluded.succeeded,
    failed = s.failed + excluded.failed,
    skipped = s.skipped + excluded.skipped,
    duration_ms_sum = s.duration_ms_sum + excluded.duration_ms_sum,
    duration_histogram = histogram_add(s.duration_histogram, excluded.duration_histogram),
    last_executed_at = greatest(s.last_executed_at, excluded.last_executed_at);
DROP FUNCTION rules_roll_up_stats(int, int, timestamptz);
DROP AGGREGATE histogram_sum(BIGINT[]);
DROP INDEX rule_stats_minute_time_idx;
DROP TABLE rule_stats_quarter;
