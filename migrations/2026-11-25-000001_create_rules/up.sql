-- Rules as the API stores them. trigger_config and actions hold the validated,
-- normalised JSON of CONTRACT §2; version counts replacements (optimistic concurrency).
CREATE TABLE rules (
    id               UUID        PRIMARY KEY,
    livestream_id    UUID        NOT NULL,
    name             TEXT        NOT NULL,
    description      TEXT,
    trigger_config   JSONB       NOT NULL,
    actions          JSONB       NOT NULL,
    cooldown_seconds INTEGER     NOT NULL DEFAULT 0 CHECK (cooldown_seconds BETWEEN 0 AND 604800),
    cooldown_key     TEXT,
    enabled          BOOLEAN     NOT NULL DEFAULT TRUE,
    version          INTEGER     NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Listing: keyset pagination in a stable order, overall and per livestream.
CREATE INDEX rules_created_idx ON rules (created_at, id);
CREATE INDEX rules_livestream_created_idx ON rules (livestream_id, created_at, id);
-- Filter by event type: trigger_config -> 'event_types' @> '["donation.received"]'.
CREATE INDEX rules_event_types_idx ON rules USING GIN ((trigger_config -> 'event_types') jsonb_path_ops);
-- The worker loads enabled rules at start and reconciles them periodically.
CREATE INDEX rules_enabled_idx ON rules (id, version) WHERE enabled;
