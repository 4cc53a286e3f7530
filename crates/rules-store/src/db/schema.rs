//! Diesel's view of the tables in `migrations/`; kept in step by the schema test.

diesel::table! {
    rules (id) {
        id -> Uuid,
        livestream_id -> Uuid,
        name -> Text,
        description -> Nullable<Text>,
        trigger_config -> Jsonb,
        actions -> Jsonb,
        cooldown_seconds -> Int4,
        cooldown_key -> Nullable<Text>,
        enabled -> Bool,
        version -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    rule_executions (rule_id, event_id, event_day) {
        id -> Uuid,
        rule_id -> Uuid,
        event_id -> Uuid,
        livestream_id -> Uuid,
        executed_at -> Timestamptz,
        status -> Text,
        duration_ms -> Int4,
        result -> Jsonb,
        event_day -> Date,
    }
}

diesel::table! {
    rule_stats_minute (rule_id, bucket_start) {
        rule_id -> Uuid,
        bucket_start -> Timestamptz,
        matched -> Int8,
        executed -> Int8,
        suppressed_by_cooldown -> Int8,
        succeeded -> Int8,
        failed -> Int8,
        duration_ms_sum -> Int8,
        duration_histogram -> Array<Int8>,
        last_executed_at -> Nullable<Timestamptz>,
        skipped -> Int8,
    }
}

diesel::table! {
    rule_stats_day (rule_id, bucket_start) {
        rule_id -> Uuid,
        bucket_start -> Timestamptz,
        matched -> Int8,
        executed -> Int8,
        suppressed_by_cooldown -> Int8,
        succeeded -> Int8,
        failed -> Int8,
        duration_ms_sum -> Int8,
        duration_histogram -> Array<Int8>,
        last_executed_at -> Nullable<Timestamptz>,
        skipped -> Int8,
    }
}

diesel::table! {
    rule_stats_quarter (rule_id, bucket_start) {
        rule_id -> Uuid,
        bucket_start -> Timestamptz,
        matched -> Int8,
        executed -> Int8,
        suppressed_by_cooldown -> Int8,
        succeeded -> Int8,
        failed -> Int8,
        duration_ms_sum -> Int8,
        duration_histogram -> Array<Int8>,
        last_executed_at -> Nullable<Timestamptz>,
        skipped -> Int8,
    }
}

diesel::table! {
    rule_suppressions (rule_id, event_id, event_day) {
        rule_id -> Uuid,
        event_id -> Uuid,
        suppressed_at -> Timestamptz,
        event_day -> Date,
    }
}

diesel::table! {
    rule_threshold_counts (rule_id, event_id, event_day) {
        rule_id -> Uuid,
        event_id -> Uuid,
        counted_at -> Timestamptz,
        event_day -> Date,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    rules,
    rule_executions,
    rule_stats_day,
    rule_stats_minute,
    rule_stats_quarter,
    rule_suppressions,
    rule_threshold_counts
);
