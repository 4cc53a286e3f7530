//! The execution log: one row per (rule, event) that ran its actions.

use chrono::{DateTime, Utc};
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
    /// `succeeded`, `failed` or `skipped` ([`rules_core::Status`]).
    pub status: String,
    pub duration_ms: i32,
    pub result: Value,
}

/// Filters of a rule's execution history.
#[derive(Debug, Clone, Default)]
pub struct ExecutionFilter {
    pub status: Option<String>,
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
        query = query.filter(rule_executions::status.eq(status.clone()));
    }
    if let Some(from) = filter.from {
        query = query.filter(rule_executions::executed_at.ge(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(rule_executions::executed_at.lt(to));
    }
    if let Some(c) = after {
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

/// Records executions in one multi-row statement; a row whose `(rule_id, event_id)`
/// is already recorded is skipped. Returns the ids actually inserted.
pub async fn insert_new(
    conn: &mut AsyncPgConnection,
    rows: &[ExecutionRow],
) -> Result<Vec<Uuid>, DbError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    Ok(diesel::insert_into(rule_executions::table)
        .values(rows)
        .on_conflict((rule_executions::rule_id, rule_executions::event_id))
        .do_nothing()
        .returning(rule_executions::id)
        .get_results(conn)
        .await?)
}

/// Whether any execution or counter was ever recorded for `rule_id` (a deleted rule's
/// history stays readable).
pub async fn has_history(conn: &mut AsyncPgConnection, rule_id: Uuid) -> Result<bool, DbError> {
    use super::schema::rule_stats_minute;
    let executions = diesel::select(diesel::dsl::exists(
        rule_executions::table.filter(rule_executions::rule_id.eq(rule_id)),
    ))
    .get_result::<bool>(conn)
    .await?;
    if executions {
        return Ok(true);
    }
    Ok(diesel::select(diesel::dsl::exists(
        rule_stats_minute::table.filter(rule_stats_minute::rule_id.eq(rule_id)),
    ))
    .get_result::<bool>(conn)
    .await?)
}
