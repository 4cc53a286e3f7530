-- The day rows' sums and the quarter hours' counts carried in their primary keys,
-- so an answer in days reads them from the index alone (index-only scans), where a
-- rule's rows lie together in key order, instead of from a heap page per row.
--
-- The roll-up writes a day of every rule at a time (000013), so a rule's 90 day rows
-- lie on 90 pages of rule_stats_day, and its quarter hours around 90 midnights on
-- 90 pages of rule_stats_quarter: a 90-day answer in days read ~180 heap pages
-- (rules_store::db::stats::sum_by_day), most of them outside PostgreSQL's buffers on
-- a grown database. In the keys they are ~90 consecutive entries of each index.
-- The day rows carry what an answer sums (counts, durations); the quarter hours only
-- their counts, all a bucket of the series shows (the durations of the two windows
-- at the range's ends are read from the table).
--
-- Index-only scans need the pages' all-visible bits: the two tables are written by
-- the hourly roll-up (a day at a time) and by nothing else, so autovacuum is asked
-- to vacuum them after every 10,000 rows written, not after a fifth of the table.
-- Until it has, an answer reads the heap as before.
--
-- Builds both keys again, holding off the roll-up and the analytics' readers
-- meanwhile (on 45.6M quarter hours and 0.9M day rows: see the README's history
-- benchmark). Minutes are not changed: the recorder updates them in place, which
-- a key carrying the counters would turn into new index entries on every update.
ALTER TABLE rule_stats_day
    DROP CONSTRAINT rule_stats_day_pkey,
    ADD CONSTRAINT rule_stats_day_pkey PRIMARY KEY (rule_id, bucket_start)
        INCLUDE (matched, executed, suppressed_by_cooldown, skipped, succeeded, failed,
                 duration_ms_sum, duration_histogram);
ALTER TABLE rule_stats_quarter
    DROP CONSTRAINT rule_stats_quarter_pkey,
    ADD CONSTRAINT rule_stats_quarter_pkey PRIMARY KEY (rule_id, bucket_start)
        INCLUDE (matched, executed, suppressed_by_cooldown, skipped, succeeded, failed);
-- The buckets that counted a failure (000016) carry their count too: with the
-- quarter hours' key now holding `failed`, PostgreSQL read a page of failures'
-- buckets backwards through that key, every quarter hour of the rule (~80 pages
-- for one that never failed) rather than the partial index without it (3).
DROP INDEX rule_stats_minute_failed_idx;
CREATE INDEX rule_stats_minute_failed_idx ON rule_stats_minute (rule_id, bucket_start DESC)
    INCLUDE (failed) WHERE failed > 0;
DROP INDEX rule_stats_quarter_failed_idx;
CREATE INDEX rule_stats_quarter_failed_idx ON rule_stats_quarter (rule_id, bucket_start DESC)
    INCLUDE (failed) WHERE failed > 0;
ALTER TABLE rule_stats_day SET (autovacuum_vacuum_insert_threshold = 10000,
                                autovacuum_vacuum_insert_scale_factor = 0);
ALTER TABLE rule_stats_quarter SET (autovacuum_vacuum_insert_threshold = 10000,
                                    autovacuum_vacuum_insert_scale_factor = 0);
