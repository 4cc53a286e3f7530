//! `/api/rules/{id}/cooldowns` over real Redis, with cooldowns started by the same
//! gate the worker uses.

mod common;

use actix_web::test::TestRequest;
use common::*;
use rules_core::{CompiledRule, Event};
use rules_store::gate::{decide, Decision, Pair};
use serde_json::json;
use uuid::Uuid;

async fn start_cooldown(rule: &CompiledRule, user: &str) -> Decision {
    start_cooldown_of(rule, json!({"amount": 50, "user": {"id": user}})).await
}

async fn start_cooldown_of(rule: &CompiledRule, data: serde_json::Value) -> Decision {
    let mut conn = redis().await;
    let event = Event::new(
        Uuid::new_v4(),
        "donation.received",
        Uuid::parse_str(LS).expect("uuid"),
        chrono::Utc::now(),
        data,
    );
    let token = format!("test/{}", event.id);
    decide(
        &mut conn,
        &[Pair::new(
            rule,
            &event,
            &token,
            event.occurred_at.timestamp_millis(),
        )],
        60_000,
    )
    .await
    .expect("gate")
    .remove(0)
    .expect("pair decided")
}

#[actix_web::test]
async fn list_and_clear_cooldowns() {
    let api = start().await;
    let created = create(&api.service, rule_body("cooling")).await;
    let id = created["id"].as_str().expect("id").to_owned();
    let rule = CompiledRule::from_json(Uuid::parse_str(&id).expect("uuid"), 1, &created)
        .expect("compiles");
    assert_eq!(start_cooldown(&rule, "u1").await, Decision::Execute);
    assert_eq!(start_cooldown(&rule, "u2").await, Decision::Execute);
    assert!(matches!(
        start_cooldown(&rule, "u1").await,
        Decision::Suppressed { .. }
    ));

    let uri = format!("/api/rules/{id}/cooldowns");
    let (status, _, body) = send(
        &api.service,
        TestRequest::get().uri(&uri).insert_header(auth()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut keys: Vec<&str> = body["cooldowns"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["key"].as_str())
        .collect();
    keys.sort();
    assert_eq!(keys, vec!["u1", "u2"]);
    let remaining = body["cooldowns"][0]["seconds_remaining"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(remaining > 25.0 && remaining <= 30.0, "{remaining}");

    // Clearing one key: the next match of that key executes at once.
    let (status, _, _) = send(
        &api.service,
        TestRequest::delete()
            .uri(&format!("{uri}?key=u1"))
            .insert_header(auth()),
    )
    .await;
    assert_eq!(status, 204);
    let (_, _, body) = send(
        &api.service,
        TestRequest::get().uri(&uri).insert_header(auth()),
    )
    .await;
    assert_eq!(body["cooldowns"].as_array().map(Vec::len), Some(1));
    assert_eq!(start_cooldown(&rule, "u1").await, Decision::Execute);

    // Clearing all.
    let (status, _, _) = send(
        &api.service,
        TestRequest::delete().uri(&uri).insert_header(auth()),
    )
    .await;
    assert_eq!(status, 204);
    let (_, _, body) = send(
        &api.service,
        TestRequest::get().uri(&uri).insert_header(auth()),
    )
    .await;
    assert_eq!(body["cooldowns"], json!([]));
    assert_eq!(start_cooldown(&rule, "u2").await, Decision::Execute);
    send(
        &api.service,
        TestRequest::delete().uri(&uri).insert_header(auth()),
    )
    .await;

    let missing = "/api/rules/6f1c2d3e-0000-4000-8000-000000000099/cooldowns";
    let (status, _, _) = send(
        &api.service,
        TestRequest::get().uri(missing).insert_header(auth()),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _, _) = send(
        &api.service,
        TestRequest::delete().uri(missing).insert_header(auth()),
    )
    .await;
    assert_eq!(status, 404);
}

#[actix_web::test]
async fn every_listed_cooldown_can_be_cleared_by_what_is_listed() {
    let api = start().await;
    let created = create(&api.service, rule_body("listed")).await;
    let id = created["id"].as_str().expect("id").to_owned();
    let rule = CompiledRule::from_json(Uuid::parse_str(&id).expect("uuid"), 1, &created)
        .expect("compiles");
    let long = "x".repeat(300);
    for user in [json!(long), json!(42), json!("42"), json!(10.0)] {
        let data = json!({"amount": 50, "user": {"id": user}});
        assert_eq!(
            start_cooldown_of(&rule, data).await,
            Decision::Execute,
            "{user}"
        );
    }
    // 10 and 10.0 are one key; "42" and 42 are two.
    assert!(matches!(
        start_cooldown_of(&rule, json!({"amount": 50, "user": {"id": 10}})).await,
        Decision::Suppressed { .. }
    ));
    assert_eq!(
        start_cooldown_of(&rule, json!({"amount": 50, "user": {}})).await,
        Decision::Execute
    );
    let uri = format!("/api/rules/{id}/cooldowns");
    let list = || TestRequest::get().uri(&uri).insert_header(auth());
    let (status, _, body) = send(&api.service, list()).await;
    assert_eq!(status, 200, "{body}");
    let listed = body["cooldowns"].as_array().expect("list").clone();
    assert_eq!(listed.len(), 5, "{body}");
    let keys: Vec<&serde_json::Value> = listed.iter().map(|c| &c["key"]).collect();
    for expected in [json!(long), json!(42), json!("42"), json!(10), json!(null)] {
        assert!(keys.contains(&&expected), "{expected} in {keys:?}");
    }
    // The long value is listed as it was, and clears by it.
    let (status, _, _) = send(
        &api.service,
        TestRequest::delete()
            .uri(&format!("{uri}?key={long}"))
            .insert_header(auth()),
    )
    .await;
    assert_eq!(status, 204);
    // The missing key clears by its listed scope; the number by its JSON.
    let missing = listed
        .iter()
        .find(|c| c["key"].is_null())
        .and_then(|c| c["scope"].as_str())
        .expect("scope")
        .to_owned();
    for query in [format!("scope={missing}"), "key=10".to_owned()] {
        let (status, _, _) = send(
            &api.service,
            TestRequest::delete()
                .uri(&format!("{uri}?{query}"))
                .insert_header(auth()),
        )
        .await;
        assert_eq!(status, 204, "{query}");
    }
    let (_, _, body) = send(&api.service, list()).await;
    let mut left: Vec<String> = body["cooldowns"]
        .as_array()
        .expect("list")
        .iter()
        .map(|c| c["key"].to_string())
        .collect();
    left.sort();
    assert_eq!(left, vec!["\"42\"".to_string(), "42".to_string()]);
    // `42` names both the string and the number.
    send(
        &api.service,
        TestRequest::delete()
            .uri(&format!("{uri}?key=42"))
            .insert_header(auth()),
    )
    .await;
    let (_, _, body) = send(&api.service, list()).await;
    assert_eq!(body["cooldowns"], json!([]));
    let (status, _, _) = send(
        &api.service,
        TestRequest::delete()
            .uri(&format!("{uri}?key=a&scope=_"))
            .insert_header(auth()),
    )
    .await;
    assert_eq!(status, 400);
}

#[actix_web::test]
async fn running_cooldowns_follow_a_raised_duration() {
    let api = start().await;
    let created = create(&api.service, rule_body("raised")).await;
    let id = created["id"].as_str().expect("id").to_owned();
    let rule = CompiledRule::from_json(Uuid::parse_str(&id).expect("uuid"), 1, &created)
        .expect("compiles");
    assert_eq!(start_cooldown(&rule, "u1").await, Decision::Execute);
    let (status, _, body) = send(
        &api.service,
        TestRequest::patch()
            .uri(&format!("/api/rules/{id}"))
            .insert_header(auth())
            .insert_header(("content-type", "application/merge-patch+json"))
            .set_payload(r#"{"cooldown_seconds": 7200}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, _, body) = send(
        &api.service,
        TestRequest::get()
            .uri(&format!("/api/rules/{id}/cooldowns"))
            .insert_header(auth()),
    )
    .await;
    let remaining = body["cooldowns"][0]["seconds_remaining"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(remaining > 7100.0, "{body}");
    // The key itself lives that long (it had 30 s + an hour before).
    let mut conn = redis().await;
    let key = rules_store::keys::cooldown(rule.id(), "v:u1");
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .expect("pttl");
    assert!(ttl > 7_100_000, "{ttl}");
    let _: redis::RedisResult<()> = redis::cmd("DEL")
        .arg(&key)
        .arg(rules_store::keys::cooldown_index(rule.id()))
        .query_async(&mut conn)
        .await;
}
