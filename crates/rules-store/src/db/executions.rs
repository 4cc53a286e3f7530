//! The execution log: one row per (rule, event) that ran its actions.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::raw_json::RawJson;
use super::schema::rule_executions;
use super::{prepared, DbError};

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
    /// `{"actions": [...]}` (and `error` when none could run), as JSON text: written
    /// once by the worker, passed through by the API.
    pub result: RawJson,
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

/// How far back each look of [`list_for_rule`] reaches from the page's start, in
/// days: a day, then a week, then a month, then all the rest.
const LOOKS: [Option<i64>; 4] = [Some(1), Some(7), Some(30), None];

/// One page of a rule's executions, newest first (`executed_at DESC, id DESC`).
///
/// Read in looks that reach further back each time (the last day from the page's
/// start, then the week, the month, the rest), until the page is full, each look
/// one statement of fixed text whose time bounds are parameters, run with a
/// generic plan: PostgreSQL plans it once per connection and prunes the partitions
/// outside the look's bounds as it starts each run. Planned per run with its values
/// (a custom plan), a query over a 90-day history's 100 partitions took 3–5 ms to
/// plan and 0.5 ms to run; generic, 0.5 ms in all. A busy rule's page is one look
/// at the newest day or two; the looks bound how many partitions a run starts.
///
/// A rarer status (`failed`, `skipped`) is sparse, often absent: its page is read
/// where the rule's counters say it lies (`Page::rare`). `counted_since` is how
/// far back the counters remember (`retention.stats_days` before now): before it,
/// only the log can tell.
pub async fn list_for_rule(
    conn: &mut AsyncPgConnection,
    rule_id: Uuid,
    filter: &ExecutionFilter,
    after: Option<ExecutionCursor>,
    limit: i64,
    counted_since: DateTime<Utc>,
) -> Result<Vec<ExecutionRow>, DbError> {
    use diesel_async::AsyncConnection;
    // The page starts at the cursor, or at `to`, or now.
    let start = match (after.map(|c| c.executed_at), filter.to) {
        (Some(c), Some(to)) => c.min(to),
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => Utc::now(),
    };
    conn.transaction::<_, DbError, _>(async |conn| {
        diesel::sql_query("SET LOCAL plan_cache_mode = force_generic_plan")
            .execute(conn)
            .await?;
        let page = Page {
            rule_id,
            filter,
            after,
            limit,
            start,
        };
        match filter.status {
            Some(rare) if rare != rules_core::Status::Succeeded => {
                page.rare(conn, rare, counted_since).await
            }
            status => page.in_looks(conn, status).await,
        }
    })
    .await
}

/// What [`list_for_rule`] is asked for, the page's start worked out.
struct Page<'a> {
    rule_id: Uuid,
    filter: &'a ExecutionFilter,
    after: Option<ExecutionCursor>,
    limit: i64,
    /// The cursor's time, or `to`, or now.
    start: DateTime<Utc>,
}

impl Page<'_> {
    /// All executions or the succeeded ones: in the [`LOOKS`], newest first, until
    /// the page is full or the range is read.
    async fn in_looks(
        &self,
        conn: &mut AsyncPgConnection,
        status: Option<rules_core::Status>,
    ) -> Result<Vec<ExecutionRow>, DbError> {
        let filter = self.filter;
        let mut rows = Vec::new();
        // Each look covers [since, before): `before` is where the previous one began.
        let mut before: Option<DateTime<Utc>> = None;
        for &days in &LOOKS {
            let since = days
                .map(|d| self.start - chrono::TimeDelta::days(d))
                .map(|since| filter.from.map_or(since, |from| since.max(from)));
            let look = Look {
                since: since.or(filter.from),
                // A previous look's start is at or before `to` already.
                before: before.or(filter.to),
                after: self.after,
                limit: self.limit - rows.len() as i64,
            };
            rows.extend(look.run(conn, self.rule_id, status).await?);
            let reached_from = matches!((since, filter.from), (Some(s), Some(f)) if s <= f);
            if rows.len() as i64 >= self.limit || since.is_none() || reached_from {
                break;
            }
            before = since;
        }
        Ok(rows)
    }

    /// A rarer status, where the counters put it: the log is read from the bucket
    /// where they count a page of it before the start (or from the oldest they
    /// count) in one look, over a handful of days for a rule that fails daily, none
    /// for a rule that never failed; then, for a page still short, the time before
    /// `counted_since` (older than the counters' retention, none by default: the
    /// counters are kept 400 days, the log 30), which only the log can tell.
    ///
    /// Sound because the recorder writes a failure's counter in the transaction that
    /// records it (`record::record_batch`), in the minute of its execution time, and
    /// the roll-up moves minutes into the quarter hours that hold them: every
    /// execution of the status at or after `counted_since` is counted in a bucket
    /// that starts at or before it.
    async fn rare(
        &self,
        conn: &mut AsyncPgConnection,
        rare: rules_core::Status,
        counted_since: DateTime<Utc>,
    ) -> Result<Vec<ExecutionRow>, DbError> {
        let filter = self.filter;
        let counted = counted_buckets(conn, self.rule_id, rare, self.start, self.limit).await?;
        let mut rows = Vec::new();
        let mut uncounted_before = counted_since.min(self.start);
        if let Some(since) = window_start(&counted, self.start, self.limit) {
            let look = Look {
                since: Some(filter.from.map_or(since, |from| since.max(from))),
                before: filter.to,
                after: self.after,
                limit: self.limit,
            };
            rows = look.run(conn, self.rule_id, Some(rare)).await?;
            uncounted_before = uncounted_before.min(since);
        }
        let reaches_uncounted = filter.from.is_none_or(|from| from < uncounted_before);
        if (rows.len() as i64) < self.limit && reaches_uncounted {
            let look = Look {
                since: filter.from,
                before: Some(
                    filter
                        .to
                        .map_or(uncounted_before, |to| to.min(uncounted_before)),
                ),
                after: self.after,
                limit: self.limit - rows.len() as i64,
            };
            rows.extend(look.run(conn, self.rule_id, Some(rare)).await?);
        }
        Ok(rows)
    }
}

/// A counter bucket (a minute or a quarter hour) that counted `count` executions of
/// a status.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
struct CountedBucket {
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    bucket_start: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Int4)]
    width_seconds: i32,
    #[diesel(sql_type = diesel::sql_types::Int8)]
    count: i64,
}

/// The statement of [`counted_buckets`] for the counter column `$c`: the newest
/// `$3` minutes and the newest `$3` quarter hours of rule `$1` starting at or
/// before `$2` that counted one (an index of each table holds those of `failed`,
/// migration 000016).
macro_rules! counted_buckets_sql {
    ($c:literal) => {
        concat!(
            "(SELECT bucket_start, 60 AS width_seconds, ",
            $c,
            " AS count FROM rule_stats_minute \
              WHERE rule_id = $1 AND ",
            $c,
            " > 0 AND bucket_start <= $2 \
              ORDER BY bucket_start DESC LIMIT $3) \
             UNION ALL \
             (SELECT bucket_start, 900, ",
            $c,
            " FROM rule_stats_quarter \
              WHERE rule_id = $1 AND ",
            $c,
            " > 0 AND bucket_start <= $2 \
              ORDER BY bucket_start DESC LIMIT $3)"
        )
    };
}

/// The rule's newest counter buckets of status `rare` that start at or before
/// `start`, newest first: enough of them to hold `limit` executions that precede
/// `start` (each counts one at least, and in each table only one bucket holds
/// `start` itself), or all of them.
async fn counted_buckets(
    conn: &mut AsyncPgConnection,
    rule_id: Uuid,
    rare: rules_core::Status,
    start: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<CountedBucket>, DbError> {
    use diesel::sql_types::{Int8, Timestamptz, Uuid as SqlUuid};
    let sql = match rare {
        rules_core::Status::Skipped => counted_buckets_sql!("skipped"),
        // `Succeeded` is never asked for here: its pages are read in looks.
        rules_core::Status::Failed | rules_core::Status::Succeeded => {
            counted_buckets_sql!("failed")
        }
    };
    let mut buckets: Vec<CountedBucket> = prepared::statement(sql)
        .bind::<SqlUuid, _>(rule_id)
        .bind::<Timestamptz, _>(start)
        .bind::<Int8, _>(limit.saturating_add(1))
        .load(conn)
        .await?;
    buckets.sort_unstable_by_key(|b| std::cmp::Reverse(b.bucket_start));
    Ok(buckets)
}

/// Where a page of `limit` counted executions before `start` begins: the start of
/// the newest bucket at which the buckets wholly before `start` count `limit`, or
/// the oldest bucket's (all of them count fewer); `None` when nothing is counted.
/// `buckets` newest first, as [`counted_buckets`] gives them: when a table's
/// buckets were cut at its limit, those it gave count `limit` already.
fn window_start(
    buckets: &[CountedBucket],
    start: DateTime<Utc>,
    limit: i64,
) -> Option<DateTime<Utc>> {
    let mut counted = 0;
    for b in buckets {
        if b.bucket_start + chrono::TimeDelta::seconds(i64::from(b.width_seconds)) <= start {
            counted += b.count;
        }
        if counted >= limit {
            return Some(b.bucket_start);
        }
    }
    buckets.last().map(|b| b.bucket_start)
}

/// `status <> 'succeeded'`, written as that literal (the predicate of the partial
/// index of the rarer statuses, which a parameter could not prove) by a statically
/// typed expression, so that the statement stays cacheable (`dsl::sql` is not).
#[derive(Debug, Clone, Copy, diesel::query_builder::QueryId, diesel::expression::ValidGrouping)]
struct NotSucceeded;

impl Expression for NotSucceeded {
    type SqlType = diesel::sql_types::Bool;
}

impl AppearsOnTable<rule_executions::table> for NotSucceeded {}

impl SelectableExpression<rule_executions::table> for NotSucceeded {}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for NotSucceeded {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        out.push_sql("\"rule_executions\".\"status\" <> 'succeeded'");
        Ok(())
    }
}

/// One look of [`list_for_rule`]: the newest `limit` of a rule's executions in
/// `[since, before)` (either end open when `None`) that come after `after`.
struct Look {
    since: Option<DateTime<Utc>>,
    before: Option<DateTime<Utc>>,
    after: Option<ExecutionCursor>,
    limit: i64,
}

impl Look {
    /// The open ends' stand-ins: no execution is recorded outside them.
    const EARLIEST: DateTime<Utc> = DateTime::UNIX_EPOCH;
    /// 9999-12-31T00:00:00Z.
    const LATEST: DateTime<Utc> = match DateTime::from_timestamp(253_402_214_400, 0) {
        Some(at) => at,
        None => DateTime::UNIX_EPOCH,
    };

    /// Every bound a parameter and the statement's text the same for every look
    /// of one status filter, so diesel keeps it prepared on the connection (a
    /// statically typed query, never boxed) and PostgreSQL keeps its generic plan.
    async fn run(
        &self,
        conn: &mut AsyncPgConnection,
        rule_id: Uuid,
        status: Option<rules_core::Status>,
    ) -> Result<Vec<ExecutionRow>, DbError> {
        use rule_executions::dsl as e;
        let (cursor_at, cursor_id) = self
            .after
            .map_or_else(|| (Self::LATEST, Uuid::max()), |c| (c.executed_at, c.id));
        let page = e::rule_executions
            .filter(e::rule_id.eq(rule_id))
            .filter(e::executed_at.ge(self.since.unwrap_or(Self::EARLIEST)))
            .filter(e::executed_at.lt(self.before.unwrap_or(Self::LATEST)))
            // The first filter is implied by the second; stated, it bounds the
            // index scan and prunes the partitions after the cursor's.
            .filter(e::executed_at.le(cursor_at))
            .filter(
                e::executed_at
                    .lt(cursor_at)
                    .or(e::executed_at.eq(cursor_at).and(e::id.lt(cursor_id))),
            );
        let newest = (e::executed_at.desc(), e::id.desc());
        Ok(match status {
            None => {
                page.order(newest)
                    .limit(self.limit)
                    .select(ExecutionRow::as_select())
                    .load(conn)
                    .await?
            }
            Some(rules_core::Status::Succeeded) => {
                page.filter(e::status.eq(rules_core::Status::Succeeded.as_str()))
                    .order(newest)
                    .limit(self.limit)
                    .select(ExecutionRow::as_select())
                    .load(conn)
                    .await?
            }
            // A rarer status states `status <> 'succeeded'` as a literal, so the
            // generic plan reads their partial index (migration 000012).
            Some(rare) => {
                page.filter(e::status.eq(rare.as_str()))
                    .filter(NotSucceeded)
                    .order(newest)
                    .limit(self.limit)
                    .select(ExecutionRow::as_select())
                    .load(conn)
                    .await?
            }
        })
    }
}

/// Records executions; a row whose `(rule_id, event_id, event_day)` is already
/// recorded is skipped. Returns the ids actually inserted.
///
/// The pair goes into the decision memory (`rule_execution_keys`, by event day)
/// first; only the rows whose pair was new go on to the history (`rule_executions`,
/// by execution time), joined on the execution id (migration 000012).
///
/// A batch of [`PLAIN_INSERT_FROM`] rows or more is first inserted without `ON
/// CONFLICT`, under a savepoint: its pairs were looked up before the gate, so a
/// recorded one is rare (a duplicate decided by another entry meanwhile), and
/// PostgreSQL's speculative insertion, which `ON CONFLICT` needs, costs about 2 µs a
/// row (2,200 keys: 11 ms against 6.6). A unique violation rolls the attempt back
/// to the savepoint and the batch goes again skipping what is recorded. A smaller
/// batch goes that way at once: the savepoint's two statements would cost more than
/// they save.
pub async fn insert_new(
    conn: &mut AsyncPgConnection,
    rows: &[ExecutionRow],
) -> Result<Vec<Uuid>, DbError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    if rows.len() >= PLAIN_INSERT_FROM {
        use diesel_async::AsyncConnection;
        let plain = conn
            .transaction::<_, DbError, _>(async |conn| insert(conn, rows, INSERT_ALL_NEW).await)
            .await;
        match plain {
            Err(e) if e.is_unique_violation() => {}
            done => return done,
        }
    }
    insert(conn, rows, INSERT_SKIPPING_RECORDED).await
}

/// The batch size from which [`insert_new`] tries a plain insert first.
pub const PLAIN_INSERT_FROM: usize = 64;

/// The rows travel as one array per column (`unnest`), so the statement's text and
/// its parameters are the same few for any number of rows, where a multi-row
/// `VALUES` list is a longer statement for every size: one statement kept
/// prepared on the connection (`db::prepared`). `$conflict` is where the two
/// statements differ.
macro_rules! insert_statement {
    ($conflict:literal) => {
        concat!(
            "WITH batch AS ( \
               SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], \
                 $5::timestamptz[], $6::text[], $7::int4[], $8::jsonb[], $9::date[]) \
                 AS b(id, rule_id, event_id, livestream_id, executed_at, status, duration_ms, \
                      result, event_day) \
             ), new_keys AS ( \
               INSERT INTO rule_execution_keys (rule_id, event_id, event_day, execution_id) \
               SELECT rule_id, event_id, event_day, id FROM batch ",
            $conflict,
            " RETURNING execution_id \
             ) \
             INSERT INTO rule_executions \
               (id, rule_id, event_id, livestream_id, executed_at, status, duration_ms, result, \
                event_day) \
             SELECT b.* FROM batch b JOIN new_keys k ON k.execution_id = b.id \
             RETURNING id"
        )
    };
}

/// Fails on a pair already recorded (a unique violation).
const INSERT_ALL_NEW: &str = insert_statement!("");
/// Skips a pair already recorded.
const INSERT_SKIPPING_RECORDED: &str =
    insert_statement!("ON CONFLICT (rule_id, event_id, event_day) DO NOTHING");

async fn insert(
    conn: &mut AsyncPgConnection,
    rows: &[ExecutionRow],
    statement: &'static str,
) -> Result<Vec<Uuid>, DbError> {
    use diesel::sql_types::{Array, Date, Int4, Jsonb, Text, Timestamptz, Uuid as SqlUuid};
    #[derive(QueryableByName)]
    struct Inserted {
        #[diesel(sql_type = SqlUuid)]
        id: Uuid,
    }
    let column = |f: fn(&ExecutionRow) -> Uuid| rows.iter().map(f).collect::<Vec<Uuid>>();
    let inserted: Vec<Inserted> = prepared::statement(statement)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + chrono::TimeDelta::minutes(minute)
    }

    fn bucket(start_minute: i64, width_seconds: i32, count: i64) -> CountedBucket {
        CountedBucket {
            bucket_start: at(start_minute),
            width_seconds,
            count,
        }
    }

    #[test]
    fn a_window_starts_where_the_buckets_before_the_start_count_a_page() {
        // Newest first: a minute holding the start (not counted), two minutes, then
        // quarter hours.
        let buckets = [
            bucket(1_000, 60, 5),
            bucket(998, 60, 2),
            bucket(990, 60, 1),
            bucket(960, 900, 4),
            bucket(900, 900, 3),
        ];
        let start = at(1_000) + chrono::TimeDelta::seconds(30);
        assert_eq!(window_start(&buckets, start, 3), Some(at(990)));
        assert_eq!(window_start(&buckets, start, 4), Some(at(960)));
        assert_eq!(window_start(&buckets, start, 7), Some(at(960)));
        // More than is counted: from the oldest bucket.
        assert_eq!(window_start(&buckets, start, 100), Some(at(900)));
        assert_eq!(window_start(&[], start, 3), None);
    }

    #[test]
    fn a_bucket_that_ends_at_the_start_counts_and_one_that_holds_it_does_not() {
        let start = at(1_000);
        // Ends exactly at the start: wholly before it.
        assert_eq!(window_start(&[bucket(999, 60, 1)], start, 1), Some(at(999)));
        // Holds the start: its executions may all come after the cursor, so the
        // window reaches past it, to the oldest bucket.
        let buckets = [bucket(990, 900, 50), bucket(900, 60, 1)];
        assert_eq!(window_start(&buckets, start, 2), Some(at(900)));
    }
}
