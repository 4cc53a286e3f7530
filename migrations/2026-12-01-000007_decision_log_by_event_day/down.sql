-- Back to one table each, keyed by (rule_id, event_id): every partition's rows are
-- copied (a pair recorded under two days keeps one row), then the partitioned
-- tables go.
DROP FUNCTION rules_maintain_log(int, int, date);
DROP FUNCTION rules_partition_bounds(regclass);

ALTER TABLE rule_executions RENAME TO rule_executions_by_day;
CREATE TABLE rule_executions (
    id            UUID        NOT NULL,
    rule_id       UUID        NOT NULL,
    event_id      UUID        NOT NULL,
    livestream_id UUID        NOT NULL,
    executed_at   TIMESTAMPTZ NOT NULL,
    status        TEXT        NOT NULL CONSTRAINT rule_executions_status_check
                                       CHECK (status IN ('succeeded', 'failed', 'skipped')),
    duration_ms   INTEGER     NOT NULL CHECK (duration_ms >= 0),
    result        JSONB       NOT NULL,
    CONSTRAINT rule_executions_rule_event_key UNIQUE (rule_id, event_id)
);
INSERT INTO rule_executions
    SELECT id, rule_id, event_id, livestream_id, executed_at, status, duration_ms, result
    FROM rule_executions_by_day ON CONFLICT DO NOTHING;
DROP TABLE rule_executions_by_day;
CREATE INDEX rule_executions_rule_time_idx ON rule_executions (rule_id, executed_at DESC, id DESC);
CREATE INDEX rule_executions_time_idx ON rule_executions USING BRIN (executed_at);
ALTER TABLE rule_executions REPLICA IDENTITY USING INDEX rule_executions_rule_event_key;

ALTER TABLE rule_suppressions RENAME TO rule_suppressions_by_day;
CREATE TABLE rule_suppressions (
    rule_id       UUID        NOT NULL,
    event_id      UUID        NOT NULL,
    suppressed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (rule_id, event_id)
);
INSERT INTO rule_suppressions SELECT rule_id, event_id, suppressed_at
    FROM rule_suppressions_by_day ON CONFLICT DO NOTHING;
DROP TABLE rule_suppressions_by_day;
CREATE INDEX rule_suppressions_time_idx ON rule_suppressions USING BRIN (suppressed_at);

ALTER TABLE rule_threshold_counts RENAME TO rule_threshold_counts_by_day;
CREATE TABLE rule_threshold_counts (
    rule_id    UUID        NOT NULL,
    event_id   UUID        NOT NULL,
    counted_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (rule_id, event_id)
);
INSERT INTO rule_threshold_counts SELECT rule_id, event_id, counted_at
    FROM rule_threshold_counts_by_day ON CONFLICT DO NOTHING;
DROP TABLE rule_threshold_counts_by_day;
CREATE INDEX rule_threshold_counts_time_idx ON rule_threshold_counts USING BRIN (counted_at);
