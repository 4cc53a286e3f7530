ALTER TABLE rule_stats_minute DROP CONSTRAINT rule_stats_minute_matched_check;
UPDATE rule_stats_minute SET matched = matched - skipped;
ALTER TABLE rule_stats_minute DROP COLUMN skipped;
ALTER TABLE rule_stats_minute ADD CONSTRAINT rule_stats_minute_check
    CHECK (matched = executed + suppressed_by_cooldown);
DELETE FROM rule_executions WHERE status = 'skipped';
ALTER TABLE rule_executions DROP CONSTRAINT rule_executions_status_check;
ALTER TABLE rule_executions ADD CONSTRAINT rule_executions_status_check
    CHECK (status IN ('succeeded', 'failed'));
DROP TABLE rule_threshold_counts;
