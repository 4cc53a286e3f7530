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
    let mut conn = redis().await;
    let event = Event::new(
        Uuid::new_v4(),
        "donation.received",
        Uuid::parse_str(LS).expect("uuid"),
        chrono::Utc::now(),
        json!({"amount": 50, "user": {"id": user}}),
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
