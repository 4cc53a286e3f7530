-- Matches suppressed by a cooldown, one row per (rule, event): the idempotency key
-- that keeps a redelivered suppressed event from being counted twice in
-- rule_stats_minute. Kept as long as executions are (retention by time).
CREATE TABLE rule_suppressions (
    rule_id       UUID        NOT NULL,
    event_id      UUID        NOT NULL,
    suppressed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (rule_id, event_id)
);
CREATE INDEX rule_suppressions_time_idx ON rule_suppressions USING BRIN (suppressed_at);
