//! PostgreSQL faults during a drain, on a cluster of the test's own (never the
//! machine's): a crash and restart, every connection terminated, then a stop of a
//! few seconds. The worker waits
//! them out; every event is executed and published exactly once, nothing stays
//! pending, and a rule created after the outage takes effect. And the pool: a
//! connection whose backend is gone is not handed out again.

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use rules_e2e::services::OwnPostgres;
use rules_e2e::worker::{count_rows, eventually, insert_rule, publish_rule, Harness};
use rules_store::db::PgTarget;
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(90);
const EVENTS: usize = 3_000;

async fn add_rule(url: &str, body: serde_json::Value) -> anyhow::Result<Uuid> {
    insert_rule(&mut AsyncPgConnection::establish(url).await?, body).await
}

async fn executions(url: &str) -> anyhow::Result<i64> {
    count_rows(
        &mut AsyncPgConnection::establish(url).await?,
        "rule_executions",
        None,
    )
    .await
}

#[tokio::test]
async fn a_drain_survives_a_postgres_crash_and_a_stop() -> anyhow::Result<()> {
    let pg = OwnPostgres::start()?;
    let url = pg.url("postgres");
    rules_store::db::migrations::run_pending(&PgTarget::new(&url, None)?).await?;
    let mut h = Harness::new("pg-faults").await?;
    add_rule(&url, publish_rule(&h.out(), json!({}))).await?;
    h.create_group().await?;
    for i in 0..EVENTS {
        h.send("donation.received", json!({"amount": 10 + i}))
            .await?;
    }
    h.start_worker(&[
        ("DATABASE_URL", url.clone()),
        ("RULES__DATABASE__CONNECT_TIMEOUT_MS", "1000".into()),
        ("RULES__DATABASE__ACQUIRE_TIMEOUT_MS", "1000".into()),
        // Small batches, one in flight at a time: the drain lasts long enough for
        // the faults to land inside it (at 10 a read, overlapping, a fast machine
        // drained the last 2,890 events within the 300 ms after the cut).
        ("RULES__WORKER__BATCH_SIZE", "5".into()),
        ("RULES__WORKER__MAX_IN_FLIGHT", "5".into()),
    ])
    .await?;
    h.wait_rules_loaded(1).await?;
    // Mid-drain: a crash (connections cut, no checkpoint) and a start again.
    eventually(WAIT, || async {
        Ok(executions(&url).await.unwrap_or(0) > 0)
    })
    .await?;
    let before_crash = executions(&url).await?;
    pg.restart()?;
    // Every connection of the worker cut (`pg_terminate_backend`), as an operator or
    // a failover would.
    eventually(WAIT, || async {
        Ok(executions(&url).await.unwrap_or(0) > before_crash + 50)
    })
    .await?;
    let before_terminate = executions(&url).await?;
    let mut admin = AsyncPgConnection::establish(&url).await?;
    diesel::sql_query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'",
    )
    .execute(&mut admin)
    .await?;
    drop(admin);
    // Then an orderly stop for a few seconds.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before_stop = executions(&url).await?;
    pg.stop("fast")?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    pg.start_server()?;
    eprintln!(
        "faults: crash after {before_crash}, connections cut after {before_terminate}, stop after {before_stop} of {EVENTS} executions"
    );
    assert!(
        before_stop < EVENTS as i64,
        "both faults landed inside the drain ({before_crash}, then {before_stop} of {EVENTS} executed)"
    );
    eventually(WAIT, || async {
        Ok(h.pending_and_lag().await? == (0, Some(0)))
    })
    .await?;
    assert_eq!(
        executions(&url).await?,
        EVENTS as i64,
        "every event executed, once"
    );
    let published = h.read_stream(&h.out()).await?;
    let ids: HashSet<String> = published
        .iter()
        .filter_map(|(_, f)| {
            f.iter()
                .find(|(k, _)| k == "execution_id")
                .map(|(_, v)| v.clone())
        })
        .collect();
    assert_eq!(ids.len(), EVENTS, "one execution id per event");
    assert_eq!(published.len(), EVENTS, "no publish repeated");
    // A rule created after the outage takes effect (the listener reconnected).
    add_rule(&url, publish_rule(&h.out(), json!({"name": "after"}))).await?;
    h.wait_rules_loaded(2).await?;
    Ok(())
}

/// A pooled connection whose backend is gone (a restart, `pg_terminate_backend`)
/// is not handed out again, though the pool no longer asks a connection in use a
/// moment ago with a round trip (`db::build_pool`): the pool's one connection is
/// terminated between two uses, and the second use gets a new one, first time.
#[tokio::test]
async fn a_pooled_connection_whose_backend_is_gone_is_not_handed_out() -> anyhow::Result<()> {
    #[derive(diesel::QueryableByName)]
    struct Backend {
        #[diesel(sql_type = diesel::sql_types::Int4)]
        pid: i32,
    }
    let query = "SELECT pg_backend_pid() AS pid";
    let db = rules_e2e::TestDb::migrated().await?;
    let pool = rules_store::db::build_pool(&rules_store::config::DatabaseSettings {
        url: db.url.clone(),
        pool_size: 1,
        acquire_timeout_ms: 5_000,
        connect_timeout_ms: 5_000,
        ca_file: None,
    })?;
    let first = diesel::sql_query(query)
        .get_result::<Backend>(&mut pool.get().await?)
        .await?
        .pid;
    let mut admin = db.conn().await?;
    diesel::sql_query(format!("SELECT pg_terminate_backend({first})"))
        .execute(&mut admin)
        .await?;
    // The backend has exited, and its end has reached the client.
    for _ in 0..100 {
        let gone = diesel::sql_query(format!(
            "SELECT pid FROM pg_stat_activity WHERE pid = {first}"
        ))
        .load::<Backend>(&mut admin)
        .await?
        .is_empty();
        if gone {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = diesel::sql_query(query)
        .get_result::<Backend>(&mut pool.get().await?)
        .await?
        .pid;
    assert_ne!(first, second, "a new connection");
    Ok(())
}
