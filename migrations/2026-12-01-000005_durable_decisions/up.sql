-- The durable memory of the gate's decisions, beside executions and suppressions:
-- one row per (rule, event) that counted toward a threshold without firing it. With
-- rule_executions and rule_suppressions it records every decision the gate took, so
-- a redelivery, a second entry with the same id or a replay of the stream from `0`
-- is recognised however late it comes (the worker reads all three in its one
-- pairwise lookup per batch) and changes no state.
CREATE TABLE rule_threshold_counts (
    rule_id    UUID        NOT NULL,
    event_id   UUID        NOT NULL,
    counted_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (rule_id, event_id)
);
CREATE INDEX rule_threshold_counts_time_idx ON rule_threshold_counts USING BRIN (counted_at);

-- A pair whose every action was skipped as stale is an execution of status
-- `skipped`: it takes no cooldown and counts as `skipped` in analytics.
ALTER TABLE rule_executions DROP CONSTRAINT rule_executions_status_check;
ALTER TABLE rule_executions ADD CONSTRAINT rule_executions_status_check
    CHECK (status IN ('succeeded', 'failed', 'skipped'));

ALTER TABLE rule_stats_minute ADD COLUMN skipped BIGINT NOT NULL DEFAULT 0;
ALTER TABLE rule_stats_minute DROP CONSTRAINT rule_stats_minute_check;
ALTER TABLE rule_stats_minute ADD CONSTRAINT rule_stats_minute_matched_check
    CHECK (matched = executed + suppressed_by_cooldown + skipped);
