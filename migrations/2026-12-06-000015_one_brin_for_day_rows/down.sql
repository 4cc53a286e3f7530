CREATE INDEX rule_stats_day_bucket_start_idx ON rule_stats_day USING BRIN (bucket_start);
