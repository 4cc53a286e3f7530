//! Started during an outage, the binaries wait for PostgreSQL and Redis (readiness
//! 503) instead of exiting at once, and give up, naming the service, after their
//! start-up timeout.

use rules_e2e::services::OwnRedis;
use rules_e2e::worker::Harness;
use rules_e2e::{api_env, free_port, http_client, wait_http_ok, Process, TestDb};
use std::time::{Duration, Instant};

async fn ready_status(port: u16) -> Option<u16> {
    let url = format!("http://127.0.0.1:{port}/health/ready");
    let response = http_client().get(url).send().await.ok()?;
    Some(response.status().as_u16())
}

#[tokio::test]
async fn a_worker_started_before_redis_waits_for_it() -> anyhow::Result<()> {
    let redis_port = free_port()?;
    let mut h = Harness::on_redis("st-redis", format!("redis://127.0.0.1:{redis_port}/0")).await?;
    let http = free_port()?;
    let mut env = h.env(&[("RULES__WORKER__STARTUP_TIMEOUT_SECONDS", "60".into())]);
    env.push(("RULES__WORKER__HTTP_BIND", format!("127.0.0.1:{http}")));
    h.workers.push(Process::start("rules-worker", &env)?);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(
        h.workers[0].child.try_wait()?.is_none(),
        "still waiting, not exited"
    );
    assert_eq!(
        ready_status(http).await,
        Some(503),
        "not ready while Redis is away"
    );
    let _redis = OwnRedis::start_on(redis_port)?;
    wait_http_ok(
        &format!("http://127.0.0.1:{http}/health/ready"),
        Duration::from_secs(15),
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_worker_gives_up_after_its_startup_timeout_naming_the_service() -> anyhow::Result<()> {
    let h = Harness::new("st-pg").await?;
    let http = free_port()?;
    let mut env = h.env(&[
        (
            "DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:{}/x", free_port()?),
        ),
        ("RULES__WORKER__STARTUP_TIMEOUT_SECONDS", "2".into()),
    ]);
    env.push(("RULES__WORKER__HTTP_BIND", format!("127.0.0.1:{http}")));
    let started = Instant::now();
    let mut worker = Process::start("rules-worker", &env)?;
    let status = worker.wait(Duration::from_secs(20)).await?;
    assert!(!status.success());
    assert!(
        started.elapsed() >= Duration::from_millis(1_500),
        "it waited"
    );
    let (_, err) = worker.output().await?;
    assert!(
        err.contains("PostgreSQL") && err.contains("worker.startup_timeout_seconds"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn the_api_serves_503_while_waiting_and_gives_up_naming_the_service() -> anyhow::Result<()> {
    let db = TestDb::migrated().await?;
    let port = free_port()?;
    let env = api_env(
        &db.url,
        port,
        true,
        &[
            ("REDIS_URL", format!("redis://127.0.0.1:{}/0", free_port()?)),
            ("RULES__API__STARTUP_TIMEOUT_SECONDS", "3".into()),
        ],
    );
    let mut api = Process::start("rules-api", &env)?;
    let mut saw_503 = false;
    for _ in 0..40 {
        if ready_status(port).await == Some(503) {
            saw_503 = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(saw_503, "readiness answered 503 while waiting");
    let status = api.wait(Duration::from_secs(20)).await?;
    assert!(!status.success());
    let (_, err) = api.output().await?;
    assert!(
        err.contains("Redis") && err.contains("api.startup_timeout_seconds"),
        "{err}"
    );
    Ok(())
}
