-- The execution log: one row per (rule, event) that ran its actions.
-- UNIQUE (rule_id, event_id) makes recording idempotent under at-least-once delivery
-- (the worker inserts with ON CONFLICT DO NOTHING). No foreign key to rules: a rule's
-- history outlives the rule, and the hot insert path takes no lock on rules.
CREATE TABLE rule_executions (
    id            UUID        PRIMARY KEY,
    rule_id       UUID        NOT NULL,
    event_id      UUID        NOT NULL,
    livestream_id UUID        NOT NULL,
    executed_at   TIMESTAMPTZ NOT NULL,
    status        TEXT        NOT NULL CHECK (status IN ('succeeded', 'failed')),
    duration_ms   INTEGER     NOT NULL CHECK (duration_ms >= 0),
    result        JSONB       NOT NULL,
    CONSTRAINT rule_executions_rule_event_key UNIQUE (rule_id, event_id)
);

-- History of one rule, newest first, optionally by status.
CREATE INDEX rule_executions_rule_time_idx ON rule_executions (rule_id, executed_at DESC, id DESC);
-- Retention deletes by time.
CREATE INDEX rule_executions_time_idx ON rule_executions USING BRIN (executed_at);

-- Per-rule, per-minute counters: analytics read these, never the log, so a rule with
-- millions of executions answers in one index range scan. Invariants kept by the
-- writer: matched = executed + suppressed_by_cooldown; executed = succeeded + failed.
-- duration_histogram counts executions per latency bucket (bounds in
-- rules_store::db::stats::DURATION_BUCKETS_MS) for percentiles.
CREATE TABLE rule_stats_minute (
    rule_id                UUID        NOT NULL,
    bucket_start           TIMESTAMPTZ NOT NULL CHECK (date_trunc('minute', bucket_start) = bucket_start),
    matched                BIGINT      NOT NULL DEFAULT 0,
    executed               BIGINT      NOT NULL DEFAULT 0,
    suppressed_by_cooldown BIGINT      NOT NULL DEFAULT 0,
    succeeded              BIGINT      NOT NULL DEFAULT 0,
    failed                 BIGINT      NOT NULL DEFAULT 0,
    duration_ms_sum        BIGINT      NOT NULL DEFAULT 0,
    duration_histogram     BIGINT[]    NOT NULL DEFAULT '{}',
    last_executed_at       TIMESTAMPTZ,
    PRIMARY KEY (rule_id, bucket_start),
    CHECK (matched = executed + suppressed_by_cooldown),
    CHECK (executed = succeeded + failed)
);

-- Element-wise sum of two histograms (the shorter one is padded with zeros), for
-- INSERT ... ON CONFLICT DO UPDATE of rule_stats_minute.
CREATE FUNCTION histogram_add(a BIGINT[], b BIGINT[]) RETURNS BIGINT[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(coalesce(a[i], 0) + coalesce(b[i], 0) ORDER BY i), '{}')
    FROM generate_series(1, greatest(coalesce(array_length(a, 1), 0), coalesce(array_length(b, 1), 0))) AS i
$$;
