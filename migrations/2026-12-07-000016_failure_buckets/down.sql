DROP INDEX IF EXISTS rule_stats_quarter_failed_idx;
DROP INDEX IF EXISTS rule_stats_minute_failed_idx;
