//! The worker binary end to end: real PostgreSQL, Redis, webhook receiver.

use anyhow::Context;
use rules_e2e::receiver::Receiver;
use rules_e2e::worker::{eventually, publish_rule, Harness, LS};
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test]
async fn matching_events_publish_and_are_recorded() -> anyhow::Result<()> {
    let mut h = Harness::new("w-publish").await?;
    let rule = h.add_rule(publish_rule(&h.out(), json!({}))).await?;
    h.start_worker(&[]).await?;
    let big = h
        .send(
            "donation.received",
            json!({"amount": 25.5, "user": {"name": "alice"}}),
        )
        .await?;
    h.send(
        "donation.received",
        json!({"amount": 5, "user": {"name": "bob"}}),
    )
    .await?;
    h.send("follow", json!({"amount": 50})).await?;
    // The flat form works too.
    let flat = Uuid::new_v4();
    h.send_fields(&[
        ("id", flat.to_string()),
        ("type", "donation.received".into()),
        ("livestream_id", LS.into()),
        (
            "data",
            r#"{"amount": 10, "user": {"name": "carol"}}"#.into(),
        ),
    ])
    .await?;
    eventually(WAIT, || async {
        Ok(h.executions(Some(rule)).await?.len() == 2)
    })
    .await?;
    eventually(WAIT, || async { Ok(h.pending_and_lag().await?.0 == 0) }).await?;
    let out = h.read_stream(&h.out()).await?;
    assert_eq!(out.len(), 2);
    // Entries' actions run concurrently: find the big donation's output.
    let big_text = big.to_string();
    let fields = &out
        .iter()
        .find(|(_, f)| f.iter().any(|(k, v)| k == "event_id" && *v == big_text))
        .ok_or_else(|| anyhow::anyhow!("no output for the big donation: {out:?}"))?
        .1;
    let get = |k: &str| {
        fields
            .iter()
            .find(|(f, _)| f == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&get("payload"))?,
        json!({"text": "alice donated 25.5!", "amount": 25.5})
    );
    assert_eq!(get("rule_id"), rule.to_string());
    assert_eq!(get("event_id"), big.to_string());
    let executions = h.executions(Some(rule)).await?;
    assert_eq!(executions[0].2, "succeeded");
    assert_eq!(executions[0].3["actions"][0]["type"], "publish");
    assert_eq!(executions[0].3["actions"][0]["status"], "succeeded");
    assert_eq!(get("execution_id").len(), 36);
    assert_eq!(h.counters(rule).await?, (2, 2, 0, 2, 0));
    let (pending, lag) = h.pending_and_lag().await?;
    assert_eq!(
        (pending, lag),
        (0, Some(0)),
        "everything acknowledged, and lag stays known"
    );
    Ok(())
}

#[tokio::test]
async fn webhooks_are_signed_idempotent_and_retried() -> anyhow::Result<()> {
    let receiver = Receiver::start(&[503, 500])?;
    let mut h = Harness::new("w-webhook").await?;
    let rule = h
        .add_rule(json!({
            "name": "hook",
            "trigger_config": {"event_types": ["follow"]},
            "actions": [{"type": "webhook", "url": receiver.url("/hooks/follow"),
                         "headers": {"X-User": "{{ event.data.user.name }}"},
                         "body": {"user": "{{ event.data.user.name }}", "tier": "{{ event.data.user.tier }}"}}]
        }))
        .await?;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    h.start_worker(&[("RULES__WORKER__WEBHOOK_SIGNING_SECRET", secret.into())])
        .await?;
    let event = h
        .send("follow", json!({"user": {"name": "dave", "tier": 2}}))
        .await?;
    eventually(WAIT, || async {
        Ok(h.executions(Some(rule)).await?.len() == 1)
    })
    .await?;
    let received = receiver.received();
    assert_eq!(received.len(), 3, "two 5xx answers, then success");
    let last = &received[2];
    assert_eq!(last.method, "POST");
    assert_eq!(last.path, "/hooks/follow");
    assert_eq!(last.json(), json!({"user": "dave", "tier": 2}));
    assert_eq!(last.header("x-user"), Some("dave"));
    let key = last.header("idempotency-key").map(str::to_owned);
    assert!(
        received
            .iter()
            .all(|r| r.header("idempotency-key").map(str::to_owned) == key),
        "the same key on every retry"
    );
    let verifier = standardwebhooks::Webhook::new(secret)?;
    let mut headers = http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        headers.insert(name, last.header(name).unwrap_or_default().parse()?);
    }
    verifier.verify(&last.body, &headers)?;
    let executions = h.executions(Some(rule)).await?;
    let action = &executions[0].3["actions"][0];
    assert_eq!(
        (
            action["status"].as_str(),
            action["http_status"].as_i64(),
            action["attempts"].as_i64()
        ),
        (Some("succeeded"), Some(200), Some(3))
    );
    assert_eq!(executions[0].1, event);
    Ok(())
}

#[tokio::test]
async fn client_errors_fail_without_retry_and_private_destinations_are_refused(
) -> anyhow::Result<()> {
    let receiver = Receiver::start(&[404])?;
    let mut h = Harness::new("w-hook-fail").await?;
    let rule = h
        .add_rule(json!({"name": "hook", "trigger_config": {"event_types": ["follow"]},
            "actions": [{"type": "webhook", "url": receiver.url("/x")}, {"type": "log", "message": "after"}]}))
        .await?;
    h.start_worker(&[]).await?;
    h.send("follow", json!({})).await?;
    eventually(WAIT, || async {
        Ok(h.executions(Some(rule)).await?.len() == 1)
    })
    .await?;
    assert_eq!(receiver.received().len(), 1, "a 404 is not retried");
    let e = &h.executions(Some(rule)).await?[0];
    assert_eq!(e.2, "failed");
    assert_eq!(e.3["actions"][0]["http_status"], 404);
    assert_eq!(
        e.3["actions"][1]["status"], "succeeded",
        "a failed action does not stop the next"
    );
    assert_eq!(h.counters(rule).await?, (1, 1, 0, 0, 1));

    // Without webhook_allow_private, loopback is refused before any request.
    let mut strict = Harness::new("w-hook-private").await?;
    let rule = strict
        .add_rule(
            json!({"name": "hook", "trigger_config": {"event_types": ["follow"]},
            "actions": [{"type": "webhook", "url": receiver.url("/private")}]}),
        )
        .await?;
    strict
        .start_worker(&[("RULES__WEBHOOK__ALLOW_PRIVATE", "false".into())])
        .await?;
    strict.send("follow", json!({})).await?;
    eventually(WAIT, || async {
        Ok(strict.executions(Some(rule)).await?.len() == 1)
    })
    .await?;
    let e = &strict.executions(Some(rule)).await?[0];
    assert!(
        e.3["actions"][0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("not allowed"),
        "{}",
        e.3
    );
    assert!(receiver.received().iter().all(|r| r.path != "/private"));

    // A name that resolves only to loopback is refused by the resolver: at once,
    // never retried (the refusal is known by its type, not its text).
    let by_name = strict
        .add_rule(
            json!({"name": "hook by name", "trigger_config": {"event_types": ["raid"]},
            "actions": [{"type": "webhook", "url": format!("http://localhost:{}/private", receiver.port)}]}),
        )
        .await?;
    strict.wait_rules_loaded(2).await?;
    strict.send("raid", json!({})).await?;
    eventually(WAIT, || async {
        Ok(strict.executions(Some(by_name)).await?.len() == 1)
    })
    .await?;
    let e = &strict.executions(Some(by_name)).await?[0];
    let action = &e.3["actions"][0];
    assert!(
        action["error"]
            .as_str()
            .unwrap_or_default()
            .contains("not allowed"),
        "{action}"
    );
    assert_eq!(action["attempts"], 1, "{action}");
    Ok(())
}

#[tokio::test]
async fn cooldowns_suppress_and_count_per_key() -> anyhow::Result<()> {
    let mut h = Harness::new("w-cooldown").await?;
    let rule = h
        .add_rule(publish_rule(
            &h.out(),
            json!({"cooldown_seconds": 60, "cooldown_key": "data.user.id"}),
        ))
        .await?;
    h.start_worker(&[]).await?;
    for user in ["u1", "u1", "u2", "u1", "u2"] {
        h.send(
            "donation.received",
            json!({"amount": 20, "user": {"id": user, "name": user}}),
        )
        .await?;
    }
    eventually(WAIT, || async { Ok(h.counters(rule).await?.0 == 5) }).await?;
    assert_eq!(h.counters(rule).await?, (5, 2, 3, 2, 0));
    assert_eq!(h.read_stream(&h.out()).await?.len(), 2);
    Ok(())
}

#[tokio::test]
async fn thresholds_fire_on_the_nth_event_only() -> anyhow::Result<()> {
    let mut h = Harness::new("w-threshold").await?;
    let rule = h
        .add_rule(publish_rule(
            &h.out(),
            json!({"trigger_config": {"event_types": ["donation.received"],
            "threshold": {"count": 3, "window_seconds": 60}}}),
        ))
        .await?;
    h.start_worker(&[]).await?;
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(h.send("donation.received", json!({"amount": i})).await?);
    }
    eventually(WAIT, || async {
        Ok(h.pending_and_lag().await? == (0, Some(0)))
    })
    .await?;
    let mut executed: Vec<Uuid> = h
        .executions(Some(rule))
        .await?
        .into_iter()
        .map(|e| e.1)
        .collect();
    // Executions run concurrently, so their record order is not the events' order.
    executed.sort();
    let mut expected = vec![ids[2], ids[5]];
    expected.sort();
    assert_eq!(executed, expected);
    assert_eq!(
        h.counters(rule).await?,
        (2, 2, 0, 2, 0),
        "events below the threshold are not matches"
    );
    Ok(())
}

#[tokio::test]
async fn malformed_entries_go_to_the_dead_letter_stream() -> anyhow::Result<()> {
    let mut h = Harness::new("w-dead").await?;
    h.start_worker(&[]).await?;
    h.send_fields(&[("event", "{not json".into())]).await?;
    h.send_fields(&[(
        "event",
        json!({"id": "nope", "type": "t", "livestream_id": LS}).to_string(),
    )])
    .await?;
    h.send_fields(&[("something", "else".into())]).await?;
    // A producer's fields named like ours cannot shadow them; missing, oversize and
    // non-UTF-8 entries are refused with a reason of their own.
    h.send_fields(&[
        ("reason", "producer's reason".into()),
        ("source_id", "0-1".into()),
        ("source_stream", "elsewhere".into()),
        ("event", "[]".into()),
    ])
    .await?;
    h.send_fields(&[("type", "t".into()), ("livestream_id", LS.into())])
        .await?;
    h.send_fields(&[("event", "x".repeat(70_000))]).await?;
    let mut conn = h.keys.conn().await?;
    let _: String = redis::cmd("XADD")
        .arg(h.stream())
        .arg("*")
        .arg("event")
        .arg(&b"{\"id\": \"\xff\xfe\"}"[..])
        .query_async(&mut conn)
        .await?;
    eventually(WAIT, || async {
        Ok(h.read_stream(&h.dead_letter()).await?.len() == 7)
    })
    .await?;
    let dead = h.read_stream(&h.dead_letter()).await?;
    let field = |i: usize, k: &str| {
        dead[i]
            .1
            .iter()
            .find(|(f, _)| f == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert!(
        field(0, "reason").contains("not valid JSON"),
        "{:?}",
        dead[0]
    );
    // The original entry is kept apart from our fields (docs/contract.md §1).
    assert_eq!(field(0, "entry.event"), "{not json");
    assert_eq!(field(0, "source_stream"), h.stream());
    assert!(!field(0, "source_id").is_empty());
    assert!(field(1, "reason").contains("`id` is invalid"));
    assert_eq!(field(2, "entry.something"), "else");
    assert!(field(3, "reason").contains("object"), "{:?}", dead[3]);
    assert_eq!(
        field(3, "source_stream"),
        h.stream(),
        "ours, not the producer's"
    );
    assert_ne!(field(3, "source_id"), "0-1");
    assert_eq!(field(3, "entry.reason"), "producer's reason");
    assert_eq!(field(3, "entry.source_stream"), "elsewhere");
    assert!(field(4, "reason").contains("`id`"), "{:?}", dead[4]);
    assert!(field(5, "reason").contains("65536"), "{:?}", dead[5]);
    assert!(!field(6, "reason").is_empty(), "{:?}", dead[6]);
    eventually(WAIT, || async { Ok(h.pending_and_lag().await?.0 == 0) }).await?;
    assert!(
        h.workers[0].child.try_wait()?.is_none(),
        "the worker is still running"
    );
    Ok(())
}

#[tokio::test]
async fn the_same_event_twice_executes_once() -> anyhow::Result<()> {
    let mut h = Harness::new("w-dup").await?;
    let rule = h.add_rule(publish_rule(&h.out(), json!({}))).await?;
    h.start_worker(&[]).await?;
    let id = Uuid::new_v4();
    h.send_with_id(id, "donation.received", json!({"amount": 50}))
        .await?;
    h.send_with_id(id, "donation.received", json!({"amount": 50}))
        .await?;
    eventually(WAIT, || async {
        Ok(h.pending_and_lag().await? == (0, Some(0)))
    })
    .await?;
    // And once more after the first was recorded.
    h.send_with_id(id, "donation.received", json!({"amount": 50}))
        .await?;
    eventually(WAIT, || async {
        Ok(h.pending_and_lag().await? == (0, Some(0)))
    })
    .await?;
    assert_eq!(h.executions(Some(rule)).await?.len(), 1);
    assert_eq!(h.read_stream(&h.out()).await?.len(), 1);
    assert_eq!(h.counters(rule).await?, (1, 1, 0, 1, 0));
    Ok(())
}

#[tokio::test]
async fn two_workers_process_every_event_once_and_share_cooldowns() -> anyhow::Result<()> {
    let mut h = Harness::new("w-two").await?;
    let every = h
        .add_rule(publish_rule(&h.out(), json!({"name": "every"})))
        .await?;
    let cooled = h
        .add_rule(
            json!({"name": "cooled", "trigger_config": {"event_types": ["donation.received"]},
            "actions": [{"type": "log", "message": "once"}], "cooldown_seconds": 300}),
        )
        .await?;
    h.start_worker(&[("RULES__WORKER__BATCH_SIZE", "10".into())])
        .await?;
    h.start_worker(&[("RULES__WORKER__BATCH_SIZE", "10".into())])
        .await?;
    let mut sent = Vec::new();
    for i in 0..300 {
        sent.push(
            h.send("donation.received", json!({"amount": 10 + i}))
                .await?,
        );
    }
    eventually(Duration::from_secs(30), || async {
        Ok(h.executions(Some(every)).await?.len() == 300)
    })
    .await?;
    eventually(WAIT, || async {
        Ok(h.pending_and_lag().await? == (0, Some(0)))
    })
    .await?;
    let mut executed: Vec<Uuid> = h
        .executions(Some(every))
        .await?
        .into_iter()
        .map(|e| e.1)
        .collect();
    executed.sort();
    sent.sort();
    assert_eq!(executed, sent, "every event exactly once");
    assert_eq!(
        h.executions(Some(cooled)).await?.len(),
        1,
        "one execution inside one cooldown"
    );
    assert_eq!(h.counters(cooled).await?, (300, 1, 299, 1, 0));
    Ok(())
}

#[tokio::test]
async fn a_rule_disabled_through_the_api_stops_firing_within_a_second() -> anyhow::Result<()> {
    let mut h = Harness::new("w-disable").await?;
    h.start_worker(&[]).await?;
    let port = rules_e2e::free_port()?;
    let key = rules_e2e::TEST_KEY;
    let mut api =
        rules_e2e::Process::start("rules-api", &rules_e2e::api_env(&h.db.url, port, true, &[]))?;
    rules_e2e::wait_http_ok(&format!("http://127.0.0.1:{port}/health/live"), WAIT).await?;
    let client = rules_e2e::http_client();
    let mut body = publish_rule(&h.out(), json!({}));
    body["livestream_id"] = json!(LS);
    let created: serde_json::Value = client
        .post(format!("http://127.0.0.1:{port}/api/rules"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await?
        .json()
        .await?;
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    // Created through the API: the worker has it once its index holds it.
    h.wait_rules_loaded(1).await?;
    h.send("donation.received", json!({"amount": 99})).await?;
    eventually(WAIT, || async {
        Ok(h.read_stream(&h.out()).await?.len() == 1)
    })
    .await?;
    let patched = client
        .patch(format!("http://127.0.0.1:{port}/api/rules/{id}"))
        .bearer_auth(key)
        .json(&json!({"enabled": false}))
        .send()
        .await?;
    assert_eq!(patched.status(), 200);
    h.wait_rules_loaded(0).await?;
    h.send("donation.received", json!({"amount": 99})).await?;
    eventually(WAIT, || async {
        Ok(h.pending_and_lag().await? == (0, Some(0)))
    })
    .await?;
    assert_eq!(
        h.read_stream(&h.out()).await?.len(),
        1,
        "a disabled rule no longer fires"
    );
    assert!(api.terminate().await?.success());
    Ok(())
}

#[tokio::test]
async fn sigterm_finishes_in_flight_work_and_leaves_nothing_pending() -> anyhow::Result<()> {
    let receiver = Receiver::start(&[])?;
    let mut h = Harness::new("w-term").await?;
    let rule = h
        .add_rule(
            json!({"name": "hook", "trigger_config": {"event_types": ["follow"]},
            "actions": [{"type": "webhook", "url": receiver.url("/slow/400")}]}),
        )
        .await?;
    h.start_worker(&[]).await?;
    for _ in 0..50 {
        h.send("follow", json!({})).await?;
    }
    // Calls have started and, each answered after 400 ms, are in flight.
    eventually(WAIT, || async { Ok(!receiver.received().is_empty()) }).await?;
    let started = receiver.received().len();
    let status = h.workers[0].terminate().await?;
    assert!(status.success(), "{status:?}");
    let (pending, _) = h.pending_and_lag().await?;
    assert_eq!(pending, 0, "everything read was acknowledged");
    let executions = h.executions(Some(rule)).await?;
    let executed = executions.len();
    assert!(
        executed >= started,
        "the {started} calls in flight at SIGTERM finished and were recorded ({executed})"
    );
    assert!(
        executions.iter().all(|e| e.2 == "succeeded"),
        "none was cut short: {executions:?}"
    );
    let (_, lag) = h.pending_and_lag().await?;
    assert_eq!(
        executed + lag.unwrap_or(0),
        50,
        "what was not read is still in the stream"
    );
    Ok(())
}

#[tokio::test]
async fn stale_actions_are_skipped_without_failing() -> anyhow::Result<()> {
    let mut h = Harness::new("w-stale").await?;
    let rule = h
        .add_rule(
            json!({"name": "stale", "trigger_config": {"event_types": ["follow"]},
            "actions": [{"type": "publish", "stream": h.out(), "max_age_seconds": 60},
                        {"type": "log", "message": "always"}]}),
        )
        .await?;
    h.start_worker(&[]).await?;
    let old = (chrono::Utc::now() - chrono::TimeDelta::minutes(5)).to_rfc3339();
    h.send_fields(&[(
        "event",
        json!({"id": Uuid::new_v4(), "type": "follow", "livestream_id": LS, "occurred_at": old})
            .to_string(),
    )])
    .await?;
    h.send("follow", json!({})).await?;
    eventually(WAIT, || async {
        Ok(h.executions(Some(rule)).await?.len() == 2)
    })
    .await?;
    let executions = h.executions(Some(rule)).await?;
    let stale = executions
        .iter()
        .find(|e| e.3["actions"][0]["status"] == "skipped")
        .expect("a skipped action");
    assert_eq!(stale.2, "succeeded");
    assert_eq!(stale.3["actions"][0]["error"], "expired");
    assert_eq!(h.read_stream(&h.out()).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn entries_of_a_dead_consumer_are_taken_over_or_dead_lettered() -> anyhow::Result<()> {
    let mut h = Harness::new("w-claim").await?;
    let rule = h.add_rule(publish_rule(&h.out(), json!({}))).await?;
    // A consumer reads two entries and dies without acknowledging them.
    let mut conn = h.keys.conn().await?;
    h.create_group().await?;
    let first = h.send("donation.received", json!({"amount": 10})).await?;
    h.send("donation.received", json!({"amount": 11})).await?;
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("rule-engine")
        .arg("ghost")
        .arg("COUNT")
        .arg(1)
        .arg("STREAMS")
        .arg(h.stream())
        .arg(">")
        .query_async(&mut conn)
        .await?;
    // The second has already been delivered too often.
    for _ in 0..5 {
        let _: redis::Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("rule-engine")
            .arg("ghost2")
            .arg("COUNT")
            .arg(1)
            .arg("STREAMS")
            .arg(h.stream())
            .arg(">")
            .query_async(&mut conn)
            .await?;
        let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
            .arg(h.stream())
            .arg("rule-engine")
            .arg("-")
            .arg("+")
            .arg(10)
            .arg("ghost2")
            .query_async(&mut conn)
            .await?;
        if let Some((id, ..)) = pending.first() {
            let _: redis::Value = redis::cmd("XCLAIM")
                .arg(h.stream())
                .arg("rule-engine")
                .arg("ghost2")
                .arg(0)
                .arg(id)
                .query_async(&mut conn)
                .await?;
        }
    }
    h.start_worker(&[
        ("RULES__WORKER__CLAIM_IDLE_MS", "300".into()),
        ("RULES__WORKER__CLAIM_INTERVAL_MS", "200".into()),
        ("RULES__WORKER__MAX_DELIVERIES", "5".into()),
    ])
    .await?;
    eventually(WAIT, || async {
        Ok(h.executions(Some(rule)).await?.len() == 1)
    })
    .await?;
    eventually(WAIT, || async {
        Ok(h.read_stream(&h.dead_letter()).await?.len() == 1)
    })
    .await?;
    assert_eq!(h.executions(Some(rule)).await?[0].1, first);
    let dead = h.read_stream(&h.dead_letter()).await?;
    assert!(
        dead[0]
            .1
            .iter()
            .any(|(k, v)| k == "reason" && v.contains("delivered")),
        "{dead:?}"
    );
    eventually(WAIT, || async { Ok(h.pending_and_lag().await?.0 == 0) }).await?;
    Ok(())
}

#[tokio::test]
async fn a_lost_consumer_group_is_recreated() -> anyhow::Result<()> {
    let mut h = Harness::new("w-nogroup").await?;
    let rule = h.add_rule(publish_rule(&h.out(), json!({}))).await?;
    h.start_worker(&[]).await?;
    h.send("donation.received", json!({"amount": 10})).await?;
    eventually(WAIT, || async {
        Ok(h.executions(Some(rule)).await?.len() == 1)
    })
    .await?;
    let mut conn = h.keys.conn().await?;
    let _: i64 = redis::cmd("XGROUP")
        .arg("DESTROY")
        .arg(h.stream())
        .arg("rule-engine")
        .query_async(&mut conn)
        .await?;
    h.send("donation.received", json!({"amount": 20})).await?;
    eventually(WAIT, || async {
        Ok(h.executions(Some(rule)).await?.len() == 2)
    })
    .await?;
    assert_eq!(
        h.read_stream(&h.out()).await?.len(),
        2,
        "the replayed first event was not executed again"
    );
    // Recreated from `0`: the first entry was read again (and recognised), not
    // skipped by a group starting at `$`.
    eventually(WAIT, || async {
        let info: redis::streams::StreamInfoGroupsReply = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(h.stream())
            .query_async(&mut h.keys.conn().await?)
            .await?;
        Ok(info
            .groups
            .iter()
            .any(|g| g.name == "rule-engine" && g.entries_read == Some(2) && g.pending == 0))
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_slow_webhook_does_not_stall_other_livestreams() -> anyhow::Result<()> {
    let receiver = Receiver::start(&[])?;
    let mut h = Harness::new("w-slow").await?;
    let other_ls = "11111111-0000-4000-8000-000000000000";
    let slow = h
        .add_rule(json!({"name": "slow", "trigger_config": {"event_types": ["follow"]},
            "actions": [{"type": "webhook", "url": receiver.url("/slow/4000"), "timeout_ms": 10000}]}))
        .await?;
    let fast = h
        .add_rule(json!({"livestream_id": other_ls, "name": "fast", "trigger_config": {"event_types": ["follow"]},
            "actions": [{"type": "publish", "stream": h.out()}]}))
        .await?;
    h.start_worker(&[]).await?;
    h.send("follow", json!({})).await?;
    eventually(WAIT, || async { Ok(!receiver.received().is_empty()) }).await?;
    for _ in 0..20 {
        let event =
            json!({"id": Uuid::new_v4(), "type": "follow", "livestream_id": other_ls, "data": {}});
        h.send_fields(&[("event", event.to_string())]).await?;
    }
    // The other livestream's events are all executed while the slow call is in flight.
    twenty_fast_while_the_slow_one_runs(&h, fast, slow).await
}

/// Waits for the 20 executions of `fast`, checks that the one of `slow` (a webhook
/// answering after 4 s) is still in flight, then waits for it.
async fn twenty_fast_while_the_slow_one_runs(
    h: &Harness,
    fast: Uuid,
    slow: Uuid,
) -> anyhow::Result<()> {
    eventually(WAIT, || async {
        Ok(h.executions(Some(fast)).await?.len() == 20)
    })
    .await?;
    assert!(
        h.executions(Some(slow)).await?.is_empty(),
        "the slow webhook is still in flight"
    );
    eventually(WAIT, || async {
        Ok(h.executions(Some(slow)).await?.len() == 1)
    })
    .await
}

#[tokio::test]
async fn a_worker_starting_after_a_backlog_skips_expired_actions() -> anyhow::Result<()> {
    let mut h = Harness::new("w-backlog").await?;
    let rule = h
        .add_rule(
            json!({"name": "live alert", "trigger_config": {"event_types": ["follow"]},
            "actions": [{"type": "publish", "stream": h.out(), "max_age_seconds": 1},
                        {"type": "log", "message": "late but logged"}]}),
        )
        .await?;
    // The backlog builds up while no worker runs.
    h.create_group().await?;
    for _ in 0..5 {
        h.send("follow", json!({})).await?;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    h.start_worker(&[]).await?;
    eventually(WAIT, || async {
        Ok(h.executions(Some(rule)).await?.len() == 5)
    })
    .await?;
    for e in h.executions(Some(rule)).await? {
        assert_eq!(
            e.2, "succeeded",
            "a skipped action does not fail the execution"
        );
        assert_eq!(e.3["actions"][0]["status"], "skipped");
        assert_eq!(e.3["actions"][0]["error"], "expired");
        assert_eq!(e.3["actions"][1]["status"], "succeeded");
    }
    assert!(
        h.read_stream(&h.out()).await?.is_empty(),
        "no stale alert was published"
    );
    let metrics = rules_e2e::http_client()
        .get(format!("http://127.0.0.1:{}/metrics", h.http_ports[0]))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains(r#"actions_total{type="publish",status="skipped"} 5"#),
        "{metrics}"
    );
    Ok(())
}

#[tokio::test]
async fn a_failing_destination_opens_its_circuit_for_every_worker() -> anyhow::Result<()> {
    let receiver = Receiver::start(&[503; 20])?;
    let mut h = Harness::new("w-breaker").await?;
    let rule = h
        .add_rule(
            json!({"name": "bot", "trigger_config": {"event_types": ["follow"]},
            "actions": [{"type": "webhook", "url": receiver.url("/bot")}]}),
        )
        .await?;
    let settings = [
        ("RULES__WORKER__WEBHOOK_MAX_ATTEMPTS", "1".to_string()),
        ("RULES__WORKER__WEBHOOK_BREAKER_FAILURES", "2".to_string()),
        (
            "RULES__WORKER__WEBHOOK_BREAKER_COOLOFF_SECONDS",
            "60".to_string(),
        ),
        ("RULES__WORKER__BATCH_SIZE", "1".to_string()),
    ];
    h.start_worker(&settings).await?;
    h.start_worker(&settings).await?;
    for sent in 1..=6 {
        h.send("follow", json!({})).await?;
        // One at a time, so the order of outcomes is the order of calls. The
        // count to wait for is known before sending: counting after the send
        // raced a fast worker and then waited for an execution never coming.
        eventually(WAIT, || async {
            Ok(h.executions(Some(rule)).await?.len() >= sent)
        })
        .await
        .with_context(|| format!("execution {sent} of 6 not recorded"))?;
    }
    let executions = h.executions(Some(rule)).await?;
    let errors: Vec<String> = executions
        .iter()
        .map(|e| {
            e.3["actions"][0]["error"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(
        receiver.received().len(),
        2,
        "after two failures the destination is not called: {errors:?}"
    );
    assert!(executions.iter().all(|e| e.2 == "failed"));
    assert_eq!(
        errors
            .iter()
            .filter(|e| e.starts_with("circuit_open"))
            .count(),
        4,
        "{errors:?}"
    );
    // An open breaker keeps the last real cause, on every worker.
    assert!(
        errors
            .iter()
            .filter(|e| e.starts_with("circuit_open"))
            .all(|e| e.contains("last failure: HTTP 503")),
        "{errors:?}"
    );
    let mut open_total = 0.0;
    for port in &h.http_ports {
        let text = rules_e2e::http_client()
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        open_total += text
            .lines()
            .find(|l| l.starts_with("webhook_circuit_open_total"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
    }
    assert_eq!(open_total, 4.0);
    // Operators see it in the logs too: the failed actions and the breaker opening.
    let mut logs = String::new();
    while let Some(mut worker) = h.workers.pop() {
        worker.terminate().await?;
        logs.push_str(&worker.output().await?.0);
    }
    assert!(logs.contains("action failed"), "{logs}");
    assert!(logs.contains("circuit opened"), "{logs}");
    Ok(())
}

#[tokio::test]
async fn a_destination_rate_limit_spaces_the_calls() -> anyhow::Result<()> {
    let receiver = Receiver::start(&[])?;
    let mut h = Harness::new("w-rate").await?;
    let rule = h
        .add_rule(
            json!({"name": "chat bot", "trigger_config": {"event_types": ["follow"]},
            "actions": [{"type": "webhook", "url": receiver.url("/chat"), "timeout_ms": 10000}]}),
        )
        .await?;
    h.start_worker(&[("RULES__WORKER__WEBHOOK_RATE_LIMIT_PER_SECOND", "2".into())])
        .await?;
    for _ in 0..6 {
        h.send("follow", json!({})).await?;
    }
    eventually(WAIT, || async {
        Ok(h.executions(Some(rule)).await?.len() == 6)
    })
    .await?;
    assert!(h
        .executions(Some(rule))
        .await?
        .iter()
        .all(|e| e.2 == "succeeded"));
    let mut at: Vec<std::time::Instant> = receiver.received().iter().map(|r| r.at).collect();
    at.sort();
    assert_eq!(at.len(), 6);
    // Two per second: six calls span three seconds of the limiter, so more than one.
    assert!(
        at[5] - at[0] > Duration::from_millis(1000),
        "{:?}",
        at[5] - at[0]
    );
    Ok(())
}

#[tokio::test]
async fn live_dry_run_backtest_and_cooldown_api_agree_with_the_worker() -> anyhow::Result<()> {
    let mut h = Harness::new("w-explain").await?;
    h.start_worker(&[]).await?;
    let port = rules_e2e::free_port()?;
    let mut api = rules_e2e::Process::start(
        "rules-api",
        &rules_e2e::api_env(
            &h.db.url,
            port,
            true,
            &[("RULES__WORKER__STREAMS", h.stream())],
        ),
    )?;
    rules_e2e::wait_http_ok(&format!("http://127.0.0.1:{port}/health/live"), WAIT).await?;
    let client = rules_e2e::http_client();
    let base = format!("http://127.0.0.1:{port}/api/rules");
    let mut body = publish_rule(
        &h.out(),
        json!({"cooldown_seconds": 300, "cooldown_key": "data.user.id"}),
    );
    body["livestream_id"] = json!(LS);
    let rule: serde_json::Value = client
        .post(&base)
        .bearer_auth(rules_e2e::TEST_KEY)
        .json(&body)
        .send()
        .await?
        .json()
        .await?;
    let id = Uuid::parse_str(rule["id"].as_str().unwrap_or_default())?;
    h.wait_rules_loaded(1).await?;

    // The worker executes the first donation of u1 and suppresses the next two.
    for _ in 0..3 {
        h.send(
            "donation.received",
            json!({"amount": 20, "user": {"id": "u1", "name": "a"}}),
        )
        .await?;
    }
    eventually(WAIT, || async { Ok(h.counters(id).await?.0 == 3) }).await?;
    assert_eq!(h.counters(id).await?, (3, 1, 2, 1, 0));

    // Live dry run: a fourth would be suppressed, and says why.
    let event = json!({"id": Uuid::new_v4(), "type": "donation.received", "livestream_id": LS,
                       "data": {"amount": 20, "user": {"id": "u1"}}});
    let explain = |event: serde_json::Value| {
        client
            .post(format!("{base}/test"))
            .bearer_auth(rules_e2e::TEST_KEY)
            .json(&json!({"rule": rule, "event": event, "live": true}))
            .send()
    };
    let live: serde_json::Value = explain(event.clone()).await?.json().await?;
    assert_eq!(
        live["live"]["reasons"],
        json!(["cooldown_active"]),
        "{live}"
    );

    // Backtest over the same stream: the same outcome as the worker's records.
    let bt: serde_json::Value = client
        .post(format!("{base}/backtest"))
        .bearer_auth(rules_e2e::TEST_KEY)
        .json(&json!({"rule_id": id}))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        (
            bt["would_execute"].as_u64(),
            bt["suppressed_by_cooldown"].as_u64()
        ),
        (Some(1), Some(2)),
        "{bt}"
    );

    // The cooldown API lists it; clearing it lets the next donation through at once.
    let listed: serde_json::Value = client
        .get(format!("{base}/{id}/cooldowns"))
        .bearer_auth(rules_e2e::TEST_KEY)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(listed["cooldowns"][0]["key"], "u1", "{listed}");
    let cleared = client
        .delete(format!("{base}/{id}/cooldowns?key=u1"))
        .bearer_auth(rules_e2e::TEST_KEY)
        .send()
        .await?;
    assert_eq!(cleared.status(), 204);
    let live: serde_json::Value = explain(event).await?.json().await?;
    assert_eq!(live["live"]["would_execute"], true, "{live}");
    h.send(
        "donation.received",
        json!({"amount": 20, "user": {"id": "u1", "name": "a"}}),
    )
    .await?;
    eventually(WAIT, || async { Ok(h.counters(id).await?.1 == 2) }).await?;
    assert!(api.terminate().await?.success());
    Ok(())
}

#[tokio::test]
async fn editing_one_rule_leaves_its_neighbours_firing() -> anyhow::Result<()> {
    let mut h = Harness::new("w-neighbours").await?;
    let out = h.out();
    let marked = |mark: &str| {
        json!({"name": mark, "trigger_config": {"event_types": ["donation.received"]},
            "actions": [{"type": "publish", "stream": out, "payload": {"rule": mark}}]})
    };
    let a = h.add_rule(marked("a")).await?;
    h.add_rule(marked("b")).await?;
    h.add_rule(marked("c")).await?;
    h.start_worker(&[]).await?;
    h.wait_rules_loaded(3).await?;
    h.send("donation.received", json!({})).await?;
    eventually(WAIT, || async { Ok(published_marks(&h).await?.len() == 3) }).await?;
    // Disable the first: the two others keep firing.
    h.sql(&format!(
        "UPDATE rules SET enabled = false, version = version + 1 WHERE id = '{a}'"
    ))
    .await?;
    h.wait_rules_loaded(2).await?;
    h.send("donation.received", json!({})).await?;
    eventually(WAIT, || async { Ok(published_marks(&h).await?.len() == 5) }).await?;
    // Edit it to listen to another type only, enabled: still the two others.
    h.sql(&format!(
        "UPDATE rules SET enabled = true, version = version + 1, \
         trigger_config = jsonb_set(trigger_config, '{{event_types}}', '[\"raid\"]') WHERE id = '{a}'"
    ))
    .await?;
    h.wait_rules_loaded(3).await?;
    h.send("donation.received", json!({})).await?;
    eventually(WAIT, || async {
        Ok(h.pending_and_lag().await? == (0, Some(0)))
    })
    .await?;
    eventually(WAIT, || async { Ok(published_marks(&h).await?.len() == 7) }).await?;
    assert_eq!(
        published_marks(&h).await?,
        vec!["a", "b", "b", "b", "c", "c", "c"]
    );
    Ok(())
}

/// The `rule` mark of every payload published to the harness's output stream, sorted.
async fn published_marks(h: &Harness) -> anyhow::Result<Vec<String>> {
    let mut marks: Vec<String> = h
        .read_stream(&h.out())
        .await?
        .into_iter()
        .filter_map(|(_, fields)| {
            fields
                .into_iter()
                .find(|(k, _)| k == "payload")
                .and_then(|(_, v)| serde_json::from_str::<serde_json::Value>(&v).ok())
                .and_then(|p| p["rule"].as_str().map(str::to_owned))
        })
        .collect();
    marks.sort();
    Ok(marks)
}

/// Adds `event` to the harness's stream under the explicit id `<at in ms>-0`, as a
/// producer writing its own ids does.
async fn add_with_id(
    h: &Harness,
    at: chrono::DateTime<chrono::Utc>,
    event: &serde_json::Value,
) -> anyhow::Result<()> {
    let _: String = redis::cmd("XADD")
        .arg(h.stream())
        .arg(format!("{}-0", at.timestamp_millis()))
        .arg("event")
        .arg(event.to_string())
        .query_async(&mut h.keys.conn().await?)
        .await?;
    Ok(())
}

/// An entry whose id dates it far in the future (a producer's explicit id) takes
/// its event to a day the decision log has no partition for; the worker must not
/// retry that batch forever: the entry is dead-lettered with the reason, and so is
/// the one after it (Redis dates a stream's later entries after it).
#[tokio::test]
async fn an_entry_dated_years_ahead_does_not_stall_the_stream() -> anyhow::Result<()> {
    let mut h = Harness::new("w-future").await?;
    let rule = h.add_rule(publish_rule(&h.out(), json!({}))).await?;
    h.start_worker(&[]).await?;
    let ahead = chrono::Utc::now() + chrono::TimeDelta::days(3 * 365);
    let event = json!({"id": Uuid::new_v4(), "type": "donation.received", "livestream_id": LS,
                       "data": {"amount": 50}});
    add_with_id(&h, ahead, &event).await?;
    // Later entries get ids after it (Redis keeps a stream's ids increasing).
    h.send("donation.received", json!({"amount": 60})).await?;
    eventually(Duration::from_secs(30), || async {
        Ok(h.pending_and_lag().await? == (0, Some(0)))
    })
    .await
    .context("the stream is stuck behind the entry dated ahead")?;
    // Both are dated years ahead, so both are dead-lettered, with the reason.
    assert_eq!(h.executions(Some(rule)).await?.len(), 0);
    let dead = h.read_stream(&h.dead_letter()).await?;
    assert_eq!(dead.len(), 2, "{dead:?}");
    for (_, fields) in &dead {
        assert!(
            fields
                .iter()
                .any(|(k, v)| k == "reason" && v.contains("after the decision log's last day")),
            "{fields:?}"
        );
    }
    Ok(())
}

/// An entry whose id dates it days before the install (a stream written with
/// explicit ids: a replay, a shard re-created) takes its event to a day within
/// retention that has no partition (the install made yesterday and the days
/// ahead). The recorder makes that day's partition and records it; the stream does
/// not stall behind it. An entry dated before retention's first day is
/// dead-lettered with the reason (its decision could not be kept).
#[tokio::test]
async fn an_entry_dated_days_back_is_recorded_in_a_partition_made_for_it() -> anyhow::Result<()> {
    let mut h = Harness::new("w-past").await?;
    let rule = h.add_rule(publish_rule(&h.out(), json!({}))).await?;
    h.start_worker(&[]).await?;
    let now = chrono::Utc::now();
    for days_back in [40, 5] {
        let at = now - chrono::TimeDelta::days(days_back);
        let event = json!({"id": Uuid::new_v4(), "type": "donation.received", "livestream_id": LS,
                           "occurred_at": at.to_rfc3339(), "data": {"amount": 50}});
        add_with_id(&h, at, &event).await?;
    }
    h.send("donation.received", json!({"amount": 60})).await?;
    eventually(Duration::from_secs(30), || async {
        Ok(h.pending_and_lag().await? == (0, Some(0)))
    })
    .await
    .context("the stream is stuck behind the entry dated days back")?;
    // The one 5 days back and the one of now are recorded; the partition of the
    // day 5 days back exists now.
    assert_eq!(h.executions(Some(rule)).await?.len(), 2);
    let day = (now - chrono::TimeDelta::days(5)).format("%Y%m%d");
    let partitions: rules_e2e::Count = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query(format!(
            "SELECT count(*) AS n FROM pg_class WHERE relname = 'rule_executions_{day}'"
        )),
        &mut h.db.conn().await?,
    )
    .await?;
    assert_eq!(partitions.n, 1);
    let dead = h.read_stream(&h.dead_letter()).await?;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(
        dead[0]
            .1
            .iter()
            .any(|(k, v)| k == "reason" && v.contains("before the decision log's first day")),
        "{dead:?}"
    );
    Ok(())
}

/// A quiet stream's blocked read must not hold the whole in-flight budget: with
/// 10 entries in flight and 10 a read, two streams and reads that block for a
/// minute, the reader of the quiet stream held all 10 while it waited, and the busy
/// stream's events waited the whole minute. Each reader now asks for its share (5),
/// so both are read at once.
#[tokio::test]
async fn a_quiet_streams_blocked_read_does_not_hold_the_whole_budget() -> anyhow::Result<()> {
    let mut h = Harness::new("w-share").await?;
    let rule = h.add_rule(publish_rule(&h.out(), json!({}))).await?;
    let quiet = h.keys.key("quiet");
    h.start_worker(&[
        ("RULES__WORKER__STREAMS", format!("{},{quiet}", h.stream())),
        ("RULES__WORKER__BATCH_SIZE", "10".into()),
        ("RULES__WORKER__MAX_IN_FLIGHT", "10".into()),
        ("RULES__WORKER__BLOCK_MS", "60000".into()),
    ])
    .await?;
    // Whichever reader took the budget first, one of the two events below finds
    // the quiet reader blocked on it (after the first event's batch, the waiting
    // quiet reader takes the room it gives back).
    for sent in 1..=2 {
        h.send("donation.received", json!({"amount": 50 + sent}))
            .await?;
        eventually(Duration::from_secs(20), || async {
            Ok(h.executions(Some(rule)).await?.len() == sent)
        })
        .await
        .with_context(|| format!("event {sent} waited behind the quiet stream's blocked read"))?;
    }
    Ok(())
}

/// A batch's entries run in one task, concurrently: an entry whose action is slow
/// holds none of the others of its batch, each goes to the recorder (and is
/// acknowledged) when its own actions are done.
#[tokio::test]
async fn a_slow_entry_holds_none_of_the_others_of_its_batch() -> anyhow::Result<()> {
    let receiver = Receiver::start(&[])?;
    let mut h = Harness::new("w-slow-batch").await?;
    let slow = h
        .add_rule(json!({"name": "slow", "trigger_config": {"event_types": ["follow"]},
            "actions": [{"type": "webhook", "url": receiver.url("/slow/4000"), "timeout_ms": 10000}]}))
        .await?;
    let fast = h
        .add_rule(
            json!({"name": "fast", "trigger_config": {"event_types": ["raid"]},
            "actions": [{"type": "publish", "stream": h.out()}]}),
        )
        .await?;
    // The events wait in the stream before the worker starts, so its first read
    // takes them all in one batch, the slow one first.
    h.create_group().await?;
    h.send("follow", json!({})).await?;
    for _ in 0..20 {
        h.send("raid", json!({})).await?;
    }
    h.start_worker(&[]).await?;
    // The fast entries are recorded and acknowledged: only the slow one is pending.
    eventually(WAIT, || async { Ok(h.pending_and_lag().await?.0 == 1) }).await?;
    twenty_fast_while_the_slow_one_runs(&h, fast, slow).await
}

/// The worker runs without transparent huge pages (`PR_SET_THP_DISABLE`): with them,
/// the first touch of each 2 MiB page mimalloc asked them for zeroed it inside a
/// batch's stage, and paced events waited about twice as long at p99.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_worker_runs_without_transparent_huge_pages() -> anyhow::Result<()> {
    let mut h = Harness::new("w-thp").await?;
    h.start_worker(&[]).await?;
    let pid = h.workers[0].child.id().context("the worker exited")?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("THP_enabled:"))
        .context("no THP_enabled line in /proc/<pid>/status")?;
    assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
    Ok(())
}

/// The `ping` calls a Redis has answered (`INFO commandstats`).
async fn pings(conn: &mut redis::aio::MultiplexedConnection) -> anyhow::Result<u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_ping:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0))
}

/// Sends one event of `event_type`, then `more`, each once the one before it is
/// executed and acknowledged (a batch each); returns the pings the Redis at
/// `redis_url` answered while the `more` went through.
async fn pings_over_batches(
    h: &Harness,
    redis_url: &str,
    rule: Uuid,
    event_type: &str,
    more: usize,
) -> anyhow::Result<u64> {
    let mut probe = redis::Client::open(redis_url)?
        .get_multiplexed_async_connection()
        .await?;
    let through = |n: usize| async move {
        eventually(WAIT, || async {
            Ok(h.executions(Some(rule)).await?.len() == n && h.pending_and_lag().await?.0 == 0)
        })
        .await
    };
    h.send(event_type, json!({"amount": 1})).await?;
    through(1).await?;
    let before = pings(&mut probe).await?;
    for n in 2..=more + 1 {
        h.send(event_type, json!({"amount": n})).await?;
        through(n).await?;
    }
    Ok(pings(&mut probe).await? - before)
}

/// The gate and the acknowledgements keep their connections between batches: taken
/// from the pool for each, a connection was first checked with a round trip of its
/// own (deadpool-redis's `UNWATCH` + `PING`), on the path of every event at the
/// gate. A connection that fails is let go, and the next batch opens (the gate's own)
/// or takes (the acknowledgements') a new one: both carry on after Redis restarts.
#[tokio::test]
async fn the_gate_and_the_acknowledgements_keep_their_connections() -> anyhow::Result<()> {
    let mut redis = rules_e2e::services::OwnRedis::start()?;
    let mut h = Harness::on_redis("w-links", redis.url()).await?;
    let rule = h
        .add_rule(json!({"name": "every donation", "trigger_config": {"event_types": ["donation.received"]},
            "actions": [{"type": "publish", "stream": h.out()}]}))
        .await?;
    h.start_worker(&[]).await?;
    let checks = pings_over_batches(&h, &redis.url(), rule, "donation.received", 20).await?;
    // Without kept connections: two a batch (the gate's and the ack's), 40 or more.
    // What is left is the claimer's and the heartbeat's, every few seconds.
    assert!(checks < 15, "{checks} pings for 20 batches");

    redis.restart()?;
    h.send("donation.received", json!({"amount": 22})).await?;
    eventually(Duration::from_secs(30), || async {
        Ok(h.executions(Some(rule)).await?.len() == 22 && h.pending_and_lag().await?.0 == 0)
    })
    .await?;
    Ok(())
}

/// A webhook call asks its destination's breaker and rate limit in Redis before it
/// and records the outcome after it, on a connection kept between calls: from the
/// pool, each was a round trip more (the pool's check of the connection).
#[tokio::test]
async fn webhook_calls_keep_their_breaker_connection() -> anyhow::Result<()> {
    let redis = rules_e2e::services::OwnRedis::start()?;
    let receiver = Receiver::start(&[])?;
    let mut h = Harness::on_redis("w-hook-link", redis.url()).await?;
    let rule = h
        .add_rule(
            json!({"name": "hook", "trigger_config": {"event_types": ["follow"]},
            "actions": [{"type": "webhook", "url": receiver.url("/hook")}]}),
        )
        .await?;
    h.start_worker(&[]).await?;
    let checks = pings_over_batches(&h, &redis.url(), rule, "follow", 10).await?;
    // Without a kept connection: two a call, 20 or more.
    assert!(checks < 10, "{checks} pings for 10 webhook calls");
    assert_eq!(receiver.received().len(), 11);
    Ok(())
}
