//! rules-migrate against a real PostgreSQL: applies, is idempotent, is safe to run
//! concurrently, reports status, and fails cleanly.

use diesel_async::RunQueryDsl;
use rules_e2e::{Count, Name, Process, TestDb};
use std::time::Duration;

async fn migrate(db: &TestDb, args: &[&str]) -> anyhow::Result<(bool, String, String)> {
    let mut env = vec![("DATABASE_URL", db.url.clone())];
    env.push(("RULES__LOG__FORMAT", "json".into()));
    let mut p = Process::start_with_args("rules-migrate", args, &env)?;
    let status = p.wait(Duration::from_secs(60)).await?;
    let (out, err) = p.output().await?;
    Ok((status.success(), out, err))
}

async fn tables(db: &TestDb) -> anyhow::Result<Vec<String>> {
    let mut conn = db.conn().await?;
    Ok(diesel::sql_query(
        // Tables, not the decision log's partitions (one per day).
        "SELECT c.relname::text AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition \
         ORDER BY c.relname",
    )
    .load::<Name>(&mut conn)
    .await?
    .into_iter()
    .map(|n| n.name)
    .collect())
}

/// How many migrations the repository holds.
fn migration_count() -> usize {
    std::fs::read_dir(rules_e2e::workspace_root().join("migrations"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| e.path().is_dir())
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn applies_once_and_concurrently() -> anyhow::Result<()> {
    let n = migration_count();
    assert!(n >= 3);
    let db = TestDb::empty().await?;
    let (ok, out, _) = migrate(&db, &["status"]).await?;
    assert!(ok);
    assert!(out.contains(&format!("0 applied, {n} pending")), "{out}");

    // Three at once: all succeed, the schema is applied exactly once.
    let runs = futures_join3(migrate(&db, &[]), migrate(&db, &[]), migrate(&db, &["run"])).await;
    let mut applied_total = 0;
    for run in runs {
        let (ok, out, err) = run?;
        assert!(ok, "concurrent run failed: {out} {err}");
        applied_total += out.lines().filter(|l| l.starts_with("applied ")).count();
    }
    assert_eq!(
        applied_total, n,
        "each migration applied by exactly one run"
    );

    // And again: nothing to do.
    let (ok, out, _) = migrate(&db, &[]).await?;
    assert!(ok);
    assert!(out.contains("0 migration(s) applied"), "{out}");
    let (ok, out, _) = migrate(&db, &["--status"]).await?;
    assert!(ok);
    assert!(
        out.contains("applied  2026-11-25-000001_create_rules"),
        "{out}"
    );
    assert!(out.contains(&format!("{n} applied, 0 pending")), "{out}");

    assert_eq!(
        tables(&db).await?,
        vec![
            "__diesel_schema_migrations",
            "rule_execution_keys",
            "rule_executions",
            "rule_stats_day",
            "rule_stats_minute",
            "rule_stats_minute_sorted",
            "rule_stats_quarter",
            "rule_suppressions",
            "rule_threshold_counts",
            "rules"
        ]
    );
    let mut conn = db.conn().await?;
    let n = diesel::sql_query("SELECT count(*) AS n FROM __diesel_schema_migrations")
        .get_result::<Count>(&mut conn)
        .await?
        .n;
    assert_eq!(n as usize, migration_count());
    Ok(())
}

async fn futures_join3<A, B, C>(a: A, b: B, c: C) -> [A::Output; 3]
where
    A: std::future::Future,
    B: std::future::Future<Output = A::Output>,
    C: std::future::Future<Output = A::Output>,
{
    let (a, b, c) = tokio::join!(a, b, c);
    [a, b, c]
}

#[tokio::test]
async fn unreachable_database_is_one_line_and_nonzero() -> anyhow::Result<()> {
    let port = rules_e2e::free_port()?;
    let env = [(
        "DATABASE_URL",
        format!("postgres://postgres@127.0.0.1:{port}/rules_db"),
    )];
    let mut p = Process::start_with_args("rules-migrate", &[], &env)?;
    let status = p.wait(Duration::from_secs(30)).await?;
    let (_, err) = p.output().await?;
    assert!(!status.success());
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains("cannot connect to the database"), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_failing_migration_is_reported() -> anyhow::Result<()> {
    // A table in the way makes the first migration fail.
    let db = TestDb::empty().await?;
    let mut conn = db.conn().await?;
    diesel::sql_query("CREATE TABLE rules (x int)")
        .execute(&mut conn)
        .await?;
    let (ok, _, err) = migrate(&db, &[]).await?;
    assert!(!ok);
    assert!(err.contains("migration failed"), "{err}");
    assert!(err.contains("already exists"), "{err}");
    Ok(())
}
