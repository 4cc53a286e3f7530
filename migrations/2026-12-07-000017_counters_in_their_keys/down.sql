DROP INDEX rule_stats_quarter_failed_idx;
CREATE INDEX rule_stats_quarter_failed_idx ON rule_stats_quarter (rule_id, bucket_start DESC) WHERE failed > 0;
DROP INDEX rule_stats_minute_failed_idx;
CREATE INDEX rule_stats_minute_failed_idx ON rule_stats_minute (rule_id, bucket_start DESC) WHERE failed > 0;
ALTER TABLE rule_stats_quarter RESET (autovacuum_vacuum_insert_threshold,
                                      autovacuum_vacuum_insert_scale_factor);
ALTER TABLE rule_stats_day RESET (autovacuum_vacuum_insert_threshold,
                                  autovacuum_vacuum_insert_scale_factor);
ALTER TABLE rule_stats_quarter
    DROP CONSTRAINT rule_stats_quarter_pkey,
    ADD CONSTRAINT rule_stats_quarter_pkey PRIMARY KEY (rule_id, bucket_start);
ALTER TABLE rule_stats_day
    DROP CONSTRAINT rule_stats_day_pkey,
    ADD CONSTRAINT rule_stats_day_pkey PRIMARY KEY (rule_id, bucket_start);
