//! Exactly once, on one clock (docs/contract.md §1), with the real worker: a worker
//! killed with SIGKILL during a slow action and a takeover after the windows
//! expired; a late duplicate after the decision memory in Redis expired; the group
//! destroyed and recreated from `0`; a backlog processed after the worker was down,
//! compared with the backtest of the same stream.

use rules_e2e::receiver::Receiver;
use rules_e2e::worker::{eventually, Harness, LS};
use rules_e2e::{api_env, free_port, http_client, wait_http_ok, Process, TEST_KEY};
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(30);

/// A webhook rule calling `url`, with `extra` top-level keys.
fn webhook_rule(url: &str, extra: Value) -> Value {
    let mut rule = json!({
        "name": "exactly-once",
        "trigger_config": {"event_types": ["donation.received"]},
        "actions": [{"type": "webhook", "url": url, "timeout_ms": 10000}]
    });
    if let (Some(r), Some(e)) = (rule.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            r.insert(k.clone(), v.clone());
        }
    }
    rule
}

/// Fast takeover, so the test waits seconds, not minutes.
fn quick() -> Vec<(&'static str, String)> {
    vec![
        ("RULES__WORKER__CLAIM_IDLE_MS", "500".into()),
        ("RULES__WORKER__CLAIM_INTERVAL_MS", "200".into()),
    ]
}

async fn count(h: &Harness, table: &str, rule_id: Uuid) -> anyhow::Result<i64> {
    h.count(table, Some(rule_id)).await
}

/// Everything the replay test compares: executions, suppressions, threshold counts,
/// both rules' counters, published entries.
type Recorded = (
    usize,
    i64,
    i64,
    (i64, i64, i64, i64, i64),
    (i64, i64, i64, i64, i64),
    usize,
);

async fn recorded(h: &Harness, cooldown: Uuid, threshold: Uuid) -> anyhow::Result<Recorded> {
    Ok((
        h.executions(None).await?.len(),
        count(h, "rule_suppressions", cooldown).await?,
        count(h, "rule_threshold_counts", threshold).await?,
        h.counters(cooldown).await?,
        h.counters(threshold).await?,
        h.read_stream(&h.out()).await?.len(),
    ))
}

async fn drained(h: &Harness) -> anyhow::Result<()> {
    eventually(WAIT, || async {
        let (pending, lag) = h.pending_and_lag().await?;
        Ok(pending == 0 && lag == Some(0))
    })
    .await
}

fn idempotency_keys(receiver: &Receiver) -> Vec<String> {
    receiver
        .received()
        .iter()
        .filter_map(|r| r.header("idempotency-key").map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_threshold_firing_survives_a_kill_and_a_late_takeover() -> anyhow::Result<()> {
    let receiver = Receiver::start(&[])?;
    let mut h = Harness::new("eo-threshold").await?;
    let rule = h
        .add_rule(webhook_rule(
            &receiver.url("/slow/2500"),
            json!({"trigger_config": {"event_types": ["donation.received"],
                   "threshold": {"count": 2, "window_seconds": 2}}}),
        ))
        .await?;
    h.start_worker(&quick()).await?;
    h.wait_rules_loaded(1).await?;
    h.send("donation.received", json!({"amount": 1})).await?;
    let firing = h.send("donation.received", json!({"amount": 2})).await?;
    // The firing event's webhook has started: kill the worker in the middle of it.
    eventually(WAIT, || async { Ok(!receiver.received().is_empty()) }).await?;
    h.workers[0].child.start_kill()?;
    h.workers[0].child.wait().await?;
    // Longer than the window: the old gate forgot the firing by now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    h.start_worker(&quick()).await?;
    eventually(WAIT, || async {
        Ok(count(&h, "rule_executions", rule).await? == 1)
    })
    .await?;
    drained(&h).await?;
    let executions = h.executions(Some(rule)).await?;
    assert_eq!(executions.len(), 1, "{executions:?}");
    assert_eq!(executions[0].1, firing, "the firing event executed");
    assert_eq!(executions[0].2, "succeeded");
    assert_eq!(
        count(&h, "rule_threshold_counts", rule).await?,
        1,
        "e1 counted once"
    );
    let keys = idempotency_keys(&receiver);
    assert!(
        !keys.is_empty() && keys.iter().all(|k| *k == keys[0]),
        "{keys:?}"
    );
    assert_eq!(
        keys[0],
        rules_core::execution_id(rule, firing).to_string(),
        "a repeat carries the same idempotency key"
    );
    Ok(())
}

#[tokio::test]
async fn a_cooldown_execution_is_not_turned_into_a_suppression_after_a_kill() -> anyhow::Result<()>
{
    let receiver = Receiver::start(&[])?;
    let mut h = Harness::new("eo-cooldown").await?;
    let rule = h
        .add_rule(webhook_rule(
            &receiver.url("/slow/2500"),
            json!({"cooldown_seconds": 2, "cooldown_key": "data.user"}),
        ))
        .await?;
    h.start_worker(&quick()).await?;
    h.wait_rules_loaded(1).await?;
    let first = h.send("donation.received", json!({"user": "u1"})).await?;
    eventually(WAIT, || async { Ok(!receiver.received().is_empty()) }).await?;
    h.workers[0].child.start_kill()?;
    h.workers[0].child.wait().await?;
    // After the first one's cooldown: a second event of the same key takes a new one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let second = h.send("donation.received", json!({"user": "u1"})).await?;
    h.start_worker(&quick()).await?;
    eventually(WAIT, || async {
        Ok(count(&h, "rule_executions", rule).await? == 2)
    })
    .await?;
    drained(&h).await?;
    let mut executed: Vec<Uuid> = h
        .executions(Some(rule))
        .await?
        .into_iter()
        .map(|e| e.1)
        .collect();
    executed.sort();
    let mut expected = vec![first, second];
    expected.sort();
    assert_eq!(executed, expected);
    assert_eq!(
        count(&h, "rule_suppressions", rule).await?,
        0,
        "the redelivered first event is not suppressed by the cooldown it started"
    );
    Ok(())
}

#[tokio::test]
async fn late_duplicates_and_a_replay_from_zero_change_nothing() -> anyhow::Result<()> {
    let mut h = Harness::new("eo-replay").await?;
    let out = h.out();
    let cooldown = h
        .add_rule(rules_e2e::worker::publish_rule(
            &out,
            json!({"cooldown_seconds": 60, "cooldown_key": "data.user.name"}),
        ))
        .await?;
    let threshold = h
        .add_rule(rules_e2e::worker::publish_rule(
            &out,
            json!({"trigger_config": {"event_types": ["donation.received"],
                   "condition": {"field": "data.amount", "op": "gte", "value": 10},
                   "threshold": {"count": 2, "window_seconds": 60}}}),
        ))
        .await?;
    // Decisions are forgotten by Redis after a second: what holds them after that is
    // PostgreSQL.
    let mut env = vec![
        ("RULES__WORKER__DEDUPE_SECONDS", "1".to_string()),
        ("RULES__WORKER__CLAIM_IDLE_MS", "100".to_string()),
        ("RULES__WORKER__CLAIM_INTERVAL_MS", "100".to_string()),
    ];
    env.push(("RULES__WORKER__MAX_DELIVERIES", "5".to_string()));
    h.start_worker(&env).await?;
    h.wait_rules_loaded(2).await?;
    let data = json!({"amount": 20, "user": {"name": "a"}});
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(h.send("donation.received", data.clone()).await?);
    }
    drained(&h).await?;
    let before = recorded(&h, cooldown, threshold).await?;
    assert_eq!(
        before.0, 2,
        "the cooldown rule's first, the threshold's second"
    );
    assert_eq!((before.1, before.2), (2, 2));
    assert_eq!(before.5, 2);

    // Late duplicates in other entries, once Redis has forgotten the decisions.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for id in &ids {
        h.send_with_id(*id, "donation.received", data.clone())
            .await?;
    }
    drained(&h).await?;
    // The group destroyed with the stream kept: the worker recreates it from `0`.
    let mut conn = h.keys.conn().await?;
    let _: i64 = redis::cmd("XGROUP")
        .arg("DESTROY")
        .arg(h.stream())
        .arg("rule-engine")
        .query_async(&mut conn)
        .await?;
    eventually(WAIT, || async {
        let groups: Vec<redis::Value> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(h.stream())
            .query_async(&mut h.keys.conn().await?)
            .await?;
        Ok(!groups.is_empty())
    })
    .await?;
    drained(&h).await?;
    let after = recorded(&h, cooldown, threshold).await?;
    assert_eq!(
        after, before,
        "nothing executed, counted or published again"
    );
    Ok(())
}

#[tokio::test]
async fn a_backlog_decides_as_live_and_equals_the_backtest() -> anyhow::Result<()> {
    let mut h = Harness::new("eo-backlog").await?;
    let out = h.out();
    let threshold = h
        .add_rule(rules_e2e::worker::publish_rule(
            &out,
            json!({"trigger_config": {"event_types": ["donation.received"],
                   "threshold": {"count": 3, "window_seconds": 10}}}),
        ))
        .await?;
    let cooldown = h
        .add_rule(rules_e2e::worker::publish_rule(
            &out,
            json!({"cooldown_seconds": 10}),
        ))
        .await?;
    h.create_group().await?;
    // The worker is down; three donations 20 s apart (by their own times) wait.
    let now = chrono::Utc::now();
    for ago in [60, 40, 20] {
        let event = json!({"id": Uuid::new_v4(), "type": "donation.received", "livestream_id": LS,
            "occurred_at": (now - chrono::TimeDelta::seconds(ago)).to_rfc3339(),
            "data": {"amount": 50, "user": {"name": "b"}}});
        h.send_fields(&[("event", event.to_string())]).await?;
    }
    h.start_worker(&[]).await?;
    h.wait_rules_loaded(2).await?;
    drained(&h).await?;
    // As live: the threshold never saw three in ten seconds; the cooldown never ran
    // across two of them.
    assert_eq!(count(&h, "rule_executions", threshold).await?, 0);
    assert_eq!(count(&h, "rule_threshold_counts", threshold).await?, 3);
    assert_eq!(count(&h, "rule_executions", cooldown).await?, 3);
    assert_eq!(count(&h, "rule_suppressions", cooldown).await?, 0);

    // The backtest of the stream says the same.
    let port = free_port()?;
    let _api = Process::start(
        "rules-api",
        &api_env(
            &h.db.url,
            port,
            true,
            &[("RULES__WORKER__STREAMS", h.stream())],
        ),
    )?;
    let base = format!("http://127.0.0.1:{port}");
    wait_http_ok(&format!("{base}/health/ready"), WAIT).await?;
    for (rule, executed, suppressed, below) in [(threshold, 0, 0, 3), (cooldown, 3, 0, 0)] {
        let body: Value = http_client()
            .post(format!("{base}/api/rules/backtest"))
            .bearer_auth(TEST_KEY)
            .json(&json!({"rule_id": rule, "from": (now - chrono::TimeDelta::minutes(5)).to_rfc3339()}))
            .send()
            .await?
            .json()
            .await?;
        assert_eq!(body["would_execute"], executed, "{body}");
        assert_eq!(body["suppressed_by_cooldown"], suppressed, "{body}");
        assert_eq!(body["below_threshold"], below, "{body}");
    }
    Ok(())
}

#[tokio::test]
async fn a_stale_match_is_skipped_and_takes_no_cooldown() -> anyhow::Result<()> {
    let mut h = Harness::new("eo-stale").await?;
    let rule = h
        .add_rule(json!({
            "name": "fresh alerts only",
            "cooldown_seconds": 600,
            "trigger_config": {"event_types": ["donation.received"]},
            "actions": [{"type": "log", "message": "alert", "max_age_seconds": 5}]
        }))
        .await?;
    h.start_worker(&[]).await?;
    h.wait_rules_loaded(1).await?;
    let old = json!({"id": Uuid::new_v4(), "type": "donation.received", "livestream_id": LS,
        "occurred_at": (chrono::Utc::now() - chrono::TimeDelta::seconds(60)).to_rfc3339(),
        "data": {}});
    h.send_fields(&[("event", old.to_string())]).await?;
    drained(&h).await?;
    let fresh = h.send("donation.received", json!({})).await?;
    drained(&h).await?;
    let executions = h.executions(Some(rule)).await?;
    let statuses: Vec<&str> = executions.iter().map(|e| e.2.as_str()).collect();
    assert_eq!(statuses, vec!["skipped", "succeeded"], "{executions:?}");
    assert_eq!(executions[1].1, fresh, "the fresh event is not suppressed");
    assert_eq!(count(&h, "rule_suppressions", rule).await?, 0);
    let (matched, executed, suppressed, succeeded, failed) = h.counters(rule).await?;
    assert_eq!(
        (matched, executed, suppressed, succeeded, failed),
        (2, 1, 0, 1, 0)
    );
    Ok(())
}
