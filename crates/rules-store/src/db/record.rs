//! Recording a batch of decisions: executions (`skipped` ones included),
//! suppressions, threshold counts and the per-minute counters derived from them, in
//! one transaction; and the one lookup that tells which pairs were decided before.
//!
//! These three tables are the gate's durable memory: every (rule, event) the gate
//! decided is in exactly one of them, so a redelivery, a second entry with the same
//! id or a replay of the stream is recognised however late it comes. Counters are
//! computed only from rows that were actually inserted (`ON CONFLICT DO NOTHING
//! RETURNING`), so a redelivered event is never counted twice, and `matched =
//! executed + suppressed_by_cooldown + skipped` holds by construction.

use chrono::{DateTime, DurationRound, NaiveDate, TimeDelta, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

use super::executions::{self, ExecutionRow};
use super::schema::{rule_suppressions, rule_threshold_counts};
use super::stats::{self, histogram_add, histogram_of, StatsRow};
use super::{prepared, DbError};

/// A match suppressed by a cooldown.
#[derive(Debug, Clone, PartialEq, Insertable)]
#[diesel(table_name = rule_suppressions)]
pub struct SuppressionRow {
    pub rule_id: Uuid,
    pub event_id: Uuid,
    pub suppressed_at: DateTime<Utc>,
    pub event_day: NaiveDate,
}

/// A match that counted toward a threshold without firing it.
#[derive(Debug, Clone, PartialEq, Insertable)]
#[diesel(table_name = rule_threshold_counts)]
pub struct CountRow {
    pub rule_id: Uuid,
    pub event_id: Uuid,
    pub counted_at: DateTime<Utc>,
    pub event_day: NaiveDate,
}

/// Everything a batch decided, to record together.
#[derive(Debug, Clone, Default)]
pub struct Decided {
    pub executions: Vec<ExecutionRow>,
    pub suppressions: Vec<SuppressionRow>,
    pub counts: Vec<CountRow>,
}

impl Decided {
    pub fn is_empty(&self) -> bool {
        self.executions.is_empty() && self.suppressions.is_empty() && self.counts.is_empty()
    }

    /// Empties it, keeping the capacity.
    pub fn clear(&mut self) {
        self.executions.clear();
        self.suppressions.clear();
        self.counts.clear();
    }

    /// The days of the partitions its rows go to, each once: the event days (the
    /// decision memory) and the UTC days of its executions (the history).
    pub fn days(&self) -> Vec<NaiveDate> {
        let mut days: Vec<NaiveDate> = (self.executions.iter())
            .flat_map(|e| [e.event_day, e.executed_at.date_naive()])
            .chain(self.suppressions.iter().map(|s| s.event_day))
            .chain(self.counts.iter().map(|c| c.event_day))
            .collect();
        days.sort_unstable();
        days.dedup();
        days
    }

    /// Sorts its rows by (rule, event): the order their unique keys are locked in.
    pub fn sort_by_key(&mut self) {
        self.executions
            .sort_unstable_by_key(|e| (e.rule_id, e.event_id));
        self.suppressions
            .sort_unstable_by_key(|s| (s.rule_id, s.event_id));
        self.counts
            .sort_unstable_by_key(|c| (c.rule_id, c.event_id));
    }

    pub fn append(&mut self, other: Decided) {
        self.executions.extend(other.executions);
        self.suppressions.extend(other.suppressions);
        self.counts.extend(other.counts);
    }
}

/// What a batch added (redelivered rows are not in these counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recorded {
    pub executions: usize,
    pub suppressions: usize,
    pub counts: usize,
}

#[derive(QueryableByName)]
struct PairRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    rule_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    event_id: Uuid,
}

/// The event day of the rows recorded before the log was partitioned (migration
/// 000007): they live in the `<table>_legacy` partitions until retention drops
/// them, and every lookup probes this day too.
pub const LEGACY_EVENT_DAY: NaiveDate = match NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(day) => day,
    None => NaiveDate::MIN,
};

/// A (rule, event) pair and the day of the event's time: the decision log's key.
pub type DecisionKey = (Uuid, Uuid, NaiveDate);

/// The (rule, event) pairs among `keys` already decided and recorded (executed,
/// skipped, suppressed or counted toward a threshold), in one query: the SQL
/// function `rules_decided` (migration 000009) probes each key's day's partition of
/// each table through its unique key, and the legacy partition while there is one,
/// with every plan but index probes disabled (a day's partition without statistics
/// yet, or a hash join's cost model, otherwise read the whole day per batch).
pub async fn already_decided(
    conn: &mut AsyncPgConnection,
    keys: &[DecisionKey],
) -> Result<HashSet<(Uuid, Uuid)>, DbError> {
    use diesel::sql_types::{Array, Date, Uuid as SqlUuid};
    if keys.is_empty() {
        return Ok(HashSet::new());
    }
    let found: Vec<PairRow> =
        prepared::statement("SELECT rule_id, event_id FROM rules_decided($1, $2, $3)")
            .bind::<Array<SqlUuid>, _>(keys.iter().map(|k| k.0).collect::<Vec<_>>())
            .bind::<Array<SqlUuid>, _>(keys.iter().map(|k| k.1).collect::<Vec<_>>())
            .bind::<Array<Date>, _>(keys.iter().map(|k| k.2).collect::<Vec<_>>())
            .load(conn)
            .await?;
    Ok(found.into_iter().map(|p| (p.rule_id, p.event_id)).collect())
}

/// Records a batch in one transaction and adds its counters. Callers that commit
/// at the same time as others sort the batch first ([`Decided::sort_by_key`]): two
/// batches sharing pairs then lock them in one order and never deadlock.
pub async fn record_batch(
    conn: &mut AsyncPgConnection,
    decided: &Decided,
) -> Result<Recorded, DbError> {
    if decided.is_empty() {
        return Ok(Recorded::default());
    }
    let Decided {
        executions,
        suppressions,
        counts,
    } = decided;
    conn.transaction::<_, DbError, _>(async |conn| {
        // `insert_new` skips an empty batch and conflicting (rule, event) pairs.
        let new_executions: HashSet<Uuid> = executions::insert_new(conn, executions)
            .await?
            .into_iter()
            .collect();
        let new_suppressions: HashSet<(Uuid, Uuid)> = insert_pairs(
            conn,
            "INSERT INTO rule_suppressions (rule_id, event_id, suppressed_at, event_day) \
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::date[]) \
             ON CONFLICT (rule_id, event_id, event_day) DO NOTHING RETURNING rule_id, event_id",
            suppressions
                .iter()
                .map(|s| (s.rule_id, s.event_id, s.suppressed_at, s.event_day)),
        )
        .await?
        .into_iter()
        .collect();
        let new_counts = insert_pairs(
            conn,
            "INSERT INTO rule_threshold_counts (rule_id, event_id, counted_at, event_day) \
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::date[]) \
             ON CONFLICT (rule_id, event_id, event_day) DO NOTHING RETURNING rule_id, event_id",
            counts
                .iter()
                .map(|c| (c.rule_id, c.event_id, c.counted_at, c.event_day)),
        )
        .await?
        .len();
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
            counts: new_counts,
        })
    })
    .await
}

/// Inserts (rule, event, time, event day) rows with `sql` (an `INSERT ... SELECT
/// FROM unnest($1, $2, $3, $4) ... RETURNING rule_id, event_id`: one statement text
/// for any number of rows); returns the pairs actually inserted.
async fn insert_pairs(
    conn: &mut AsyncPgConnection,
    sql: &'static str,
    rows: impl Iterator<Item = (Uuid, Uuid, DateTime<Utc>, NaiveDate)>,
) -> Result<Vec<(Uuid, Uuid)>, DbError> {
    use diesel::sql_types::{Array, Date, Timestamptz, Uuid as SqlUuid};
    let (mut rules, mut events, mut times, mut days) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (rule, event, time, day) in rows {
        rules.push(rule);
        events.push(event);
        times.push(time);
        days.push(day);
    }
    if rules.is_empty() {
        return Ok(Vec::new());
    }
    let inserted: Vec<PairRow> = prepared::statement(sql)
        .bind::<Array<SqlUuid>, _>(rules)
        .bind::<Array<SqlUuid>, _>(events)
        .bind::<Array<Timestamptz>, _>(times)
        .bind::<Array<Date>, _>(days)
        .load(conn)
        .await?;
    Ok(inserted
        .into_iter()
        .map(|p| (p.rule_id, p.event_id))
        .collect())
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
        match e.status {
            rules_core::Status::Skipped => {
                row.skipped += 1;
                continue;
            }
            rules_core::Status::Failed => row.failed += 1,
            rules_core::Status::Succeeded => row.succeeded += 1,
        }
        row.executed += 1;
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
