//! Nothing stalls, nothing is silently lost: entries no producer should send, crash
//! loops, entries left pending by this very consumer, a dropped LISTEN connection.
//! Each test fails on the worker before its fix.

use rules_e2e::worker::{eventually, publish_rule, Harness};
use rules_store::streams::Body;
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test]
async fn a_non_utf8_field_name_is_dead_lettered_and_spoils_nothing_else() -> anyhow::Result<()> {
    let mut h = Harness::new("s-poison").await?;
    let rule = h.add_rule(publish_rule(&h.out(), json!({}))).await?;
    h.create_group().await?;
    // Valid entries on both sides of two poison ones, all read in one batch.
    let mut conn = h.keys.conn().await?;
    let mut ids = Vec::new();
    for i in 0..20 {
        if i == 7 {
            let _: String = redis::cmd("XADD")
                .arg(h.stream())
                .arg("*")
                .arg(b"\xff".as_slice())
                .arg("x")
                .query_async(&mut conn)
                .await?;
            let _: String = redis::cmd("XADD")
                .arg(h.stream())
                .arg("*")
                .arg("id")
                .arg(b"\xfe\xff".as_slice())
                .arg("type")
                .arg("t")
                .query_async(&mut conn)
                .await?;
        }
        ids.push(
            h.send("donation.received", json!({"amount": 10 + i}))
                .await?,
        );
    }
    h.start_worker(&[]).await?;
    eventually(WAIT, || async {
        Ok(h.executions(Some(rule)).await?.len() == 20)
    })
    .await?;
    eventually(WAIT, || async {
        Ok(h.read_stream_raw(&h.dead_letter()).await?.len() == 2)
    })
    .await?;
    let dead = h.read_stream_raw(&h.dead_letter()).await?;
    let fields = |i: usize| match &dead[i].body {
        Body::Fields(f) => f.clone(),
        other => panic!("dead letter {i} is {other:?}"),
    };
    let get = |i: usize, name: &[u8]| {
        fields(i)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .unwrap_or_default()
    };
    assert!(
        String::from_utf8_lossy(&get(0, b"reason")).contains("neither an `event` field"),
        "{:?}",
        fields(0)
    );
    // The original bytes survive, under their own prefix.
    assert_eq!(get(0, b"entry.\xff"), b"x");
    assert!(String::from_utf8_lossy(&get(1, b"reason")).contains("`id`"));
    assert_eq!(get(1, b"entry.id"), b"\xfe\xff");
    eventually(WAIT, || async { Ok(h.pending_and_lag().await?.0 == 0) }).await?;
    assert!(
        h.workers[0].child.try_wait()?.is_none(),
        "the worker runs on"
    );
    Ok(())
}

/// Reads the entries of `consumer` with XREADGROUP, then claims them back to it
/// `times` more times: each claim is a delivery, as each restart of a crash loop is.
async fn deliver_to(h: &Harness, consumer: &str, times: usize) -> anyhow::Result<()> {
    let mut conn = h.keys.conn().await?;
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("rule-engine")
        .arg(consumer)
        .arg("STREAMS")
        .arg(h.stream())
        .arg(">")
        .query_async(&mut conn)
        .await?;
    let pending = rules_store::streams::pending(
        &mut conn,
        &h.stream(),
        "rule-engine",
        0,
        None,
        100,
        Some(consumer),
    )
    .await?;
    let ids: Vec<_> = pending.iter().map(|p| p.id).collect();
    for _ in 0..times {
        rules_store::streams::claim(&mut conn, &h.stream(), "rule-engine", consumer, 0, &ids)
            .await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_crash_loop_under_a_stable_name_ends_in_the_dead_letter_stream() -> anyhow::Result<()> {
    let mut h = Harness::new("s-crashloop").await?;
    let rule = h.add_rule(publish_rule(&h.out(), json!({}))).await?;
    h.create_group().await?;
    h.send("donation.received", json!({"amount": 50})).await?;
    // Delivered six times to "pod-0", which crashed each time.
    deliver_to(&h, "pod-0", 5).await?;
    h.start_worker(&[
        ("RULES__WORKER__CONSUMER", "pod-0".into()),
        ("RULES__WORKER__MAX_DELIVERIES", "5".into()),
    ])
    .await?;
    eventually(WAIT, || async {
        Ok(h.read_stream(&h.dead_letter()).await?.len() == 1)
    })
    .await?;
    let dead = h.read_stream(&h.dead_letter()).await?;
    assert!(
        dead[0]
            .1
            .iter()
            .any(|(k, v)| k == "reason" && v.contains("delivered 7 times")),
        "{dead:?}"
    );
    assert!(h.executions(Some(rule)).await?.is_empty(), "not run again");
    eventually(WAIT, || async { Ok(h.pending_and_lag().await?.0 == 0) }).await?;
    Ok(())
}

#[tokio::test]
async fn a_live_worker_takes_back_its_own_entries_left_idle() -> anyhow::Result<()> {
    let mut h = Harness::new("s-own").await?;
    let rule = h.add_rule(publish_rule(&h.out(), json!({}))).await?;
    h.start_worker(&[
        ("RULES__WORKER__CONSUMER", "self".into()),
        ("RULES__WORKER__CLAIM_IDLE_MS", "300".into()),
        ("RULES__WORKER__CLAIM_INTERVAL_MS", "200".into()),
    ])
    .await?;
    // An entry delivered to "self" whose reply never reached the process (a read
    // that failed on the way back): added and read in one transaction, so the
    // running worker cannot read it first.
    let mut conn = h.keys.conn().await?;
    let event = json!({"id": uuid::Uuid::new_v4(), "type": "donation.received",
                       "livestream_id": rules_e2e::worker::LS, "data": {"amount": 99}});
    let _: redis::Value = redis::pipe()
        .atomic()
        .cmd("XADD")
        .arg(h.stream())
        .arg("*")
        .arg("event")
        .arg(event.to_string())
        .cmd("XREADGROUP")
        .arg("GROUP")
        .arg("rule-engine")
        .arg("self")
        .arg("STREAMS")
        .arg(h.stream())
        .arg(">")
        .query_async(&mut conn)
        .await?;
    assert_eq!(h.pending_and_lag().await?.0, 1);
    eventually(WAIT, || async {
        Ok(h.executions(Some(rule)).await?.len() == 1)
    })
    .await?;
    eventually(WAIT, || async { Ok(h.pending_and_lag().await?.0 == 0) }).await?;
    Ok(())
}

#[tokio::test]
async fn a_dropped_listen_connection_is_reopened_and_rules_stay_current() -> anyhow::Result<()> {
    let mut h = Harness::new("s-listen").await?;
    h.start_worker(&[("RULES__WORKER__RECONCILE_SECONDS", "3600".into())])
        .await?;
    // Every connection of the worker to its database is cut (as a PostgreSQL
    // restart or pg_terminate_backend would).
    h.sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A rule created afterwards fires: the listener came back (the hourly
    // reconcile is far away).
    let rule = h.add_rule(publish_rule(&h.out(), json!({}))).await?;
    let mut fired = false;
    for _ in 0..100 {
        h.send("donation.received", json!({"amount": 10})).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        if !h.executions(Some(rule)).await?.is_empty() {
            fired = true;
            break;
        }
    }
    assert!(fired, "a rule created after the cut never fired");
    assert!(
        h.workers[0].child.try_wait()?.is_none(),
        "the worker runs on"
    );
    Ok(())
}

#[tokio::test]
async fn a_publish_to_the_services_own_keys_fails_alone_and_the_rest_flows() -> anyhow::Result<()> {
    let mut h = Harness::new("s-publish").await?;
    // A key of the gate's (its own rule's cooldown, say).
    let target = format!("re:{{{}}}:cd:_", uuid::Uuid::new_v4());
    // Stored behind the API's back (as a rule saved before the policy existed).
    let hostile = h
        .add_rule(json!({
            "name": "hostile",
            "trigger_config": {"event_types": ["donation.received"]},
            "actions": [{"type": "publish", "stream": target},
                        {"type": "publish", "stream": h.stream()}]
        }))
        .await?;
    let fine = h.add_rule(publish_rule(&h.out(), json!({}))).await?;
    h.start_worker(&[]).await?;
    for i in 0..5 {
        h.send("donation.received", json!({"amount": 20 + i}))
            .await?;
    }
    eventually(WAIT, || async {
        Ok(h.executions(Some(fine)).await?.len() == 5
            && h.executions(Some(hostile)).await?.len() == 5)
    })
    .await?;
    for (_, _, status, result) in h.executions(Some(hostile)).await? {
        assert_eq!(status, "failed");
        let actions = result["actions"].as_array().cloned().unwrap_or_default();
        assert_eq!(actions.len(), 2);
        for action in actions {
            assert!(
                action["error"].as_str().unwrap_or("").contains("refused"),
                "{action}"
            );
        }
    }
    let mut conn = h.keys.conn().await?;
    let written: bool = redis::cmd("EXISTS")
        .arg(&target)
        .query_async(&mut conn)
        .await?;
    assert!(!written, "the service's own key was not written");
    // The input stream holds the five events only: the rule did not feed itself.
    assert_eq!(h.read_stream(&h.stream()).await?.len(), 5);
    Ok(())
}

#[tokio::test]
async fn a_publish_during_a_redis_outage_is_retried() -> anyhow::Result<()> {
    let mut redis = rules_e2e::services::OwnRedis::start()?;
    let mut h = Harness::on_redis("s-outage", redis.url()).await?;
    let receiver = rules_e2e::receiver::Receiver::start(&[])?;
    // A slow webhook first, so Redis can go away while the execution is under way.
    let rule = h
        .add_rule(json!({
            "name": "slow then publish",
            "trigger_config": {"event_types": ["donation.received"]},
            "actions": [{"type": "webhook", "url": format!("http://127.0.0.1:{}/slow/1500", receiver.port),
                         "timeout_ms": 10000},
                        {"type": "publish", "stream": h.out()}]
        }))
        .await?;
    h.start_worker(&[("RULES__REDIS__CONNECT_TIMEOUT_MS", "500".into())])
        .await?;
    h.send("donation.received", json!({"amount": 1})).await?;
    eventually(WAIT, || async { Ok(!receiver.received().is_empty()) }).await?;
    redis.kill()?;
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    redis.restart()?;
    eventually(Duration::from_secs(30), || async {
        Ok(h.executions(Some(rule)).await?.len() == 1)
    })
    .await?;
    let (_, _, status, result) = h.executions(Some(rule)).await?.remove(0);
    assert_eq!(status, "succeeded", "{result}");
    let publish = &result["actions"][1];
    assert!(publish["attempts"].as_u64().unwrap_or(0) > 1, "{publish}");
    assert_eq!(h.read_stream(&h.out()).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_hung_destination_fills_its_own_lane_and_others_flow() -> anyhow::Result<()> {
    let receiver = rules_e2e::receiver::Receiver::start(&[])?;
    let mut h = Harness::new("s-lanes").await?;
    let hung = h
        .add_rule(json!({
            "name": "slow bot",
            "trigger_config": {"event_types": ["follow"]},
            "actions": [{"type": "webhook", "url": format!("http://127.0.0.1:{}/slow/8000", receiver.port),
                         "timeout_ms": 20000}]
        }))
        .await?;
    let other_ls = "0e2a9c1b-0000-4000-8000-0000000000ff";
    let other = h
        .add_rule(json!({
            "livestream_id": other_ls,
            "name": "overlay",
            "trigger_config": {"event_types": ["follow"]},
            "actions": [{"type": "publish", "stream": h.out()}]
        }))
        .await?;
    h.start_worker(&[
        ("RULES__WORKER__MAX_IN_FLIGHT", "40".into()),
        ("RULES__WORKER__BATCH_SIZE", "10".into()),
        ("RULES__WORKER__MAX_IN_FLIGHT_PER_DESTINATION", "10".into()),
        ("RULES__WORKER__CLAIM_IDLE_MS", "60000".into()),
    ])
    .await?;
    // Far more events for the hung destination than the whole in-flight budget.
    for _ in 0..60 {
        h.send("follow", json!({})).await?;
    }
    for _ in 0..5 {
        let event = json!({"id": uuid::Uuid::new_v4(), "type": "follow",
                           "livestream_id": other_ls, "data": {}});
        h.send_fields(&[("event", event.to_string())]).await?;
    }
    eventually(WAIT, || async {
        Ok(h.executions(Some(other)).await?.len() == 5)
    })
    .await?;
    assert!(
        h.executions(Some(hung)).await?.is_empty(),
        "the other livestream ran while every call to the hung destination still hangs"
    );
    assert!(receiver.received().len() <= 10, "the lane holds 10 at most");
    Ok(())
}

/// Entries far larger than the in-flight size budget, in reads larger than all of
/// it: each read waits for the room it needs (all of it, for a read larger than
/// the budget) and every entry flows.
#[tokio::test]
async fn entries_larger_than_the_size_budget_flow_a_budget_at_a_time() -> anyhow::Result<()> {
    let mut h = Harness::new("s-bytes").await?;
    let rule = h.add_rule(publish_rule(&h.out(), json!({}))).await?;
    h.create_group().await?;
    let padding = "x".repeat(20_000);
    for i in 0..40 {
        h.send(
            "donation.received",
            json!({"amount": 10 + i, "note": padding}),
        )
        .await?;
    }
    h.start_worker(&[
        ("RULES__WORKER__BATCH_SIZE", "25".into()),
        ("RULES__WORKER__MAX_EVENT_BYTES", "32768".into()),
        ("RULES__WORKER__MAX_IN_FLIGHT_BYTES", "32768".into()),
    ])
    .await?;
    eventually(WAIT, || async {
        Ok(h.executions(Some(rule)).await?.len() == 40)
    })
    .await?;
    eventually(WAIT, || async { Ok(h.pending_and_lag().await?.0 == 0) }).await?;
    assert!(h.read_stream(&h.dead_letter()).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_slow_action_of_a_live_worker_is_not_taken_over() -> anyhow::Result<()> {
    let receiver = rules_e2e::receiver::Receiver::start(&[])?;
    let mut h = Harness::new("s-heartbeat").await?;
    h.add_rule(json!({
        "name": "slow bot",
        "trigger_config": {"event_types": ["follow"]},
        "actions": [{"type": "webhook", "url": format!("http://127.0.0.1:{}/slow/3000", receiver.port),
                     "timeout_ms": 10000}]
    }))
    .await?;
    // Entries idle for a second look abandoned; the action takes three.
    let fast_claims = [
        ("RULES__WORKER__CLAIM_IDLE_MS", "1000".to_string()),
        ("RULES__WORKER__CLAIM_INTERVAL_MS", "200".to_string()),
    ];
    h.start_worker(&fast_claims).await?;
    h.send("follow", json!({})).await?;
    eventually(WAIT, || async { Ok(receiver.received().len() == 1) }).await?;
    // A second replica joins while the first is still waiting on the webhook.
    h.start_worker(&fast_claims).await?;
    eventually(WAIT, || async { Ok(h.pending_and_lag().await?.0 == 0) }).await?;
    assert_eq!(
        receiver.received().len(),
        1,
        "the heartbeat kept the entry with its live worker: one call, not two"
    );
    Ok(())
}

#[tokio::test]
async fn a_takeover_claims_every_idle_entry_in_one_round() -> anyhow::Result<()> {
    let mut h = Harness::new("s-takeover").await?;
    let rule = h.add_rule(publish_rule(&h.out(), json!({}))).await?;
    h.create_group().await?;
    for i in 0..35 {
        h.send("donation.received", json!({"amount": 10 + i}))
            .await?;
    }
    // A consumer that read them all and died.
    let mut conn = h.keys.conn().await?;
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("rule-engine")
        .arg("ghost")
        .arg("STREAMS")
        .arg(h.stream())
        .arg(">")
        .query_async(&mut conn)
        .await?;
    // Pages of ten, one claim round every ten seconds: the first round must take
    // all 35 (before, it took one page per round).
    h.start_worker(&[
        ("RULES__WORKER__BATCH_SIZE", "10".into()),
        ("RULES__WORKER__CLAIM_IDLE_MS", "100".into()),
        ("RULES__WORKER__CLAIM_INTERVAL_MS", "10000".into()),
    ])
    .await?;
    eventually(Duration::from_secs(14), || async {
        Ok(h.executions(Some(rule)).await?.len() == 35)
    })
    .await?;
    Ok(())
}

/// A Redis that is loading its data (after a restart) answers every command with
/// LOADING. The gate must fail the whole round trip then, so the batch is retried,
/// not record each pair as failed (found by `make chaos`, redis-kill-9: 100
/// executions recorded `failed` while the restarted server loaded its AOF).
#[tokio::test]
async fn a_redis_still_loading_fails_the_gate_round_trip_not_the_pairs() -> anyhow::Result<()> {
    use rules_core::simulate::Pending;
    let redis = rules_e2e::services::OwnRedis::start()?;
    let client = redis::Client::open(redis.url())?;
    // Filling it is 20 pipelines of 5,000 SETs: on a loaded machine one takes longer
    // than redis-rs's default reply bound (500 ms), so this connection waits 30 s.
    let mut conn = rules_store::redis::dedicated_connection(
        &redis.url(),
        Duration::from_secs(1),
        Some(Duration::from_secs(30)),
    )
    .await?;
    // Enough keys, each loaded slowly, for the load to last a few seconds.
    for chunk in 0..20 {
        let mut pipe = redis::pipe();
        for i in 0..5_000 {
            pipe.cmd("SET").arg(format!("k{chunk}:{i}")).arg(i).ignore();
        }
        pipe.query_async::<()>(&mut conn).await?;
    }
    // Loaded slowly, answering other clients (LOADING) every KiB loaded.
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("key-load-delay")
        .arg(50)
        .arg("loading-process-events-interval-bytes")
        .arg(1024)
        .query_async::<()>(&mut conn)
        .await?;
    let url = redis.url();
    let reload = std::thread::spawn(move || -> redis::RedisResult<()> {
        let mut c = redis::Client::open(url)?.get_connection()?;
        redis::cmd("DEBUG").arg("RELOAD").query::<()>(&mut c)
    });
    let probe = client.get_multiplexed_async_connection().await?;
    eventually(WAIT, || {
        let mut probe = probe.clone();
        async move {
            let info: redis::RedisResult<String> = redis::cmd("INFO")
                .arg("persistence")
                .query_async(&mut probe)
                .await;
            Ok(info.is_ok_and(|i| i.contains("loading:1")))
        }
    })
    .await?;
    let rule = rules_core::CompiledRule::from_json(
        uuid::Uuid::now_v7(),
        1,
        &publish_rule("out", json!({"livestream_id": rules_e2e::worker::LS})),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let event = rules_core::Event::from_value(
        &json!({"id": uuid::Uuid::new_v4(), "type": "donation.received",
                "livestream_id": rules_e2e::worker::LS, "data": {"amount": 10}}),
        None,
    )?;
    let pairs = [Pending::new(&rule, &event, "s:1-0", 0)];
    let mut gate_conn = client.get_multiplexed_async_connection().await?;
    let answer = rules_store::gate::decide(&mut gate_conn, &pairs, 60_000).await;
    let loading = matches!(&answer, Err(e) if e.to_string().contains("loading"));
    assert!(loading, "the round trip fails while loading: {answer:?}");
    drop(redis);
    let _ = reload.join();
    Ok(())
}

/// The service's Redis pool on a Redis of the test's own, with the default bounds.
fn redis_pool(
    redis: &rules_e2e::services::OwnRedis,
) -> anyhow::Result<rules_store::redis::RedisPool> {
    Ok(rules_store::redis::build_pool(
        &rules_store::config::RedisSettings {
            url: redis.url(),
            cluster: false,
            pool_size: 2,
            acquire_timeout_ms: 5_000,
            connect_timeout_ms: 5_000,
            response_timeout_ms: 5_000,
        },
    )?)
}

/// A Redis that pauses for longer than the client's own 500 ms reply bound (an
/// fsync of a large write; `DEBUG SLEEP` here) answers the service's pooled
/// connections late, not never: the command waits, up to `redis.response_timeout_ms`,
/// instead of failing (a retried batch, or a publish of unknown outcome).
#[tokio::test]
async fn a_pooled_command_waits_out_a_redis_pause() -> anyhow::Result<()> {
    let redis = rules_e2e::services::OwnRedis::start()?;
    let pool = redis_pool(&redis)?;
    let mut conn = pool.get().await?;
    let pause = redis.pause(0.8).await?;
    let pong: String = redis::cmd("PING").query_async(&mut conn).await?;
    assert_eq!(pong, "PONG");
    pause.await??;
    Ok(())
}

/// Readiness answers within a probe's one-second timeout even when Redis does not
/// answer at all (paused for 3 s here), naming Redis; the commands of the process
/// meanwhile wait for it (`redis.response_timeout_ms`).
#[tokio::test]
async fn readiness_names_a_paused_redis_within_a_second() -> anyhow::Result<()> {
    let db = rules_e2e::TestDb::migrated().await?;
    let redis = rules_e2e::services::OwnRedis::start()?;
    let pool = redis_pool(&redis)?;
    let db_pool = rules_store::db::build_pool(&rules_store::config::DatabaseSettings {
        url: db.url.clone(),
        pool_size: 2,
        acquire_timeout_ms: 5_000,
        connect_timeout_ms: 5_000,
        ca_file: None,
    })?;
    assert!(
        rules_store::readiness(&db_pool, &pool).await.0,
        "ready before the pause"
    );
    let pause = redis.pause(3.0).await?;
    let started = std::time::Instant::now();
    let (ok, body) = rules_store::readiness(&db_pool, &pool).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(!ok);
    assert_eq!(body["checks"]["redis"]["status"], "failing", "{body}");
    assert_eq!(body["checks"]["postgres"]["status"], "ok", "{body}");
    pause.await??;
    Ok(())
}
