//! The gate script against a real Redis: cooldowns, thresholds, claims, atomicity.

use rules_core::{CompiledRule, Event};
use rules_store::gate::{decide, Decision, Pair};
use serde_json::{json, Value};
use uuid::Uuid;

const LS: &str = "0e2a9c1b-0000-4000-8000-00000000abcd";

fn rule(extra: Value) -> CompiledRule {
    let mut body = json!({"livestream_id": LS, "name": "g", "trigger_config": {"event_types": ["t"]},
        "actions": [{"type": "log", "message": "m"}]});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    CompiledRule::from_json(Uuid::new_v4(), 1, &body).expect("valid")
}

fn event(user: &str) -> Event {
    Event::new(
        Uuid::new_v4(),
        "t",
        Uuid::parse_str(LS).expect("uuid"),
        chrono::Utc::now(),
        json!({"user": user}),
    )
}

async fn conn() -> redis::aio::MultiplexedConnection {
    let url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    redis::Client::open(url)
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("redis")
}

async fn one(
    c: &mut redis::aio::MultiplexedConnection,
    rule: &CompiledRule,
    event: &Event,
    token: &str,
) -> Decision {
    decide(
        c,
        &[Pair::new(
            rule,
            event,
            token,
            event.occurred_at.timestamp_millis(),
        )],
        60_000,
    )
    .await
    .expect("decide")
    .remove(0)
    .expect("pair decided")
}

async fn cleanup(c: &mut redis::aio::MultiplexedConnection, rule: &CompiledRule) {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("re:{{{}}}:*", rule.id()))
        .query_async(c)
        .await
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query_async(c).await;
    }
}

#[tokio::test]
async fn cooldown_per_key_and_own_redelivery() {
    let mut c = conn().await;
    let r = rule(json!({"cooldown_seconds": 60, "cooldown_key": "data.user"}));
    let (a1, a2, b1) = (event("alice"), event("alice"), event("bob"));
    assert_eq!(one(&mut c, &r, &a1, "s/1-0").await, Decision::Execute);
    assert!(
        matches!(one(&mut c, &r, &a2, "s/2-0").await, Decision::Suppressed { remaining_ms } if remaining_ms > 59_000)
    );
    assert_eq!(
        one(&mut c, &r, &b1, "s/3-0").await,
        Decision::Execute,
        "another key value has its own cooldown"
    );
    assert_eq!(
        one(&mut c, &r, &a1, "s/1-0").await,
        Decision::Execute,
        "its own redelivery is not suppressed"
    );
    assert_eq!(
        one(&mut c, &r, &a1, "s/9-0").await,
        Decision::Duplicate,
        "the same event in another entry"
    );
    let scopes: Vec<String> = redis::cmd("ZRANGE")
        .arg(rules_store::keys::cooldown_index(r.id()))
        .arg(0)
        .arg(-1)
        .query_async(&mut c)
        .await
        .expect("zrange");
    assert_eq!(scopes, vec!["v:alice".to_string(), "v:bob".to_string()]);
    cleanup(&mut c, &r).await;
}

#[tokio::test]
async fn threshold_fires_on_the_nth_and_starts_again() {
    let mut c = conn().await;
    let r = rule(
        json!({"trigger_config": {"event_types": ["t"], "threshold": {"count": 3, "window_seconds": 60}}}),
    );
    let events: Vec<Event> = (0..7).map(|_| event("x")).collect();
    let mut got = Vec::new();
    for (i, e) in events.iter().enumerate() {
        got.push(one(&mut c, &r, e, &format!("s/{i}-0")).await);
    }
    assert_eq!(
        got,
        vec![
            Decision::BelowThreshold { count: 1 },
            Decision::BelowThreshold { count: 2 },
            Decision::Execute,
            Decision::BelowThreshold { count: 1 },
            Decision::BelowThreshold { count: 2 },
            Decision::Execute,
            Decision::BelowThreshold { count: 1 },
        ]
    );
    // Redeliveries: the firing event fires again; a counted one does not count twice.
    assert_eq!(
        one(&mut c, &r, &events[5], "s/5-0").await,
        Decision::Execute
    );
    assert_eq!(
        one(&mut c, &r, &events[6], "s/6-0").await,
        Decision::BelowThreshold { count: 1 }
    );
    cleanup(&mut c, &r).await;
}

#[tokio::test]
async fn threshold_groups_are_independent() {
    let mut c = conn().await;
    let r = rule(
        json!({"trigger_config": {"event_types": ["t"], "threshold": {"count": 2, "window_seconds": 60, "group_by": "data.user"}}}),
    );
    assert_eq!(
        one(&mut c, &r, &event("a"), "s/1-0").await,
        Decision::BelowThreshold { count: 1 }
    );
    assert_eq!(
        one(&mut c, &r, &event("b"), "s/2-0").await,
        Decision::BelowThreshold { count: 1 }
    );
    assert_eq!(
        one(&mut c, &r, &event("a"), "s/3-0").await,
        Decision::Execute
    );
    cleanup(&mut c, &r).await;
}

#[tokio::test]
async fn racing_replicas_take_one_cooldown_once() {
    let r = std::sync::Arc::new(rule(json!({"cooldown_seconds": 60})));
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let r = r.clone();
            tokio::spawn(async move {
                let mut c = conn().await;
                let e = event("same");
                one(&mut c, &r, &e, &format!("s/{i}-0")).await
            })
        })
        .collect();
    let mut executed = 0;
    for t in tasks {
        if t.await.expect("task") == Decision::Execute {
            executed += 1;
        }
    }
    assert_eq!(executed, 1);
    cleanup(&mut conn().await, &r).await;
}

#[tokio::test]
async fn a_batch_is_decided_in_order_in_one_pipeline() {
    let mut c = conn().await;
    let r = rule(json!({"cooldown_seconds": 60}));
    let (e1, e2) = (event("a"), event("b"));
    let pairs = [
        Pair::new(&r, &e1, "s/1-0", e1.occurred_at.timestamp_millis()),
        Pair::new(&r, &e2, "s/2-0", e2.occurred_at.timestamp_millis()),
    ];
    let got: Vec<Decision> = decide(&mut c, &pairs, 60_000)
        .await
        .expect("decide")
        .into_iter()
        .map(|r| r.expect("pair decided"))
        .collect();
    assert_eq!(got[0], Decision::Execute);
    assert!(matches!(got[1], Decision::Suppressed { .. }));
    // After SCRIPT FLUSH (as after a Redis restart) the script is loaded again.
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut c)
        .await
        .expect("flush");
    let e3 = event("c");
    assert!(matches!(
        one(&mut c, &r, &e3, "s/3-0").await,
        Decision::Suppressed { .. }
    ));
    cleanup(&mut c, &r).await;
}

#[tokio::test]
async fn inspection_reports_without_changing_anything() {
    use rules_store::gate::inspect;
    let mut c = conn().await;
    let r = rule(
        json!({"cooldown_seconds": 60, "trigger_config": {"event_types": ["t"], "threshold": {"count": 2, "window_seconds": 60}}}),
    );
    let (e1, e2, e3) = (event("a"), event("b"), event("c"));
    fn look<'a>(r: &'a CompiledRule, e: &'a Event) -> Pair<'a> {
        Pair::new(r, e, "dry-run", e.occurred_at.timestamp_millis())
    }
    // Nothing yet: the first event would only count.
    assert_eq!(
        inspect(&mut c, &look(&r, &e1)).await.expect("inspect"),
        (Decision::BelowThreshold { count: 1 }, 1)
    );
    assert_eq!(
        inspect(&mut c, &look(&r, &e1)).await.expect("inspect").1,
        1,
        "inspecting counted nothing"
    );
    assert_eq!(
        one(&mut c, &r, &e1, "s/1-0").await,
        Decision::BelowThreshold { count: 1 }
    );
    // The second would fire, and take the cooldown; inspecting takes nothing.
    assert_eq!(
        inspect(&mut c, &look(&r, &e2)).await.expect("inspect"),
        (Decision::Execute, 2)
    );
    assert_eq!(one(&mut c, &r, &e2, "s/2-0").await, Decision::Execute);
    // Now the cooldown runs; an already processed event is reported as such.
    assert_eq!(
        one(&mut c, &r, &e3, "s/3-0").await,
        Decision::BelowThreshold { count: 1 }
    );
    let d = event("d");
    let (decision, _) = inspect(&mut c, &look(&r, &d)).await.expect("inspect");
    assert!(
        matches!(decision, Decision::Suppressed { remaining_ms } if remaining_ms > 59_000),
        "{decision:?}"
    );
    assert_eq!(
        inspect(&mut c, &look(&r, &e2)).await.expect("inspect").0,
        Decision::Duplicate
    );
    cleanup(&mut c, &r).await;
}

#[tokio::test]
async fn destination_breaker_opens_probes_and_closes() {
    use rules_store::gate::destination::{acquire, record, Outcome, Permit, Policy};
    let mut c = conn().await;
    let host = format!("test-{}.example:443", Uuid::new_v4().simple());
    let policy = Policy {
        failures_to_open: 2,
        cooloff_ms: 300,
        per_second: 0,
    };
    assert_eq!(
        acquire(&mut c, &host, policy).await.expect("acquire"),
        Permit::Go
    );
    let opened = record(&mut c, &host, Outcome::Failed("timeout: 5s"), policy)
        .await
        .expect("record");
    assert!(!opened);
    assert_eq!(
        acquire(&mut c, &host, policy).await.expect("acquire"),
        Permit::Go,
        "one failure is not enough"
    );
    let opened = record(
        &mut c,
        &host,
        Outcome::Failed("HTTP 500 Internal Server Error"),
        policy,
    )
    .await
    .expect("record");
    assert!(opened, "the second failure opens it");
    // Open, and it says why: the last real cause, not only that it is open.
    assert_eq!(
        acquire(&mut c, &host, policy).await.expect("acquire"),
        Permit::Open {
            last_error: Some("HTTP 500 Internal Server Error".into())
        }
    );
    tokio::time::sleep(std::time::Duration::from_millis(350)).await;
    assert_eq!(
        acquire(&mut c, &host, policy).await.expect("acquire"),
        Permit::Probe,
        "one probe after the cool-off"
    );
    assert!(
        matches!(
            acquire(&mut c, &host, policy).await.expect("acquire"),
            Permit::Probing(ms) if ms > 0 && ms <= 300
        ),
        "only one probes; the others are told to ask again, not to fail"
    );
    // A failed probe reopens at once; a successful one closes.
    record(
        &mut c,
        &host,
        Outcome::Failed("connect error: reset"),
        policy,
    )
    .await
    .expect("record");
    assert_eq!(
        acquire(&mut c, &host, policy).await.expect("acquire"),
        Permit::Open {
            last_error: Some("connect error: reset".into())
        }
    );
    tokio::time::sleep(std::time::Duration::from_millis(350)).await;
    assert_eq!(
        acquire(&mut c, &host, policy).await.expect("acquire"),
        Permit::Probe
    );
    record(&mut c, &host, Outcome::Up, policy)
        .await
        .expect("record");
    assert_eq!(
        acquire(&mut c, &host, policy).await.expect("acquire"),
        Permit::Go
    );

    let limited = Policy {
        failures_to_open: 5,
        cooloff_ms: 1000,
        per_second: 2,
    };
    let other = format!("rate-{}.example:443", Uuid::new_v4().simple());
    // Start early in a second, so the three calls fall in the same one.
    let into_second = chrono::Utc::now().timestamp_subsec_millis();
    if into_second > 300 {
        tokio::time::sleep(std::time::Duration::from_millis(
            u64::from(1000 - into_second) + 5,
        ))
        .await;
    }
    let mut permits = Vec::new();
    for _ in 0..3 {
        permits.push(acquire(&mut c, &other, limited).await.expect("acquire"));
    }
    // Two per second; the third in the same second waits for the next one.
    assert!(permits[..2].iter().all(|p| *p == Permit::Go), "{permits:?}");
    assert!(
        matches!(permits[2], Permit::Wait(ms) if ms > 0 && ms <= 1000),
        "{permits:?}"
    );
    // Nothing of the test's destinations is left behind.
    for h in [&host, &other] {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("re:dest:{{{h}}}:*"))
            .query_async(&mut c)
            .await
            .expect("keys");
        if !keys.is_empty() {
            let _: () = redis::cmd("DEL")
                .arg(keys)
                .query_async(&mut c)
                .await
                .expect("del");
        }
    }
}

#[tokio::test]
async fn a_key_of_the_wrong_type_fails_its_own_pair_only() {
    let mut c = conn().await;
    let broken = rule(json!({"cooldown_seconds": 60}));
    let fine = rule(json!({"cooldown_seconds": 60}));
    // Something wrote a stream where the gate keeps a string.
    let key = rules_store::keys::cooldown(broken.id(), rules_store::keys::WHOLE_RULE);
    let _: String = redis::cmd("XADD")
        .arg(&key)
        .arg("*")
        .arg("f")
        .arg("v")
        .query_async(&mut c)
        .await
        .expect("xadd");
    let (e1, e2) = (event("a"), event("b"));
    let pairs = [
        Pair::new(&broken, &e1, "s/1-0", e1.occurred_at.timestamp_millis()),
        Pair::new(&fine, &e2, "s/2-0", e2.occurred_at.timestamp_millis()),
    ];
    let got = decide(&mut c, &pairs, 60_000)
        .await
        .expect("the batch is decided");
    assert!(
        matches!(&got[0], Err(e) if e.to_string().contains("WRONGTYPE")),
        "{:?}",
        got[0]
    );
    assert_eq!(got[1].as_ref().ok(), Some(&Decision::Execute));
    cleanup(&mut c, &broken).await;
    cleanup(&mut c, &fine).await;
}

#[tokio::test]
async fn rule_edits_restart_thresholds_and_retime_cooldowns() {
    let mut c = conn().await;
    let id = Uuid::new_v4();
    let compile = |body: Value| {
        let mut full = json!({"livestream_id": LS, "name": "g", "trigger_config": {"event_types": ["t"]},
            "actions": [{"type": "log", "message": "m"}]});
        if let (Some(b), Some(e)) = (full.as_object_mut(), body.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        CompiledRule::from_json(id, 1, &full).expect("valid")
    };
    let counting = |condition: Value| {
        compile(
            json!({"trigger_config": {"event_types": ["t"], "condition": condition,
            "threshold": {"count": 2, "window_seconds": 60}}}),
        )
    };
    let before = counting(json!({"field": "data.user", "op": "exists", "value": true}));
    let (e1, e2) = (event("a"), event("a"));
    assert_eq!(
        one(&mut c, &before, &e1, "s/1-0").await,
        Decision::BelowThreshold { count: 1 }
    );
    // Another condition counts afresh: e1 does not count toward it.
    let after = counting(json!({"field": "data.user", "op": "eq", "value": "a"}));
    assert_ne!(before.threshold_generation(), after.threshold_generation());
    assert_eq!(
        one(&mut c, &after, &e2, "s/2-0").await,
        Decision::BelowThreshold { count: 1 }
    );
    // A renamed rule keeps its count.
    let mut renamed = json!({"trigger_config": {"event_types": ["t"],
        "condition": {"field": "data.user", "op": "eq", "value": "a"},
        "threshold": {"count": 2, "window_seconds": 60}}});
    renamed["name"] = json!("renamed");
    assert_eq!(
        compile(renamed).threshold_generation(),
        after.threshold_generation()
    );

    // A running cooldown follows the rule's current duration.
    let cooling = rule(json!({"cooldown_seconds": 3600}));
    let t0 = chrono::Utc::now().timestamp_millis();
    let (f1, f2) = (event("a"), event("a"));
    let first = decide(&mut c, &[Pair::new(&cooling, &f1, "s/3-0", t0)], 60_000)
        .await
        .expect("decide");
    assert_eq!(first[0].as_ref().ok(), Some(&Decision::Execute));
    let mut lowered_body = cooling.rule().spec.clone();
    lowered_body.cooldown_seconds = 2;
    let lowered = CompiledRule::compile(rules_core::Rule {
        spec: lowered_body,
        ..cooling.rule().clone()
    });
    let got = decide(
        &mut c,
        &[Pair::new(&lowered, &f2, "s/4-0", t0 + 3_000)],
        60_000,
    )
    .await
    .expect("decide");
    assert_eq!(
        got[0].as_ref().ok(),
        Some(&Decision::Execute),
        "3 s after the start, a 2 s cooldown is over"
    );
    cleanup(&mut c, &before).await;
    cleanup(&mut c, &cooling).await;
}
