//! The diesel schema matches the migrations, and the tables enforce their invariants.

use chrono::{DurationRound, TimeDelta, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use rules_core::{parse_rule_spec, Rule};
use rules_e2e::{execution_row, TestDb};
use rules_store::db::executions::{insert_new, ExecutionRow};
use rules_store::db::raw_json::RawJson;
use rules_store::db::rules::{self as rules_db, RuleRow};
use rules_store::db::schema::{rule_executions, rule_stats_minute};
use serde_json::json;
use uuid::Uuid;

fn sample_rule() -> Rule {
    let spec = parse_rule_spec(&json!({
        "livestream_id": Uuid::new_v4(), "name": "Big donation", "description": "d",
        "trigger_config": {"event_types": ["donation.received"],
            "condition": {"field": "data.amount", "op": "gte", "value": 10},
            "threshold": {"count": 2, "window_seconds": 60}},
        "actions": [{"type": "publish", "stream": "overlay:alerts"}],
        "cooldown_seconds": 30, "cooldown_key": "data.user.id"
    }))
    .expect("valid rule");
    let now = Utc::now()
        .duration_trunc(TimeDelta::microseconds(1))
        .expect("truncates");
    Rule {
        id: Uuid::new_v4(),
        spec,
        version: 1,
        created_at: now,
        updated_at: now,
    }
}

#[tokio::test]
async fn rules_round_trip_through_the_table() -> anyhow::Result<()> {
    let db = TestDb::migrated().await?;
    let mut conn = db.conn().await?;
    let rule = sample_rule();
    rules_db::insert(&mut conn, &RuleRow::from_rule(&rule)).await?;
    let row = rules_db::find(&mut conn, rule.id).await?.expect("stored");
    assert_eq!(row.clone().into_rule()?, rule);
    assert!(rules_db::find(&mut conn, Uuid::new_v4()).await?.is_none());

    let mut disabled = sample_rule();
    disabled.spec.enabled = false;
    rules_db::insert(&mut conn, &RuleRow::from_rule(&disabled)).await?;
    let enabled: Vec<Uuid> = rules_db::load_enabled(&mut conn)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(enabled, vec![rule.id]);
    let compiled = row.compile()?;
    assert_eq!(compiled.id(), rule.id);
    Ok(())
}

#[tokio::test]
async fn a_hand_edited_invalid_row_is_reported_not_trusted() -> anyhow::Result<()> {
    let db = TestDb::migrated().await?;
    let mut conn = db.conn().await?;
    let mut row = RuleRow::from_rule(&sample_rule());
    row.trigger_config =
        rules_store::db::raw_json::RawJson::from_value(&json!({"event_types": []}));
    rules_db::insert(&mut conn, &row).await?;
    let stored = rules_db::find(&mut conn, row.id).await?.expect("stored");
    let err = stored.into_rule().expect_err("invalid");
    assert!(
        err.to_string().contains("trigger_config.event_types"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn executions_are_unique_per_rule_and_event() -> anyhow::Result<()> {
    let db = TestDb::migrated().await?;
    let mut conn = db.conn().await?;
    let (rule_id, event_id) = (Uuid::new_v4(), Uuid::new_v4());
    let row = |id: Uuid| ExecutionRow {
        id,
        ..execution_row(rule_id, event_id, Utc::now().date_naive())
    };
    let first = row(Uuid::new_v4());
    assert_eq!(
        insert_new(&mut conn, std::slice::from_ref(&first)).await?,
        [first.id]
    );
    assert!(
        insert_new(&mut conn, &[row(Uuid::new_v4())])
            .await?
            .is_empty(),
        "the second delivery records nothing"
    );
    // Two rows of one pair in one batch: one recorded, in the history once.
    let (a, b) = (row(Uuid::new_v4()), row(Uuid::new_v4()));
    let pair = |r: ExecutionRow| ExecutionRow {
        event_id: Uuid::from_u128(7),
        ..r
    };
    assert_eq!(insert_new(&mut conn, &[pair(a), pair(b)]).await?.len(), 1);
    let history: i64 = rule_executions::table
        .filter(rule_executions::rule_id.eq(rule_id))
        .count()
        .get_result(&mut conn)
        .await?;
    assert_eq!(history, 2);
    let bad_status = diesel::sql_query(
        "INSERT INTO rule_executions VALUES (gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), now(), 'maybe', 1, '{}', current_date)",
    )
    .execute(&mut conn)
    .await;
    assert!(bad_status.is_err(), "status is checked");
    Ok(())
}

/// A batch of `PLAIN_INSERT_FROM` rows or more goes in without `ON CONFLICT` first,
/// under a savepoint; a pair recorded before it, or twice in it, fails that attempt
/// and the batch goes again skipping what is recorded, inside the same transaction.
#[tokio::test]
async fn a_large_batch_with_recorded_pairs_records_the_rest_once() -> anyhow::Result<()> {
    use diesel_async::AsyncConnection;
    use rules_store::db::executions::PLAIN_INSERT_FROM;
    let db = TestDb::migrated().await?;
    let mut conn = db.conn().await?;
    let rule_id = Uuid::new_v4();
    // Ids of their own: a pair twice in the batch is two executions of it.
    let row = |event_id: Uuid| ExecutionRow {
        id: Uuid::new_v4(),
        ..execution_row(rule_id, event_id, Utc::now().date_naive())
    };
    let history = async |conn: &mut diesel_async::AsyncPgConnection| -> anyhow::Result<i64> {
        Ok(rule_executions::table
            .filter(rule_executions::rule_id.eq(rule_id))
            .count()
            .get_result(conn)
            .await?)
    };
    // All new: every row in.
    let fresh: Vec<ExecutionRow> = (0..PLAIN_INSERT_FROM)
        .map(|_| row(Uuid::new_v4()))
        .collect();
    assert_eq!(
        insert_new(&mut conn, &fresh).await?.len(),
        PLAIN_INSERT_FROM
    );

    // One pair recorded before, one twice in the batch, in a transaction as the
    // recorder's: the rest once each, and the transaction still commits.
    let mut batch: Vec<ExecutionRow> = (0..PLAIN_INSERT_FROM)
        .map(|_| row(Uuid::new_v4()))
        .collect();
    batch.push(row(fresh[0].event_id));
    batch.push(row(batch[0].event_id));
    let inserted: std::collections::HashSet<Uuid> = conn
        .transaction::<_, anyhow::Error, _>(async |conn| Ok(insert_new(conn, &batch).await?))
        .await?
        .into_iter()
        .collect();
    let expected = batch[..PLAIN_INSERT_FROM].iter().map(|r| r.id).collect();
    assert_eq!(inserted, expected);
    assert_eq!(history(&mut conn).await?, 2 * PLAIN_INSERT_FROM as i64);
    Ok(())
}

#[tokio::test]
async fn minute_counters_add_up_and_keep_their_invariants() -> anyhow::Result<()> {
    let db = TestDb::migrated().await?;
    let mut conn = db.conn().await?;
    let rule_id = Uuid::new_v4();
    let bucket = Utc::now().duration_trunc(TimeDelta::minutes(1))?;
    let upsert = |matched: i64, executed: i64, suppressed: i64, failed: i64, hist: Vec<i64>| {
        diesel::insert_into(rule_stats_minute::table)
            .values((
                rule_stats_minute::rule_id.eq(rule_id),
                rule_stats_minute::bucket_start.eq(bucket),
                rule_stats_minute::matched.eq(matched),
                rule_stats_minute::executed.eq(executed),
                rule_stats_minute::suppressed_by_cooldown.eq(suppressed),
                rule_stats_minute::succeeded.eq(executed - failed),
                rule_stats_minute::failed.eq(failed),
                rule_stats_minute::duration_ms_sum.eq(executed * 10),
                rule_stats_minute::duration_histogram.eq(hist),
            ))
            .on_conflict((rule_stats_minute::rule_id, rule_stats_minute::bucket_start))
            .do_update()
            .set((
                rule_stats_minute::matched.eq(rule_stats_minute::matched
                    + diesel::upsert::excluded(rule_stats_minute::matched)),
                rule_stats_minute::executed.eq(rule_stats_minute::executed
                    + diesel::upsert::excluded(rule_stats_minute::executed)),
                rule_stats_minute::suppressed_by_cooldown
                    .eq(rule_stats_minute::suppressed_by_cooldown
                        + diesel::upsert::excluded(rule_stats_minute::suppressed_by_cooldown)),
                rule_stats_minute::succeeded.eq(rule_stats_minute::succeeded
                    + diesel::upsert::excluded(rule_stats_minute::succeeded)),
                rule_stats_minute::failed
                    .eq(rule_stats_minute::failed
                        + diesel::upsert::excluded(rule_stats_minute::failed)),
            ))
    };
    upsert(3, 2, 1, 1, vec![1, 1]).execute(&mut conn).await?;
    upsert(2, 2, 0, 0, vec![0, 0, 2]).execute(&mut conn).await?;
    diesel::sql_query(
        "UPDATE rule_stats_minute SET duration_histogram = histogram_add(duration_histogram, ARRAY[0,0,2]::bigint[])",
    )
    .execute(&mut conn)
    .await?;
    let (matched, executed, hist): (i64, i64, Vec<i64>) = rule_stats_minute::table
        .select((
            rule_stats_minute::matched,
            rule_stats_minute::executed,
            rule_stats_minute::duration_histogram,
        ))
        .first(&mut conn)
        .await?;
    assert_eq!((matched, executed), (5, 4));
    // Sums are padded with zeros to the service's 16 buckets (migration 000010).
    let mut expected = vec![1, 1, 2];
    expected.resize(rules_store::db::stats::HISTOGRAM_LEN, 0);
    assert_eq!(hist, expected);
    // matched = executed + suppressed is enforced by the table.
    assert!(upsert(5, 1, 1, 0, vec![]).execute(&mut conn).await.is_err());
    Ok(())
}

/// The SQL `histogram_add` (the upsert's and the roll-up's) sums as the worker's
/// Rust one does, for the service's 16-bucket histograms (inlined since migration
/// 000010), shorter ones, and longer ones (the general form).
#[tokio::test]
async fn histogram_add_in_sql_sums_as_the_worker_does() -> anyhow::Result<()> {
    use rules_store::db::stats::{histogram_add, HISTOGRAM_LEN};
    #[derive(QueryableByName)]
    struct Sum {
        #[diesel(sql_type = diesel::sql_types::Array<diesel::sql_types::BigInt>)]
        sum: Vec<i64>,
    }
    let db = TestDb::migrated().await?;
    let mut conn = db.conn().await?;
    let full: Vec<i64> = (1..=HISTOGRAM_LEN as i64).collect();
    let long: Vec<i64> = (1..=HISTOGRAM_LEN as i64 + 3).collect();
    for (a, b) in [
        (vec![], vec![]),
        (vec![], vec![0, 4]),
        (full.clone(), vec![1]),
        (full.clone(), full.clone()),
        (long.clone(), full.clone()),
        (vec![2], long.clone()),
    ] {
        let Sum { sum } = diesel::sql_query("SELECT histogram_add($1, $2) AS sum")
            .bind::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(&a)
            .bind::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(&b)
            .get_result(&mut conn)
            .await?;
        let mut expected = a.clone();
        histogram_add(&mut expected, &b);
        let longest = a.len().max(b.len());
        if longest <= HISTOGRAM_LEN {
            expected.resize(HISTOGRAM_LEN, 0);
        }
        assert_eq!(sum, expected, "{a:?} + {b:?}");
    }
    Ok(())
}

/// The recorder's and the analytics' raw statements are kept prepared on the
/// connection (`db::prepared`): PostgreSQL plans each once per connection, where
/// a `sql_query` is parsed and planned on every call (diesel does not cache it,
/// and nothing of it shows in `pg_prepared_statements`).
#[tokio::test]
async fn raw_statements_are_prepared_once_per_connection() -> anyhow::Result<()> {
    use rules_store::db::stats::{self, StatsRow};
    #[derive(diesel::QueryableByName)]
    struct Prepared {
        #[diesel(sql_type = diesel::sql_types::Text)]
        statement: String,
    }
    let db = TestDb::migrated().await?;
    let mut conn = db.conn().await?;
    let rule = Uuid::new_v4();
    let now = Utc::now().duration_trunc(TimeDelta::minutes(1))?;
    for i in 0..3 {
        let row = ExecutionRow {
            id: Uuid::new_v4(),
            rule_id: rule,
            event_id: Uuid::new_v4(),
            livestream_id: Uuid::new_v4(),
            executed_at: Utc::now(),
            status: rules_core::Status::Succeeded,
            duration_ms: 12,
            result: RawJson::from_value(&json!({"actions": []})),
            event_day: Utc::now().date_naive(),
        };
        assert_eq!(insert_new(&mut conn, &[row]).await?.len(), 1);
        stats::add(
            &mut conn,
            &[StatsRow::empty(rule, now - TimeDelta::minutes(i))],
        )
        .await?;
        let range = (now - TimeDelta::days(2), now + TimeDelta::minutes(1));
        let starts = [range.0, now - TimeDelta::days(1)];
        stats::sum_by_bucket(&mut conn, rule, range, &starts).await?;
        stats::sum_by_day(&mut conn, rule, range, &starts).await?;
    }
    let prepared: Vec<String> =
        diesel::sql_query("SELECT statement FROM pg_prepared_statements ORDER BY statement")
            .load::<Prepared>(&mut conn)
            .await?
            .into_iter()
            .map(|p| p.statement)
            .collect();
    for (what, text) in [
        ("insert_new", "INSERT INTO rule_execution_keys"),
        ("stats::add", "INSERT INTO rule_stats_minute"),
        ("sum_by_bucket", "WITH r AS MATERIALIZED"),
        ("sum_by_day", "FROM rule_stats_day"),
    ] {
        let n = prepared.iter().filter(|s| s.contains(text)).count();
        assert_eq!(n, 1, "{what}: prepared {n} times: {prepared:#?}");
    }
    Ok(())
}

/// No table of the migrated schema has two indexes of one definition (same
/// method, columns, operator classes, expressions and predicate): the second is
/// written on every insert for nothing. Migration 000013 left one (a BRIN index
/// copied by `LIKE … INCLUDING ALL` and created again), which 000015 drops.
#[tokio::test]
async fn no_table_has_two_indexes_alike() -> anyhow::Result<()> {
    use diesel::sql_types::Text;
    #[derive(QueryableByName)]
    struct Alike {
        #[diesel(sql_type = Text)]
        indexes: String,
    }
    let db = TestDb::migrated().await?;
    let mut conn = db.conn().await?;
    let alike: Vec<Alike> = diesel::sql_query(
        "SELECT string_agg(i.indexrelid::regclass::text, ', ' ORDER BY i.indexrelid) AS indexes \
         FROM pg_index i \
         JOIN pg_class t ON t.oid = i.indrelid \
         JOIN pg_class x ON x.oid = i.indexrelid \
         WHERE t.relnamespace = 'public'::regnamespace \
         GROUP BY i.indrelid, x.relam, i.indkey::text, i.indclass::text, \
           coalesce(pg_get_expr(i.indexprs, i.indrelid), ''), \
           coalesce(pg_get_expr(i.indpred, i.indrelid), '') \
         HAVING count(*) > 1",
    )
    .load(&mut conn)
    .await?;
    let alike: Vec<String> = alike.into_iter().map(|a| a.indexes).collect();
    assert!(alike.is_empty(), "indexes alike: {alike:?}");
    Ok(())
}

/// A rule's answer in days reads its day rows and the counts of its quarter hours
/// around the midnights from the primary keys alone (migration 000017): heap pages
/// of a handful, not one per day. The rows are laid out as the roll-up writes them,
/// a day of every rule at a time, so the rule's 40 days lie on 40 pages of each
/// table; before 000017 the answer read every one of them.
#[tokio::test]
async fn an_answer_in_days_reads_the_counters_from_their_keys() -> anyhow::Result<()> {
    use rules_store::db::stats;
    let db = TestDb::migrated().await?;
    let mut conn = db.conn().await?;
    let midnight = Utc::now().duration_trunc(TimeDelta::days(1))?;
    // 150 rules' day rows for 40 days, and their quarter hours of the two hours
    // before each UTC midnight (where a Berlin day starts), day after day.
    lay_out_counters(&mut conn, midnight, 150, 9, -8..=-1).await?;
    let rule: Uuid = RULE_ONE.parse()?;
    // Days starting an hour before UTC midnight, as Berlin's do in winter.
    let (range, starts) = days_starting_before_midnight(midnight, 1);
    let tables = ["rule_stats_day", "rule_stats_quarter"];
    let (sums, read) = blocks_read(&mut conn, &tables, move |conn| {
        Box::pin(async move { Ok(stats::sum_by_day(conn, rule, range, &starts).await?) })
    })
    .await?;
    let [day, quarter] = read[..] else {
        anyhow::bail!("two tables, two counts: {read:?}");
    };
    let executed: i64 = sums.iter().map(|s| s.executed).sum();
    assert!(
        executed > 30 * 9,
        "the answer counts the rule's days: {executed}"
    );
    // The visibility map's page, and the table's pages of the two outer windows'
    // durations and of the last execution.
    assert!(day <= 3, "day rows' pages read: {day}");
    assert!(quarter <= 6, "quarter hours' pages read: {quarter}");
    Ok(())
}

/// The windows of an answer in a time zone's days (the quarter hours between each
/// local midnight and UTC's: the same hours of every day) are read by time of day
/// (migration 000019), one range scan over a few pages of that index, not a
/// descent of the primary key a day: a busy rule's quarter hours of a day fill a
/// page or more of the key, so its windows of 38 days were as many descents.
#[tokio::test]
async fn an_answer_in_days_reads_its_windows_by_time_of_day() -> anyhow::Result<()> {
    use rules_store::db::stats;
    let db = TestDb::migrated().await?;
    let mut conn = db.conn().await?;
    let midnight = Utc::now().duration_trunc(TimeDelta::days(1))?;
    // 20 rules' every quarter hour of 40 days, a day at a time (as the roll-up
    // writes them), and their day rows.
    lay_out_counters(&mut conn, midnight, 20, 96, 0..=95).await?;
    let rule: Uuid = RULE_ONE.parse()?;
    // Days starting two hours before UTC midnight, as Berlin's do in summer.
    let (range, starts) = days_starting_before_midnight(midnight, 2);
    let keys = [
        "rule_stats_quarter_pkey",
        "rule_stats_quarter_time_of_day_idx",
    ];
    let days = starts.len();
    let (sums, read) = blocks_read(&mut conn, &keys, move |conn| {
        Box::pin(async move { Ok(stats::sum_by_day(conn, rule, range, &starts).await?) })
    })
    .await?;
    let read: i64 = read.iter().sum();
    // Every bucket counts 96 quarter hours a day (the first and last: their part).
    let mut executed = vec![0; days + 1];
    for s in &sums {
        if let Some(e) = usize::try_from(s.bucket)
            .ok()
            .and_then(|b| executed.get_mut(b))
        {
            *e += s.executed;
        }
    }
    assert!(
        executed[2..days].iter().all(|e| *e == 96),
        "a full day a bucket: {executed:?}"
    );
    // The two outer windows' descents and the last execution's, and the range
    // scan's few leaf pages: 25 here, 128 with a descent a day.
    assert!(read <= 40, "pages of the quarter hours' keys read: {read}");
    Ok(())
}

/// What `op` returns, and the blocks it asked of each of `relations`: counted in
/// one transaction, where the counts are not yet flushed to the shared statistics,
/// so the difference between before and after is what `op` ran.
async fn blocks_read<T: Send>(
    conn: &mut diesel_async::AsyncPgConnection,
    relations: &[&str],
    op: impl for<'c> FnOnce(&'c mut diesel_async::AsyncPgConnection) -> Op<'c, T> + Send,
) -> anyhow::Result<(T, Vec<i64>)> {
    use diesel_async::AsyncConnection;
    conn.transaction::<_, anyhow::Error, _>(async |conn| {
        let before = blocks_fetched(conn, relations).await?;
        let out = op(conn).await?;
        let after = blocks_fetched(conn, relations).await?;
        Ok((out, after.iter().zip(before).map(|(a, b)| a - b).collect()))
    })
    .await
}

/// What [`blocks_read`] runs: a future on the transaction's connection.
type Op<'c, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<T>> + Send + 'c>>;

/// The blocks this transaction has asked of each of `relations` so far, in order.
async fn blocks_fetched(
    conn: &mut diesel_async::AsyncPgConnection,
    relations: &[&str],
) -> anyhow::Result<Vec<i64>> {
    let fetched: Vec<rules_e2e::Count> = diesel::sql_query(
        "SELECT pg_stat_get_xact_blocks_fetched(r::regclass) AS n \
         FROM unnest($1::text[]) WITH ORDINALITY AS t(r, i) ORDER BY i",
    )
    .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(relations)
    .load(conn)
    .await?;
    Ok(fetched.into_iter().map(|f| f.n).collect())
}

/// md5('1') as a uuid: the rule whose rows the day-answer tests lay out.
const RULE_ONE: &str = "c4ca4238-a0b9-2382-0dcc-509a6f75849b";

/// Counters as the roll-up writes them, a day of every rule at a time, for the 40
/// days before `midnight`: rules md5('1') ([`RULE_ONE`]) to md5(`rules`), each a day
/// row of `per_day` executions and, of every day, the quarter hours `quarters`
/// (counted from its midnight; before it when negative) of one execution each.
/// Then vacuumed and analyzed, each table its own statement (VACUUM runs outside a
/// transaction): their visibility maps set, so reads are index-only.
async fn lay_out_counters(
    conn: &mut diesel_async::AsyncPgConnection,
    midnight: At,
    rules: i32,
    per_day: i32,
    quarters: std::ops::RangeInclusive<i32>,
) -> anyhow::Result<()> {
    use diesel_async::SimpleAsyncConnection;
    let (first, last) = quarters.into_inner();
    conn.batch_execute(&format!(
        "INSERT INTO rule_stats_day (rule_id, bucket_start, matched, executed, succeeded, \
           duration_ms_sum, duration_histogram) \
         SELECT md5(r::text)::uuid, '{midnight}'::timestamptz - d * interval '1 day', \
           {per_day}, {per_day}, {per_day}, {per_day} * 10, \
           ARRAY[0, {per_day}, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]::int8[] \
         FROM generate_series(1, 40) d, generate_series(1, {rules}) r ORDER BY d DESC, r; \
         INSERT INTO rule_stats_quarter (rule_id, bucket_start, matched, executed, succeeded, \
           duration_ms_sum, duration_histogram) \
         SELECT md5(r::text)::uuid, '{midnight}'::timestamptz - d * interval '1 day' \
           + q * interval '15 minutes', 1, 1, 1, 10, '{{0,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0}}' \
         FROM generate_series(1, 40) d, generate_series(1, {rules}) r, \
           generate_series({first}, {last}) q \
         ORDER BY d DESC, r, q;"
    ))
    .await?;
    for table in ["rule_stats_day", "rule_stats_quarter"] {
        conn.batch_execute(&format!("VACUUM ANALYZE {table}"))
            .await?;
    }
    Ok(())
}

type At = chrono::DateTime<Utc>;

/// 38 days of a time zone whose days start `hours` before UTC midnight, ending
/// before `midnight`: the range, and the days' starts.
fn days_starting_before_midnight(midnight: At, hours: i64) -> ((At, At), Vec<At>) {
    let from = midnight - TimeDelta::days(38) + TimeDelta::hours(5);
    let to = midnight - TimeDelta::hours(3);
    let starts = std::iter::once(from)
        .chain(
            (1..38)
                .rev()
                .map(|d| midnight - TimeDelta::days(d) - TimeDelta::hours(hours)),
        )
        .collect();
    ((from, to), starts)
}

/// A page of failures of a rule that never failed reads the partial index of the
/// buckets that counted one (empty for it), not the rule's every quarter hour
/// through the primary key, which carries `failed` too since migration 000017
/// (PostgreSQL chose it, backwards, until the partial index carried the count).
#[tokio::test]
async fn a_rule_without_failures_reads_no_quarter_hour_for_a_page_of_them() -> anyhow::Result<()> {
    use diesel_async::SimpleAsyncConnection;
    use rules_store::db::executions::{list_for_rule, ExecutionFilter};
    let db = TestDb::migrated().await?;
    let mut conn = db.conn().await?;
    let midnight = Utc::now().duration_trunc(TimeDelta::days(1))?;
    // 20 rules' quarter hours over 30 days, a day at a time; every fifth rule failed
    // in some (md5('0'), the rule read, never).
    conn.batch_execute(&format!(
        "INSERT INTO rule_stats_quarter (rule_id, bucket_start, matched, executed, succeeded, failed) \
         SELECT md5(r::text)::uuid, '{midnight}'::timestamptz - d * interval '1 day' \
           + q * interval '15 minutes', 2, 2, 2 - f, f \
         FROM generate_series(1, 30) d, generate_series(0, 19) r, generate_series(0, 95) q, \
           LATERAL (SELECT CASE WHEN r % 5 = 4 AND q % 7 = 0 THEN 1 ELSE 0 END AS f) x \
         ORDER BY d DESC, r, q;"
    ))
    .await?;
    conn.batch_execute("VACUUM ANALYZE rule_stats_quarter")
        .await?;
    let rule: Uuid = "cfcd2084-95d5-65ef-66e7-dff9f98764da".parse()?; // md5('0')
    let failed = ExecutionFilter {
        status: Some(rules_core::Status::Failed),
        ..ExecutionFilter::default()
    };
    // In one transaction (the lister's own is a savepoint in it).
    let since = midnight - TimeDelta::days(400);
    let (page, read) = blocks_read(&mut conn, &["rule_stats_quarter_pkey"], move |conn| {
        Box::pin(async move { Ok(list_for_rule(conn, rule, &failed, None, 50, since).await?) })
    })
    .await?;
    let read: i64 = read.iter().sum();
    assert!(page.is_empty());
    // The planner may look up the key's newest entry (the page's start lies past
    // the statistics' range): a page or two. Through the key, 63.
    assert!(read <= 2, "pages of the quarter hours' key read: {read}");
    Ok(())
}
