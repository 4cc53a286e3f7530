//! The decision log partitioned by event day (migration 000007) and the history by
//! execution day (000012): rows recorded before either stay recognised and
//! readable, new days get their own partitions, retention drops whole days, and the
//! worker and `rules-migrate maintain` keep the days ahead.

use chrono::{DurationRound, NaiveDate, TimeDelta, Utc};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use rules_e2e::worker::{eventually, Harness};
use rules_e2e::{execution_row, Count, Name, Process, TestDb};
use rules_store::config::RetentionSettings;
use rules_store::db::executions::ExecutionRow;
use rules_store::db::record::{already_decided, record_batch, Decided, LEGACY_EVENT_DAY};
use rules_store::db::retention::{maintain, PartitionChange};
use rules_store::db::PgTarget;
use std::time::Duration;
use uuid::Uuid;

const SETTINGS: RetentionSettings = RetentionSettings {
    executions_days: 30,
    partitions_ahead_days: 7,
    stats_minutes_days: 7,
    stats_days: 400,
};

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

async fn partitions(conn: &mut AsyncPgConnection, parent: &str) -> anyhow::Result<Vec<String>> {
    Ok(diesel::sql_query(format!(
        "SELECT inhrelid::regclass::text AS name FROM pg_inherits \
         WHERE inhparent = '{parent}'::regclass ORDER BY 1"
    ))
    .load::<Name>(conn)
    .await?
    .into_iter()
    .map(|n| n.name)
    .collect())
}

/// Applies the repository's migrations older than `before` (a version's prefix,
/// `2026-12-01-000007`) by their SQL, with diesel's bookkeeping, as a database
/// deployed before it would be.
async fn migrate_to(conn: &mut AsyncPgConnection, before: &str) -> anyhow::Result<usize> {
    conn.batch_execute(
        "CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, \
         run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    )
    .await?;
    let root = rules_e2e::workspace_root().join("migrations");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.as_str() < before)
        .collect();
    dirs.sort();
    for dir in &dirs {
        conn.batch_execute(&std::fs::read_to_string(root.join(dir).join("up.sql"))?)
            .await?;
        let version: String = dir
            .split('_')
            .next()
            .unwrap_or_default()
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        conn.batch_execute(&format!(
            "INSERT INTO __diesel_schema_migrations (version) VALUES ('{version}')"
        ))
        .await?;
    }
    Ok(dirs.len())
}

#[tokio::test]
async fn decisions_recorded_before_the_partitioning_stay_recognised() -> anyhow::Result<()> {
    let db = TestDb::empty().await?;
    let mut conn = db.conn().await?;
    assert_eq!(migrate_to(&mut conn, "2026-12-01-000007").await?, 6);
    // One decision of each kind, recorded by the previous version.
    let (executed, suppressed, counted) = (
        (Uuid::new_v4(), Uuid::new_v4()),
        (Uuid::new_v4(), Uuid::new_v4()),
        (Uuid::new_v4(), Uuid::new_v4()),
    );
    conn.batch_execute(&format!(
        "INSERT INTO rule_executions VALUES ('{}', '{}', '{}', '{}', now(), 'succeeded', 1, '{{}}'); \
         INSERT INTO rule_suppressions VALUES ('{}', '{}', now()); \
         INSERT INTO rule_threshold_counts VALUES ('{}', '{}', now());",
        Uuid::new_v4(),
        executed.0,
        executed.1,
        Uuid::new_v4(),
        suppressed.0,
        suppressed.1,
        counted.0,
        counted.1,
    ))
    .await?;

    let applied = rules_store::db::migrations::run_pending(&PgTarget::new(&db.url, None)?).await?;
    assert_eq!(
        applied[0], "2026-12-01-000007_decision_log_by_event_day",
        "{applied:?}"
    );

    // The worker looks them up by the day of the event's time, whatever it is.
    let day = today() - TimeDelta::days(1);
    let keys: Vec<_> = [executed, suppressed, counted]
        .iter()
        .map(|&(rule, event)| (rule, event, day))
        .collect();
    let found = already_decided(&mut conn, &keys).await?;
    assert_eq!(
        found.len(),
        3,
        "every decision recorded before is recognised"
    );
    let fresh = (Uuid::new_v4(), Uuid::new_v4(), day);
    assert!(already_decided(&mut conn, &[fresh]).await?.is_empty());

    // They are the legacy partition's, with the legacy day (the executions' key
    // copied there by 000012); the days ahead exist.
    let legacy: Count = diesel::sql_query(format!(
        "SELECT count(*) AS n FROM rule_execution_keys_legacy WHERE event_day = '{LEGACY_EVENT_DAY}'"
    ))
    .get_result(&mut conn)
    .await?;
    assert_eq!(legacy.n, 1);
    let parts = partitions(&mut conn, "rule_executions").await?;
    let tomorrow = today() + TimeDelta::days(1);
    let ahead = format!("rule_executions_{}", tomorrow.format("%Y%m%d"));
    assert!(parts.contains(&ahead), "{parts:?}");
    // The history before 000012 (itself by event day) is one partition of the
    // history by execution day; today on are new.
    assert_eq!(parts.len(), 1 + 8, "{parts:?}");
    assert!(
        parts.contains(&"rule_executions_by_event_day".to_owned()),
        "{parts:?}"
    );

    // A new decision for tomorrow's event: its key in tomorrow's partition of the
    // memory, its execution in today's of the history, once.
    let rule = Uuid::new_v4();
    let event = Uuid::new_v4();
    let batch = Decided {
        executions: vec![execution_row(rule, event, tomorrow)],
        ..Decided::default()
    };
    assert_eq!(record_batch(&mut conn, &batch).await?.executions, 1);
    assert_eq!(record_batch(&mut conn, &batch).await?.executions, 0);
    let home = |table: &str| {
        diesel::sql_query(format!(
            "SELECT tableoid::regclass::text AS name FROM {table} WHERE event_id = '{event}'"
        ))
    };
    let key: Name = home("rule_execution_keys").get_result(&mut conn).await?;
    assert_eq!(
        key.name,
        format!("rule_execution_keys_{}", tomorrow.format("%Y%m%d"))
    );
    let history: Name = home("rule_executions").get_result(&mut conn).await?;
    assert_eq!(
        history.name,
        format!("rule_executions_{}", today().format("%Y%m%d"))
    );
    assert_eq!(
        already_decided(&mut conn, &[(rule, event, tomorrow)])
            .await?
            .len(),
        1
    );
    Ok(())
}

/// Migration 000012: the history recorded before it (partitioned by event day)
/// becomes one partition of the history by execution day; its pages read as before,
/// newest first and across the boundary, its decisions stay recognised, and
/// retention drops it whole once its last execution is past retention.
#[tokio::test]
async fn history_recorded_before_it_was_by_execution_day_stays_readable_and_recognised(
) -> anyhow::Result<()> {
    use rules_store::db::executions::{list_for_rule, ExecutionCursor, ExecutionFilter};
    use rules_store::db::stats::StatsRow;
    let db = TestDb::empty().await?;
    let mut conn = db.conn().await?;
    assert_eq!(migrate_to(&mut conn, "2026-12-06-000012").await?, 11);
    // Three executions of one rule by the previous version, an hour apart, the
    // oldest failed; their events of yesterday.
    let rule = Uuid::new_v4();
    let yesterday = today() - TimeDelta::days(1);
    let old: Vec<ExecutionRow> = (1..=3)
        .map(|hours| ExecutionRow {
            executed_at: Utc::now() - TimeDelta::hours(hours),
            status: if hours == 3 {
                rules_core::Status::Failed
            } else {
                rules_core::Status::Succeeded
            },
            ..execution_row(rule, Uuid::new_v4(), yesterday)
        })
        .collect();
    for e in &old {
        conn.batch_execute(&format!(
            "INSERT INTO rule_executions (id, rule_id, event_id, livestream_id, executed_at, \
               status, duration_ms, result, event_day) \
             VALUES ('{}', '{rule}', '{}', '{}', '{}', '{}', 3, '{{}}', '{yesterday}')",
            e.id,
            e.event_id,
            e.livestream_id,
            e.executed_at.to_rfc3339(),
            e.status.as_str(),
        ))
        .await?;
    }
    // Their counters, as that version's recorder wrote them with them: the failure's
    // is what a page of failures is found through.
    let minutes: Vec<StatsRow> = old
        .iter()
        .map(|e| {
            let mut row =
                StatsRow::empty(rule, e.executed_at.duration_trunc(TimeDelta::minutes(1))?);
            row.matched = 1;
            row.executed = 1;
            match e.status {
                rules_core::Status::Failed => row.failed = 1,
                _ => row.succeeded = 1,
            }
            Ok(row)
        })
        .collect::<Result<_, chrono::RoundingError>>()?;
    rules_store::db::stats::add(&mut conn, &minutes).await?;

    let applied = rules_store::db::migrations::run_pending(&PgTarget::new(&db.url, None)?).await?;
    assert_eq!(
        <[_]>::first(&applied).map(String::as_str),
        Some("2026-12-06-000012_history_by_execution_day")
    );
    let parts = partitions(&mut conn, "rule_executions").await?;
    assert!(
        parts.contains(&"rule_executions_by_event_day".to_owned()),
        "{parts:?}"
    );

    // Recognised: asked again, and recorded again, nothing new.
    let keys: Vec<_> = old.iter().map(|e| (rule, e.event_id, yesterday)).collect();
    assert_eq!(already_decided(&mut conn, &keys).await?.len(), 3);
    let again = Decided {
        executions: old.clone(),
        ..Decided::default()
    };
    assert_eq!(record_batch(&mut conn, &again).await?.executions, 0);

    // A new execution lands in today's partition of the history.
    let new = execution_row(rule, Uuid::new_v4(), today());
    let batch = Decided {
        executions: vec![new.clone()],
        ..Decided::default()
    };
    assert_eq!(record_batch(&mut conn, &batch).await?.executions, 1);

    // Pages of two, newest first, across the old partition and the new one.
    let filter = ExecutionFilter::default();
    let counted_since = Utc::now() - TimeDelta::days(400);
    let first = list_for_rule(&mut conn, rule, &filter, None, 2, counted_since).await?;
    let ids = |rows: &[ExecutionRow]| rows.iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(&first), [new.id, old[0].id]);
    let after = first.last().map(|r| ExecutionCursor {
        executed_at: r.executed_at,
        id: r.id,
    });
    let second = list_for_rule(&mut conn, rule, &filter, after, 2, counted_since).await?;
    assert_eq!(ids(&second), [old[1].id, old[2].id]);
    let failed = ExecutionFilter {
        status: Some(rules_core::Status::Failed),
        ..ExecutionFilter::default()
    };
    assert_eq!(
        ids(&list_for_rule(&mut conn, rule, &failed, None, 50, counted_since).await?),
        [old[2].id]
    );

    // Retention: 40 days on, the old partition goes whole, with every day made
    // before it.
    let changes = maintain(&mut conn, SETTINGS, Some(today() + TimeDelta::days(40))).await?;
    assert!(
        changes.contains(&PartitionChange::Dropped(
            "rule_executions_by_event_day".into()
        )),
        "{changes:?}"
    );
    let left: Count = diesel::sql_query("SELECT count(*) AS n FROM rule_executions")
        .get_result(&mut conn)
        .await?;
    assert_eq!(left.n, 0);
    Ok(())
}

/// A rule's newest page reads the newest partitions of the history and stops (an
/// ordered Append over partitions by execution time); partitioned by event day
/// (before 000012) it began a scan in every partition, whatever the page.
#[tokio::test]
async fn a_rules_newest_page_reads_only_the_newest_days() -> anyhow::Result<()> {
    let db = TestDb::migrated().await?;
    let mut conn = db.conn().await?;
    let days: Vec<NaiveDate> = (1..=4).map(|d| today() - TimeDelta::days(d)).collect();
    rules_store::db::retention::make_days(&mut conn, &days).await?;
    // One rule's 1,000 executions a day over five days, among 20 other rules'.
    let rule = Uuid::new_v4();
    conn.batch_execute(&format!(
        "INSERT INTO rule_executions (id, rule_id, event_id, livestream_id, executed_at, \
           status, duration_ms, result, event_day) \
         SELECT gen_random_uuid(), \
           CASE WHEN g % 21 = 0 THEN '{rule}'::uuid ELSE md5((g % 21)::text)::uuid END, \
           gen_random_uuid(), gen_random_uuid(), t.at, 'succeeded', 1, '{{}}', t.at::date \
         FROM generate_series(1, 105000) g, \
           LATERAL (SELECT date_trunc('day', now()) + interval '1 minute' \
                    - (g % 5) * interval '1 day' + (g / 5) * interval '1 second' AS at) t; \
         ANALYZE rule_executions; \
         CREATE FUNCTION plan_of(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$ \
         DECLARE l text; BEGIN \
           FOR l IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || q LOOP \
             RETURN NEXT l; END LOOP; END $$;"
    ))
    .await?;
    let plan: Vec<String> = diesel::sql_query(format!(
        "SELECT plan_of('SELECT * FROM rule_executions WHERE rule_id = ''{rule}'' \
           ORDER BY executed_at DESC, id DESC LIMIT 50') AS name"
    ))
    .load::<Name>(&mut conn)
    .await?
    .into_iter()
    .map(|n| n.name)
    .collect();
    let text = plan.join("\n");
    assert!(!text.contains("Merge Append"), "{text}");
    // The oldest days' scans were planned, never run.
    for day in &days[1..] {
        let scan = plan
            .iter()
            .find(|l| l.contains(&format!("rule_executions_{}", day.format("%Y%m%d"))))
            .map(String::as_str)
            .unwrap_or_default();
        assert!(scan.contains("never executed"), "{day}: {text}");
    }
    Ok(())
}

/// The history's pages are read in looks that reach further back each time (a day,
/// a week, a month, the rest); paged through, with and without filters, they give
/// every row once, in the order one query over the whole history gives.
#[tokio::test]
async fn pages_read_in_looks_back_give_every_row_once_in_order() -> anyhow::Result<()> {
    use rules_store::db::executions::{list_for_rule, ExecutionCursor, ExecutionFilter};
    let db = TestDb::migrated().await?;
    let mut conn = db.conn().await?;
    let ages_hours: Vec<i64> = vec![
        0,
        1,
        2,
        30,
        40,
        50,
        60,
        24 * 10,
        24 * 10,
        24 * 12,
        24 * 40,
        24 * 41,
        24 * 80,
    ];
    let days: Vec<NaiveDate> = ages_hours
        .iter()
        .map(|h| (Utc::now() - TimeDelta::hours(*h)).date_naive())
        .collect();
    rules_store::db::retention::make_days(&mut conn, &days).await?;
    let rule = Uuid::new_v4();
    let now = Utc::now();
    let rows: Vec<ExecutionRow> = ages_hours
        .iter()
        .enumerate()
        .map(|(i, h)| ExecutionRow {
            executed_at: now - TimeDelta::hours(*h) - TimeDelta::minutes(1),
            status: if i % 3 == 0 {
                rules_core::Status::Failed
            } else {
                rules_core::Status::Succeeded
            },
            ..execution_row(rule, Uuid::new_v4(), today())
        })
        .collect();
    record_batch(
        &mut conn,
        &Decided {
            executions: rows.clone(),
            ..Decided::default()
        },
    )
    .await?;
    let mut newest_first = rows.clone();
    newest_first.sort_by_key(|r| std::cmp::Reverse((r.executed_at, r.id)));

    let filters = [
        ExecutionFilter::default(),
        ExecutionFilter {
            status: Some(rules_core::Status::Failed),
            ..ExecutionFilter::default()
        },
        ExecutionFilter {
            from: Some(now - TimeDelta::days(20)),
            to: Some(now - TimeDelta::hours(3)),
            ..ExecutionFilter::default()
        },
    ];
    // The counters remember every row (as by default: 400 days), or none (kept
    // for less time than the rows: the log alone is read).
    let horizons = [now - TimeDelta::days(400), now + TimeDelta::hours(1)];
    for (filter, counted_since) in filters.iter().flat_map(|f| horizons.map(|h| (f, h))) {
        let expected: Vec<Uuid> = newest_first
            .iter()
            .filter(|r| filter.status.is_none_or(|s| r.status == s))
            .filter(|r| filter.from.is_none_or(|f| r.executed_at >= f))
            .filter(|r| filter.to.is_none_or(|t| r.executed_at < t))
            .map(|r| r.id)
            .collect();
        for limit in [1, 2, 4, 50] {
            let mut seen = Vec::new();
            let mut after = None;
            loop {
                let page =
                    list_for_rule(&mut conn, rule, filter, after, limit, counted_since).await?;
                seen.extend(page.iter().map(|r| r.id));
                if (page.len() as i64) < limit {
                    break;
                }
                after = page.last().map(|r| ExecutionCursor {
                    executed_at: r.executed_at,
                    id: r.id,
                });
            }
            assert_eq!(
                seen, expected,
                "{filter:?}, pages of {limit}, counted since {counted_since}"
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn one_lookup_finds_the_decisions_of_every_day_of_its_batch() -> anyhow::Result<()> {
    use rules_store::db::record::{CountRow, SuppressionRow};
    let db = TestDb::migrated().await?;
    let mut conn = db.conn().await?;
    let days = [
        today() - TimeDelta::days(1),
        today(),
        today() + TimeDelta::days(1),
        today() + TimeDelta::days(2),
    ];
    // Per day, one decision of each kind.
    let mut batch = Decided::default();
    let mut recorded = Vec::new();
    for &day in &days {
        let keys = [0, 1, 2].map(|_| (Uuid::new_v4(), Uuid::new_v4(), day));
        batch
            .executions
            .push(execution_row(keys[0].0, keys[0].1, day));
        batch.suppressions.push(SuppressionRow {
            rule_id: keys[1].0,
            event_id: keys[1].1,
            suppressed_at: Utc::now(),
            event_day: day,
        });
        batch.counts.push(CountRow {
            rule_id: keys[2].0,
            event_id: keys[2].1,
            counted_at: Utc::now(),
            event_day: day,
        });
        recorded.extend(keys);
    }
    record_batch(&mut conn, &batch).await?;

    // Asked in one batch, mixed with pairs never decided and with recorded pairs
    // asked at another day than theirs (the day is part of the key).
    let fresh: Vec<_> = days
        .iter()
        .map(|&day| (Uuid::new_v4(), Uuid::new_v4(), day))
        .collect();
    let elsewhere: Vec<_> = recorded
        .iter()
        .take(3)
        .map(|&(rule, event, day)| (rule, event, day + TimeDelta::days(3)))
        .collect();
    let mut asked: Vec<_> = recorded.iter().rev().copied().collect();
    asked.extend(&fresh);
    asked.extend(&elsewhere);
    let found = already_decided(&mut conn, &asked).await?;
    let expected: std::collections::HashSet<(Uuid, Uuid)> = recorded
        .iter()
        .map(|&(rule, event, _)| (rule, event))
        .collect();
    assert_eq!(found, expected);
    Ok(())
}

/// The lookup keeps one plan per connection (migration 000020: a generic plan that
/// prunes the partitions as it starts, where PostgreSQL planned the three joins
/// afresh for every batch), and that plan follows the partitions: a day made after
/// the connection planned it is read.
#[tokio::test]
async fn the_lookup_is_planned_once_per_connection_and_sees_days_made_later() -> anyhow::Result<()>
{
    #[derive(diesel::QueryableByName)]
    struct Config {
        #[diesel(sql_type = diesel::sql_types::Text)]
        settings: String,
    }
    let db = TestDb::migrated().await?;
    let mut conn = db.conn().await?;
    let config: Config = diesel::sql_query(
        "SELECT array_to_string(proconfig, ',') AS settings FROM pg_proc \
         WHERE proname = 'rules_decided'",
    )
    .get_result(&mut conn)
    .await?;
    assert!(
        config
            .settings
            .split(',')
            .any(|s| s == "plan_cache_mode=force_generic_plan"),
        "rules_decided runs with {}",
        config.settings
    );

    // Planned on this connection before the day exists, and asked again after.
    let day = today() + TimeDelta::days(20);
    let (rule, event) = (Uuid::new_v4(), Uuid::new_v4());
    for _ in 0..6 {
        assert!(already_decided(&mut conn, &[(rule, event, day)])
            .await?
            .is_empty());
    }
    let mut other = db.conn().await?;
    other
        .batch_execute(&format!("SELECT rules_make_log_days(ARRAY['{day}'::date])"))
        .await?;
    let batch = Decided {
        executions: vec![execution_row(rule, event, day)],
        ..Decided::default()
    };
    record_batch(&mut other, &batch).await?;
    let found = already_decided(&mut conn, &[(rule, event, day)]).await?;
    assert_eq!(found, [(rule, event)].into_iter().collect());
    Ok(())
}

/// The lookup probes a day's partition key by key, whatever PostgreSQL knows of it:
/// here a day of 40,000 executions of 100 rules that autovacuum has not analysed
/// yet (as every day is at its start, and in a short drain). Its plan before
/// migration 000009 read the whole partition (a hash join over a sequential scan)
/// or every execution of each key's rule that day (the history index).
#[tokio::test]
async fn the_lookup_probes_a_day_without_statistics_key_by_key() -> anyhow::Result<()> {
    use diesel_async::AsyncConnection;
    #[derive(diesel::QueryableByName)]
    struct Reads {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        sequential: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        fetched: i64,
    }
    let db = TestDb::migrated().await?;
    let mut conn = db.conn().await?;
    let day = today();
    let partition = format!("rule_execution_keys_{}", day.format("%Y%m%d"));
    conn.batch_execute(&format!(
        "ALTER TABLE {partition} SET (autovacuum_enabled = false); \
         INSERT INTO rule_execution_keys (rule_id, event_id, event_day, execution_id) \
         SELECT ('00000000-0000-4000-8000-' || lpad((g % 100)::text, 12, '0'))::uuid, \
           gen_random_uuid(), '{day}', gen_random_uuid() \
         FROM generate_series(1, 40000) g"
    ))
    .await?;
    #[derive(diesel::QueryableByName)]
    struct Key {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        rule_id: Uuid,
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        event_id: Uuid,
    }
    let recorded: Vec<Key> = diesel::sql_query(format!(
        "SELECT rule_id, event_id FROM {partition} ORDER BY event_id LIMIT 1000"
    ))
    .load(&mut conn)
    .await?;
    let mut keys: Vec<_> = recorded
        .iter()
        .map(|k| (k.rule_id, k.event_id, day))
        .collect();
    keys.extend((0..1000).map(|_| (Uuid::new_v4(), Uuid::new_v4(), day)));
    let (found, reads) = conn
        .transaction::<_, anyhow::Error, _>(async |conn| {
            let found = already_decided(conn, &keys).await?;
            let reads: Reads = diesel::sql_query(format!(
                "SELECT coalesce(seq_tup_read, 0) AS sequential, \
                   coalesce(idx_tup_fetch, 0) AS fetched \
                 FROM pg_stat_xact_user_tables WHERE relname = '{partition}'"
            ))
            .get_result(conn)
            .await?;
            Ok((found, reads))
        })
        .await?;
    assert_eq!(found.len(), 1000, "every recorded key found, no other");
    assert_eq!(reads.sequential, 0, "the day's partition was scanned");
    // An index probe that finds its key reads its row (twice in the counts of an
    // index-only scan whose page is not yet all-visible); the history index would
    // read the rule's 400 rows of the day per key.
    assert!(
        reads.fetched <= 2 * keys.len() as i64,
        "{} executions read for {} keys",
        reads.fetched,
        keys.len()
    );
    Ok(())
}

#[tokio::test]
async fn retention_drops_whole_days_and_makes_the_days_ahead() -> anyhow::Result<()> {
    let db = TestDb::migrated().await?;
    let mut conn = db.conn().await?;
    let (rule, event) = (Uuid::new_v4(), Uuid::new_v4());
    let batch = Decided {
        executions: vec![execution_row(rule, event, today())],
        ..Decided::default()
    };
    record_batch(&mut conn, &batch).await?;
    // Run on the day the migration ran: nothing to drop, the days ahead are there.
    assert!(maintain(&mut conn, SETTINGS, None).await?.is_empty());

    // 40 days later: every partition of the first days is older than 30 days.
    let later = today() + TimeDelta::days(40);
    let changes = maintain(&mut conn, SETTINGS, Some(later)).await?;
    let dropped: Vec<&String> = changes
        .iter()
        .filter_map(|c| match c {
            PartitionChange::Dropped(name) => Some(name),
            PartitionChange::Created(_) => None,
        })
        .collect();
    // A fresh database has no legacy partition: yesterday to seven days ahead, of
    // the three tables by event day and of the history by execution day.
    for first_day in [
        format!("rule_executions_{}", today().format("%Y%m%d")),
        format!("rule_execution_keys_{}", today().format("%Y%m%d")),
    ] {
        assert!(dropped.contains(&&first_day), "{changes:?}");
    }
    assert_eq!(
        dropped.len(),
        4 * 9,
        "nine days of four tables: {changes:?}"
    );
    let gone: Count = diesel::sql_query("SELECT count(*) AS n FROM rule_executions")
        .get_result(&mut conn)
        .await?;
    assert_eq!(gone.n, 0, "the expired day's rows went with its partition");
    let parts = partitions(&mut conn, "rule_suppressions").await?;
    let expected: Vec<String> = (-1..=7)
        .map(|d| {
            format!(
                "rule_suppressions_{}",
                (later + TimeDelta::days(d)).format("%Y%m%d")
            )
        })
        .collect();
    assert_eq!(parts, expected);
    // Again, and from two connections at once: nothing more to do, no error.
    let mut other = db.conn().await?;
    let (a, b) = tokio::join!(
        maintain(&mut conn, SETTINGS, Some(later)),
        maintain(&mut other, SETTINGS, Some(later))
    );
    assert!(a?.is_empty() && b?.is_empty());
    Ok(())
}

#[tokio::test]
async fn the_worker_and_rules_migrate_maintain_keep_the_days_ahead() -> anyhow::Result<()> {
    let mut h = Harness::new("log-days").await?;
    let last = today() + TimeDelta::days(7);
    let last_name = format!("rule_executions_{}", last.format("%Y%m%d"));
    h.sql(&format!("DROP TABLE {last_name}")).await?;
    // Analytics minutes: one 8 days old (rolled up by the worker), one 6 days old
    // (kept), one 10 days old (rolled up by rules-migrate maintain, told to keep
    // minutes for 9 days).
    let rule = Uuid::new_v4();
    h.sql(&format!(
        "INSERT INTO rule_stats_minute (rule_id, bucket_start, matched, executed, succeeded) \
         SELECT '{rule}', date_trunc('minute', now() - make_interval(days => d)), 1, 1, 1 \
         FROM unnest(ARRAY[6, 8]) AS d"
    ))
    .await?;
    h.start_worker(&[]).await?;
    let mut conn = h.db.conn().await?;
    eventually(Duration::from_secs(15), || async {
        let mut conn = h.db.conn().await?;
        Ok(partitions(&mut conn, "rule_executions")
            .await?
            .contains(&last_name)
            && stats_rows(&mut conn, rule).await? == (1, 1))
    })
    .await?;
    h.sql(&format!(
        "INSERT INTO rule_stats_minute (rule_id, bucket_start, matched, executed, succeeded) \
         VALUES ('{rule}', date_trunc('minute', now() - interval '10 days'), 1, 1, 1)"
    ))
    .await?;

    // A longer look ahead through rules-migrate maintain.
    let mut migrate = Process::start_with_args(
        "rules-migrate",
        &["maintain"],
        &[
            ("DATABASE_URL", h.db.url.clone()),
            ("RULES__RETENTION__PARTITIONS_AHEAD_DAYS", "9".into()),
            ("RULES__RETENTION__STATS_MINUTES_DAYS", "9".into()),
        ],
    )?;
    let status = migrate.wait(Duration::from_secs(30)).await?;
    let (out, err) = migrate.output().await?;
    assert!(status.success(), "{out}{err}");
    let ninth = format!(
        "rule_executions_{}",
        (today() + TimeDelta::days(9)).format("%Y%m%d")
    );
    assert!(out.contains(&format!("created  {ninth}")), "{out}");
    assert!(out.contains("8 partition(s) changed"), "{out}");
    assert!(partitions(&mut conn, "rule_executions")
        .await?
        .contains(&ninth));
    assert!(
        out.contains("analytics: 1 minute row(s) rolled up into quarter hours"),
        "{out}"
    );
    assert_eq!(stats_rows(&mut conn, rule).await?, (1, 2));
    Ok(())
}

/// A rule's analytics rows: minutes, quarter hours.
async fn stats_rows(conn: &mut AsyncPgConnection, rule: Uuid) -> anyhow::Result<(i64, i64)> {
    let count = |table: &str| format!("SELECT count(*) AS n FROM {table} WHERE rule_id = '{rule}'");
    let minutes: Count = diesel::sql_query(count("rule_stats_minute"))
        .get_result(conn)
        .await?;
    let quarters: Count = diesel::sql_query(count("rule_stats_quarter"))
        .get_result(conn)
        .await?;
    Ok((minutes.n, quarters.n))
}

#[tokio::test]
async fn a_day_without_its_partition_is_made_when_the_recorder_meets_it() -> anyhow::Result<()> {
    let mut h = Harness::new("log-day-missing").await?;
    let rule = h
        .add_rule(rules_e2e::worker::publish_rule(
            &h.out(),
            serde_json::json!({}),
        ))
        .await?;
    h.start_worker(&[]).await?;
    h.wait_rules_loaded(1).await?;
    // Today's partitions of the history and of the memory gone behind the worker's
    // back (its next hourly run is far).
    let today_part = format!("rule_executions_{}", today().format("%Y%m%d"));
    let today_keys = format!("rule_execution_keys_{}", today().format("%Y%m%d"));
    h.sql(&format!("DROP TABLE {today_part}")).await?;
    h.sql(&format!("DROP TABLE {today_keys}")).await?;
    h.send("donation.received", serde_json::json!({"amount": 10}))
        .await?;
    eventually(Duration::from_secs(15), || async {
        Ok(h.executions(Some(rule)).await?.len() == 1)
    })
    .await?;
    let mut conn = h.db.conn().await?;
    assert!(partitions(&mut conn, "rule_executions")
        .await?
        .contains(&today_part));
    assert!(partitions(&mut conn, "rule_execution_keys")
        .await?
        .contains(&today_keys));
    Ok(())
}

/// Migration 000013: the quarter hours rolled up before it get their day rows,
/// each the sum of its UTC day's quarter hours (what `stats::sum_by_day` reads),
/// and the roll-up keeps them so afterwards.
#[tokio::test]
async fn quarter_hours_rolled_up_before_the_day_rows_get_theirs() -> anyhow::Result<()> {
    use rules_store::db::retention::roll_up_stats;
    use rules_store::db::stats::{self, histogram_of, StatsRow};
    let db = TestDb::empty().await?;
    let mut conn = db.conn().await?;
    assert_eq!(migrate_to(&mut conn, "2026-12-06-000013").await?, 12);
    // Two rules' minutes every 50 minutes over days 12 to 8 ago, rolled up by the
    // previous version's roll-up.
    let rules = [Uuid::new_v4(), Uuid::new_v4()];
    let minute = |rule: Uuid, i: i64| StatsRow {
        matched: 2 + i % 3,
        executed: 2,
        suppressed_by_cooldown: i % 3,
        succeeded: 1,
        failed: 1,
        duration_ms_sum: 2 * (i % 700),
        duration_histogram: {
            let mut h = histogram_of(u32::try_from(i % 700).unwrap_or(0));
            stats::histogram_add(&mut h, &histogram_of(u32::try_from(i % 700).unwrap_or(0)));
            h
        },
        last_executed_at: Some(Utc::now() - TimeDelta::days(12) + TimeDelta::minutes(50 * i + 1)),
        ..StatsRow::empty(
            rule,
            (Utc::now() - TimeDelta::days(12) + TimeDelta::minutes(50 * i))
                .duration_trunc(TimeDelta::minutes(1))
                .unwrap_or_else(|_| Utc::now()),
        )
    };
    let rows: Vec<StatsRow> = rules
        .iter()
        .flat_map(|rule| (0..4 * 24 * 60 / 50).map(move |i| minute(*rule, i)))
        .collect();
    stats::add(&mut conn, &rows).await?;
    // As the previous version's worker calls it (this version's also sorts the
    // minutes, with a function 000018 adds).
    let rolled: Count =
        diesel::sql_query("SELECT minutes_rolled_up AS n FROM rules_roll_up_stats($1, $2, now())")
            .bind::<diesel::sql_types::Integer, _>(7)
            .bind::<diesel::sql_types::Integer, _>(400)
            .get_result(&mut conn)
            .await?;
    assert_eq!(rolled.n, rows.len() as i64);

    let applied = rules_store::db::migrations::run_pending(&PgTarget::new(&db.url, None)?).await?;
    assert_eq!(
        <[_]>::first(&applied).map(String::as_str),
        Some("2026-12-06-000013_analytics_by_day")
    );
    // And a late minute, rolled up into a day that has its row.
    stats::add(&mut conn, &[minute(rules[0], 7)]).await?;
    assert_eq!(
        roll_up_stats(&mut conn, SETTINGS, None)
            .await?
            .minutes_rolled_up,
        1
    );

    // Every day row is its quarter hours' sum, and every day with quarter hours
    // has one.
    let differing = diesel::sql_query(
        "SELECT count(*) AS n FROM rule_stats_day d FULL JOIN ( \
           SELECT rule_id, date_bin('1 day', bucket_start, TIMESTAMPTZ '2000-01-01 00:00:00+00') \
             AS bucket_start, sum(matched) AS matched, sum(executed) AS executed, \
             sum(suppressed_by_cooldown) AS suppressed_by_cooldown, sum(succeeded) AS succeeded, \
             sum(failed) AS failed, sum(skipped) AS skipped, sum(duration_ms_sum) AS duration_ms_sum, \
             histogram_sum(duration_histogram) AS duration_histogram, \
             max(last_executed_at) AS last_executed_at \
           FROM rule_stats_quarter GROUP BY 1, 2) q USING (rule_id, bucket_start) \
         WHERE (d.matched, d.executed, d.suppressed_by_cooldown, d.succeeded, d.failed, d.skipped, \
                d.duration_ms_sum, d.duration_histogram, d.last_executed_at) \
           IS DISTINCT FROM (q.matched, q.executed, q.suppressed_by_cooldown, q.succeeded, \
                q.failed, q.skipped, q.duration_ms_sum, q.duration_histogram, q.last_executed_at)",
    )
    .get_result::<Count>(&mut conn)
    .await?
    .n;
    let days = diesel::sql_query("SELECT count(*) AS n FROM rule_stats_day")
        .get_result::<Count>(&mut conn)
        .await?
        .n;
    assert!(days >= 2 * 4, "{days} day rows");
    assert_eq!(
        differing, 0,
        "day rows that are not their quarter hours' sum"
    );
    Ok(())
}

/// The worker runs two commits at once: two batches sharing pairs (a redelivery
/// handled by both) record each pair once, and neither waits for the other in a
/// cycle, because each sorts its rows by key first (`Decided::sort_by_key`). In
/// opposite orders, the two inserts lock the shared keys crosswise and PostgreSQL
/// aborts one with a deadlock.
#[tokio::test]
async fn two_commits_at_once_that_share_pairs_record_each_once() -> anyhow::Result<()> {
    let db = TestDb::migrated().await?;
    let (mut first_conn, mut second_conn) = (db.conn().await?, db.conn().await?);
    let day = today();
    for _round in 0..3 {
        let pairs: Vec<(Uuid, Uuid)> = (0..6_000)
            .map(|_| (Uuid::new_v4(), Uuid::new_v4()))
            .collect();
        let batch = |pairs: &[(Uuid, Uuid)]| {
            let mut batch = Decided::default();
            for &(rule, event) in pairs {
                batch.executions.push(execution_row(rule, event, day));
            }
            batch
        };
        // Shared: the middle third, in opposite orders.
        let mut first = batch(&pairs[..4_000]);
        let mut second = batch(&pairs[2_000..]);
        second.executions.reverse();
        first.sort_by_key();
        second.sort_by_key();
        let (a, b) = tokio::join!(
            record_batch(&mut first_conn, &first),
            record_batch(&mut second_conn, &second)
        );
        assert_eq!(a?.executions + b?.executions, pairs.len());
    }
    let recorded: Count = diesel::sql_query("SELECT count(*) AS n FROM rule_executions")
        .get_result(&mut first_conn)
        .await?;
    assert_eq!(recorded.n, 18_000);
    Ok(())
}
