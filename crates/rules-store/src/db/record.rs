//! Recording a batch of outcomes: executions, suppressions and the per-minute
//! counters derived from them, in one transaction.
//!
//! Counters are computed only from rows that were actually inserted (`ON CONFLICT DO
//! NOTHING RETURNING`), so a redelivered event is never counted twice, and
//! `matched = executed + suppressed_by_cooldown` holds by construction.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

use super::executions::{self, ExecutionRow};
use super::schema::{rule_executions, rule_suppressions};
use super::stats::{self, histogram_add, histogram_of, StatsRow};
use super::DbError;

/// A match suppressed by a cooldown.
#[derive(Debug, Clone, PartialEq, Insertable)]
#[diesel(table_name = rule_suppressions)]
pub struct SuppressionRow {
    pub rule_id: Uuid,
    pub event_id: Uuid,
    pub suppressed_at: DateTime<Utc>,
}

/// What a batch added (redelivered rows are not in these counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recorded {
    pub executions: usize,
    pub suppressions: usize,
}

/// The (rule, event) pairs among `pairs` that already have an execution: their
/// actions ran and were recorded by an earlier delivery.
pub async fn already_executed(
    conn: &mut AsyncPgConnection,
    pairs: &[(Uuid, Uuid)],
) -> Result<HashSet<(Uuid, Uuid)>, DbError> {
    if pairs.is_empty() {
        return Ok(HashSet::new());
    }
    let rule_ids: Vec<Uuid> = pairs.iter().map(|p| p.0).collect();
    let event_ids: Vec<Uuid> = pairs.iter().map(|p| p.1).collect();
    let found: Vec<(Uuid, Uuid)> = rule_executions::table
        .filter(rule_executions::rule_id.eq_any(&rule_ids))
        .filter(rule_executions::event_id.eq_any(&event_ids))
        .select((rule_executions::rule_id, rule_executions::event_id))
        .load(conn)
        .await?;
    let wanted: HashSet<(Uuid, Uuid)> = pairs.iter().copied().collect();
    Ok(found.into_iter().filter(|p| wanted.contains(p)).collect())
}

/// Records a batch in one transaction and adds its counters.
pub async fn record_batch(
    conn: &mut AsyncPgConnection,
    executions: &[ExecutionRow],
    suppressions: &[SuppressionRow],
) -> Result<Recorded, DbError> {
    if executions.is_empty() && suppressions.is_empty() {
        return Ok(Recorded::default());
    }
    conn.transaction::<_, DbError, _>(async |conn| {
        // `insert_new` skips an empty batch and conflicting (rule, event) pairs.
        let new_executions: HashSet<Uuid> = executions::insert_new(conn, executions)
            .await?
            .into_iter()
            .collect();
        let new_suppressions: HashSet<(Uuid, Uuid)> = if suppressions.is_empty() {
            HashSet::new()
        } else {
            diesel::insert_into(rule_suppressions::table)
                .values(suppressions)
                .on_conflict((rule_suppressions::rule_id, rule_suppressions::event_id))
                .do_nothing()
                .returning((rule_suppressions::rule_id, rule_suppressions::event_id))
                .get_results::<(Uuid, Uuid)>(conn)
                .await?
                .into_iter()
                .collect()
        };
        let executed: Vec<&ExecutionRow> = executions
            .iter()
            .filter(|e| new_executions.contains(&e.id))
            .collect();
        let suppressed: Vec<&SuppressionRow> = suppressions
            .iter()
            .filter(|s| new_suppressions.contains(&(s.rule_id, s.event_id)))
            .collect();
        stats::add(conn, &minute_counters(&executed, &suppressed)).await?;
        Ok(Recorded {
            executions: executed.len(),
            suppressions: suppressed.len(),
        })
    })
    .await
}

fn minute(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::minutes(1)).unwrap_or(t)
}

/// Merges outcomes into one counter row per (rule, minute), sorted so concurrent
/// writers lock rows in the same order.
fn minute_counters(executed: &[&ExecutionRow], suppressed: &[&SuppressionRow]) -> Vec<StatsRow> {
    let mut rows: HashMap<(Uuid, DateTime<Utc>), StatsRow> = HashMap::new();
    for e in executed {
        let bucket_start = minute(e.executed_at);
        let row = rows
            .entry((e.rule_id, bucket_start))
            .or_insert_with(|| StatsRow::empty(e.rule_id, bucket_start));
        row.matched += 1;
        row.executed += 1;
        if rules_core::Status::parse(&e.status) == Some(rules_core::Status::Failed) {
            row.failed += 1;
        } else {
            row.succeeded += 1;
        }
        let duration = u32::try_from(e.duration_ms.max(0)).unwrap_or(u32::MAX);
        row.duration_ms_sum += i64::from(duration);
        histogram_add(&mut row.duration_histogram, &histogram_of(duration));
        row.last_executed_at = row.last_executed_at.max(Some(e.executed_at));
    }
    for s in suppressed {
        let bucket_start = minute(s.suppressed_at);
        let row = rows
            .entry((s.rule_id, bucket_start))
            .or_insert_with(|| StatsRow::empty(s.rule_id, bucket_start));
        row.matched += 1;
        row.suppressed_by_cooldown += 1;
    }
    let mut rows: Vec<StatsRow> = rows.into_values().collect();
    rows.sort_by_key(|r| (r.rule_id, r.bucket_start));
    rows
}
