-- 000013 made rule_stats_day LIKE rule_stats_minute INCLUDING ALL, which copied the
-- minute table's BRIN index on bucket_start (as rule_stats_day_bucket_start_idx),
-- and then created the same index again (rule_stats_day_time_idx, named as the
-- quarter hours' is): every roll-up wrote both. The copy goes.
-- (tests/tests/store.rs::no_table_has_two_indexes_alike)
DROP INDEX IF EXISTS rule_stats_day_bucket_start_idx;
