//! The execution log: one row per (rule, event) that ran its actions.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use super::schema::rule_executions;
use super::DbError;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = rule_executions, check_for_backend(diesel::pg::Pg))]
pub struct ExecutionRow {
    pub id: Uuid,
    pub rule_id: Uuid,
    pub event_id: Uuid,
    pub livestream_id: Uuid,
    pub executed_at: DateTime<Utc>,
    /// Stored as its text (`succeeded`, `failed`, `skipped`; the table's `CHECK`
    /// holds it to these).
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub status: rules_core::Status,
    pub duration_ms: i32,
    pub result: Value,
    /// The UTC day of the event's time (`rules_core::clock::day_of_ms`): the partition.
    pub event_day: NaiveDate,
}

/// Filters of a rule's execution history.
#[derive(Debug, Clone, Default)]
pub struct ExecutionFilter {
    pub status: Option<rules_core::Status>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// A position in the history's order (newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecutionCursor {
    pub executed_at: DateTime<Utc>,
    pub id: Uuid,
}

/// One page of a rule's executions, newest first (`executed_at DESC, id DESC`).
pub async fn list_for_rule(
    conn: &mut AsyncPgConnection,
    rule_id: Uuid,
    filter: &ExecutionFilter,
    after: Option<ExecutionCursor>,
    limit: i64,
) -> Result<Vec<ExecutionRow>, DbError> {
    let mut query = rule_executions::table
        .filter(rule_executions::rule_id.eq(rule_id))
        .select(ExecutionRow::as_select())
        .into_boxed();
    if let Some(status) = &filter.status {
        query = query.filter(rule_executions::status.eq(status.as_str()));
        if *status != rules_core::Status::Succeeded {
            // As a literal, so that even a generic plan (the status a parameter)
            // can read the partial index of the rarer statuses (migration 000012).
            query = query.filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                "status <> 'succeeded'",
            ));
        }
    }
    if let Some(from) = filter.from {
        query = query.filter(rule_executions::executed_at.ge(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(rule_executions::executed_at.lt(to));
    }
    if let Some(c) = after {
        // The first filter is implied by the second; stated, it bounds the index
        // scan and prunes the partitions after the cursor's.
        query = query.filter(rule_executions::executed_at.le(c.executed_at));
        query = query.filter(
            rule_executions::executed_at
                .lt(c.executed_at)
                .or(rule_executions::executed_at
                    .eq(c.executed_at)
                    .and(rule_executions::id.lt(c.id))),
        );
    }
    Ok(query
        .order((
            rule_executions::executed_at.desc(),
            rule_executions::id.desc(),
        ))
        .limit(limit)
        .load(conn)
        .await?)
}

/// Records executions in one statement; a row whose `(rule_id, event_id,
/// event_day)` is already recorded is skipped. Returns the ids actually inserted.
///
/// The pair goes into the decision memory (`rule_execution_keys`, by event day)
/// first; only the rows whose pair was new go on to the history (`rule_executions`,
/// by execution time), joined on the execution id (migration 000012).
///
/// The rows travel as one array per column (`unnest`), so the statement's text is
/// the same for any number of rows: PostgreSQL parses and plans it once per
/// connection, where a multi-row `VALUES` list is a new statement for every size.
pub async fn insert_new(
    conn: &mut AsyncPgConnection,
    rows: &[ExecutionRow],
) -> Result<Vec<Uuid>, DbError> {
    use diesel::sql_types::{Array, Date, Int4, Jsonb, Text, Timestamptz, Uuid as SqlUuid};
    #[derive(QueryableByName)]
    struct Inserted {
        #[diesel(sql_type = SqlUuid)]
        id: Uuid,
    }
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let column = |f: fn(&ExecutionRow) -> Uuid| rows.iter().map(f).collect::<Vec<Uuid>>();
    let inserted: Vec<Inserted> = diesel::sql_query(
        "WITH batch AS ( \
           SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], \
             $5::timestamptz[], $6::text[], $7::int4[], $8::jsonb[], $9::date[]) \
             AS b(id, rule_id, event_id, livestream_id, executed_at, status, duration_ms, \
                  result, event_day) \
         ), new_keys AS ( \
           INSERT INTO rule_execution_keys (rule_id, event_id, event_day, execution_id) \
           SELECT rule_id, event_id, event_day, id FROM batch \
           ON CONFLICT (rule_id, event_id, event_day) DO NOTHING RETURNING execution_id \
         ) \
         INSERT INTO rule_executions \
           (id, rule_id, event_id, livestream_id, executed_at, status, duration_ms, result, \
            event_day) \
         SELECT b.* FROM batch b JOIN new_keys k ON k.execution_id = b.id \
         RETURNING id",
    )
    .bind::<Array<SqlUuid>, _>(column(|r| r.id))
    .bind::<Array<SqlUuid>, _>(column(|r| r.rule_id))
    .bind::<Array<SqlUuid>, _>(column(|r| r.event_id))
    .bind::<Array<SqlUuid>, _>(column(|r| r.livestream_id))
    .bind::<Array<Timestamptz>, _>(rows.iter().map(|r| r.executed_at).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.status.as_str()).collect::<Vec<_>>())
    .bind::<Array<Int4>, _>(rows.iter().map(|r| r.duration_ms).collect::<Vec<_>>())
    .bind::<Array<Jsonb>, _>(rows.iter().map(|r| &r.result).collect::<Vec<_>>())
    .bind::<Array<Date>, _>(rows.iter().map(|r| r.event_day).collect::<Vec<_>>())
    .load(conn)
    .await?;
    Ok(inserted.into_iter().map(|r| r.id).collect())
}

/// Whether any execution or counter was ever recorded for `rule_id` (a deleted rule's
/// history stays readable).
pub async fn has_history(conn: &mut AsyncPgConnection, rule_id: Uuid) -> Result<bool, DbError> {
    use super::schema::{rule_stats_minute as minutes, rule_stats_quarter as quarters};
    use diesel::dsl::exists;
    Ok(diesel::select(
        exists(rule_executions::table.filter(rule_executions::rule_id.eq(rule_id)))
            .or(exists(minutes::table.filter(minutes::rule_id.eq(rule_id))))
            .or(exists(
                quarters::table.filter(quarters::rule_id.eq(rule_id)),
            )),
    )
    .get_result::<bool>(conn)
    .await?)
}
