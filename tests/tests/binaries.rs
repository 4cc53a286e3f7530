//! The api and worker binaries start against real services, answer their probes,
//! refuse bad configuration with one line, and exit 0 on SIGTERM.

use rules_e2e::{free_port, wait_http_ok, Process, RedisKeys, TestDb};
use std::time::Duration;

#[tokio::test]
async fn api_serves_probes_and_stops_on_sigterm() -> anyhow::Result<()> {
    let db = TestDb::migrated().await?;
    let port = free_port()?;
    let mut api = Process::start("rules-api", &rules_e2e::api_env(&db.url, port, true, &[]))?;
    wait_http_ok(
        &format!("http://127.0.0.1:{port}/health/live"),
        Duration::from_secs(20),
    )
    .await?;
    let ready = rules_e2e::http_client()
        .get(format!("http://127.0.0.1:{port}/health/ready"))
        .send()
        .await?;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await?;
    assert_eq!(body["checks"]["postgres"]["status"], "ok");
    assert_eq!(body["checks"]["redis"]["status"], "ok");

    // The real binary serves the rule API behind its key.
    let client = rules_e2e::http_client();
    let rule = serde_json::json!({
        "livestream_id": "0e2a9c1b-0000-4000-8000-00000000abcd", "name": "e2e",
        "trigger_config": {"event_types": ["follow"]},
        "actions": [{"type": "log", "message": "{{ event.data.user.name }} followed"}]
    });
    let url = format!("http://127.0.0.1:{port}/api/rules");
    let denied = client.post(&url).json(&rule).send().await?;
    assert_eq!(denied.status(), 401);
    let created = client
        .post(&url)
        .bearer_auth(rules_e2e::TEST_KEY)
        .json(&rule)
        .send()
        .await?;
    assert_eq!(created.status(), 201);
    let location = created
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_default();
    let created: serde_json::Value = created.json().await?;
    let read = client
        .get(format!("http://127.0.0.1:{port}{location}"))
        .bearer_auth(rules_e2e::TEST_KEY)
        .send()
        .await?;
    assert_eq!(read.status(), 200);
    // `Location` names the rule just created, and reading it gives it back.
    let read: serde_json::Value = read.json().await?;
    assert_eq!(read, created, "{location}");
    let status = api.terminate().await?;
    assert!(status.success(), "exit status {status:?}");
    Ok(())
}

#[tokio::test]
async fn readiness_names_the_failing_part() -> anyhow::Result<()> {
    let db = TestDb::migrated().await?;
    let port = free_port()?;
    let mut api = Process::start(
        "rules-api",
        &rules_e2e::api_env(
            &db.url,
            port,
            true,
            &[
                ("RULES__DATABASE__ACQUIRE_TIMEOUT_MS", "500".into()),
                ("RULES__DATABASE__CONNECT_TIMEOUT_MS", "500".into()),
            ],
        ),
    )?;
    wait_http_ok(
        &format!("http://127.0.0.1:{port}/health/ready"),
        Duration::from_secs(20),
    )
    .await?;
    // The database goes away under the running API.
    let name = db.name.clone();
    drop(db);
    let ready = rules_e2e::http_client()
        .get(format!("http://127.0.0.1:{port}/health/ready"))
        .send()
        .await?;
    assert_eq!(ready.status(), 503, "database {name} was dropped");
    let body: serde_json::Value = ready.json().await?;
    assert_eq!(body["checks"]["postgres"]["status"], "failing");
    assert_eq!(body["checks"]["redis"]["status"], "ok");
    let live = rules_e2e::http_client()
        .get(format!("http://127.0.0.1:{port}/health/live"))
        .send()
        .await?;
    assert_eq!(
        live.status(),
        200,
        "liveness does not depend on the database"
    );
    assert!(api.terminate().await?.success());
    Ok(())
}

#[tokio::test]
async fn bad_configuration_stops_with_one_line_naming_the_setting() -> anyhow::Result<()> {
    for binary in ["rules-api", "rules-worker", "rules-migrate"] {
        let mut p = Process::start(binary, &[("RULES__REDIS__POOL_SIZE", "lots".into())])?;
        let status = p.wait(Duration::from_secs(20)).await?;
        let (_, err) = p.output().await?;
        assert!(!status.success(), "{binary} must fail");
        assert_eq!(err.trim().lines().count(), 1, "{binary}: {err}");
        assert!(err.contains("redis.pool_size"), "{binary}: {err}");
    }
    Ok(())
}

#[tokio::test]
async fn the_api_refuses_to_start_without_keys() -> anyhow::Result<()> {
    let db = TestDb::migrated().await?;
    let port = free_port()?;
    let mut api = Process::start("rules-api", &rules_e2e::api_env(&db.url, port, false, &[]))?;
    let status = api.wait(Duration::from_secs(30)).await?;
    let (_, err) = api.output().await?;
    assert!(!status.success());
    assert!(err.contains("api.keys"), "{err}");
    Ok(())
}

#[tokio::test]
async fn unreachable_redis_stops_the_api_at_start() -> anyhow::Result<()> {
    let db = TestDb::migrated().await?;
    let port = free_port()?;
    let mut api = Process::start(
        "rules-api",
        &rules_e2e::api_env(
            &db.url,
            port,
            true,
            &[
                ("REDIS_URL", format!("redis://127.0.0.1:{}/0", free_port()?)),
                // It waits for an outage to end (tests/tests/startup.rs), this long.
                ("RULES__API__STARTUP_TIMEOUT_SECONDS", "1".into()),
            ],
        ),
    )?;
    let status = api.wait(Duration::from_secs(30)).await?;
    let (_, err) = api.output().await?;
    assert!(!status.success());
    assert!(err.contains("Redis at redis.url is not reachable"), "{err}");
    Ok(())
}

#[tokio::test]
async fn worker_joins_its_groups_and_stops_on_sigterm() -> anyhow::Result<()> {
    let db = TestDb::migrated().await?;
    let keys = RedisKeys::new("worker-start");
    let streams = format!("{},{}", keys.key("events:0"), keys.key("events:1"));
    let group = "rule-engine-test";
    let mut env = keys.redis.env();
    env.extend([
        ("DATABASE_URL", db.url.clone()),
        ("RULES__WORKER__STREAMS", streams),
        ("RULES__WORKER__GROUP", group.into()),
        ("RULES__WORKER__DEAD_LETTER_STREAM", keys.key("dead")),
    ]);
    let mut worker = Process::start("rules-worker", &env)?;
    let mut conn = keys.conn().await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    for shard in ["events:0", "events:1"] {
        loop {
            let groups: redis::RedisResult<redis::Value> = redis::cmd("XINFO")
                .arg("GROUPS")
                .arg(keys.key(shard))
                .query_async(&mut conn)
                .await;
            if matches!(&groups, Ok(redis::Value::Array(g)) if !g.is_empty()) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "group on {shard} not created"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let status = worker.terminate().await?;
    assert!(status.success(), "exit status {status:?}");
    Ok(())
}
