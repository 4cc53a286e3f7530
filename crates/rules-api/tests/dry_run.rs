//! `POST /api/rules/test`: traces for each operator, rendered actions, errors by path.

mod common;

use actix_web::test::TestRequest;
use common::*;
use serde_json::{json, Value};

fn event(data: Value) -> Value {
    json!({"id": "6f1c2d3e-0000-4000-8000-000000000001", "type": "donation.received",
           "livestream_id": LS, "occurred_at": "2026-11-24T10:00:00Z", "data": data})
}

#[actix_web::test]
async fn traces_every_operator() {
    let api = start().await;
    let leaves = json!([
        {"field": "data.amount", "op": "eq", "value": 25.5},
        {"field": "data.amount", "op": "ne", "value": 1},
        {"field": "data.amount", "op": "gt", "value": 25},
        {"field": "data.amount", "op": "gte", "value": 25.5},
        {"field": "data.amount", "op": "lt", "value": 26},
        {"field": "data.amount", "op": "lte", "value": 25.5},
        {"field": "data.currency", "op": "in", "value": ["usd"], "ignore_case": true},
        {"field": "data.currency", "op": "not_in", "value": ["EUR"]},
        {"field": "data.tags", "op": "contains", "value": "vip"},
        {"field": "data.message", "op": "starts_with", "value": "GG"},
        {"field": "data.message", "op": "ends_with", "value": "everyone"},
        {"field": "data.message", "op": "matches", "value": "^gg\\s", "ignore_case": true},
        {"field": "data.user.id", "op": "exists", "value": true},
        {"field": "data.missing", "op": "exists", "value": false},
        {"not": {"field": "data.missing", "op": "eq", "value": 1}}
    ]);
    let mut rule = rule_body("trace");
    rule["trigger_config"]["condition"] = json!({"all": leaves});
    let data = json!({"amount": 25.5, "currency": "USD", "tags": ["vip"], "message": "GG everyone",
                      "user": {"id": "u-42", "name": "alice"}});
    let (status, _, body) = send(
        &api.service,
        TestRequest::post()
            .uri("/api/rules/test")
            .insert_header(auth())
            .set_json(json!({"rule": rule, "event": event(data)})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["matched"], true);
    let trace = body["trace"].as_array().expect("trace");
    assert_eq!(trace.len(), 1 + 15 + 1);
    for node in &trace[..16] {
        assert_eq!(node["result"], true, "{node}");
    }
    assert_eq!(
        trace[16]["result"], false,
        "the leaf under `not` is false; `not` makes it true"
    );
    assert_eq!(trace[1]["path"], "trigger_config.condition.all[0]");
    assert_eq!(trace[1]["op"], "eq");
    assert_eq!(trace[1]["actual"], json!(25.5));
    assert_eq!(trace[14]["found"], false);
    assert_eq!(trace[16]["path"], "trigger_config.condition.all[14].not");
    assert_eq!(
        body["actions"][0],
        json!({"type": "publish", "stream": "overlay:alerts",
        "payload": {"text": "alice donated 25.5!"}})
    );
    assert_eq!(
        body["cooldown"],
        json!({"seconds": 30, "key": "data.user.id", "key_value": "u-42"})
    );
    assert_eq!(body["threshold"], Value::Null);
}

#[actix_web::test]
async fn a_failing_leaf_is_shown_with_the_actual_value() {
    let api = start().await;
    let mut rule = rule_body("small");
    rule["trigger_config"]["threshold"] =
        json!({"count": 3, "window_seconds": 60, "group_by": "data.user.id"});
    let (status, _, body) = send(
        &api.service,
        TestRequest::post()
            .uri("/api/rules/test")
            .insert_header(auth())
            .set_json(
                json!({"rule": rule, "event": event(json!({"amount": 5, "user": {"id": "u-1"}}))}),
            ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["matched"].as_bool(),
            body["condition_matched"].as_bool()
        ),
        (Some(false), Some(false))
    );
    assert_eq!(body["trace"][0]["actual"], json!(5));
    assert_eq!(body["trace"][0]["result"], false);
    assert_eq!(body["threshold"]["group"], "u-1");
    // Nothing was stored.
    let (_, _, list) = send(
        &api.service,
        TestRequest::get().uri("/api/rules").insert_header(auth()),
    )
    .await;
    assert_eq!(list["items"], json!([]));
}

#[actix_web::test]
async fn invalid_rule_and_event_are_422_by_path() {
    let api = start().await;
    let mut rule = rule_body("bad");
    rule["trigger_config"]["condition"]["op"] = json!("bigger");
    let (status, _, body) = send(
        &api.service,
        TestRequest::post()
            .uri("/api/rules/test")
            .insert_header(auth())
            .set_json(
                json!({"rule": rule, "event": {"type": "x", "livestream_id": LS}, "extra": 1}),
            ),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let paths = error_paths(&body);
    assert_eq!(
        paths,
        vec!["extra", "rule.trigger_config.condition.op", "event.id"]
    );
    let (status, _, _) = send(
        &api.service,
        TestRequest::post()
            .uri("/api/rules/test")
            .insert_header(auth())
            .set_json(json!({"rule": rule_body("ok")})),
    )
    .await;
    assert_eq!(status, 422);
}

#[actix_web::test]
async fn live_dry_run_explains_why_not() {
    use rules_core::{CompiledRule, Event};
    use rules_store::gate::{decide, Pair};
    let api = start().await;
    let mut body = rule_body("live");
    body["trigger_config"]["threshold"] = json!({"count": 2, "window_seconds": 60});
    body["cooldown_key"] = Value::Null;
    let created = create(&api.service, body).await;
    let id = uuid::Uuid::parse_str(created["id"].as_str().expect("id")).expect("uuid");
    let rule = CompiledRule::from_json(id, 1, &created).expect("compiles");
    let mut redis = redis().await;
    let live = |event: Value, rule: Value| {
        TestRequest::post()
            .uri("/api/rules/test")
            .insert_header(auth())
            .set_json(json!({"rule": rule, "event": event, "live": true}))
    };
    let new_event = || json!({"id": uuid::Uuid::new_v4(), "type": "donation.received", "livestream_id": LS, "data": {"amount": 50, "user": {"name": "a"}}});
    let worker_sees = |e: &Value| Event::from_value(e, None).expect("event");

    // First matching event: the threshold would not be reached yet.
    let e1 = new_event();
    let (status, _, body) = send(&api.service, live(e1.clone(), created.clone())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["live"]["would_execute"], false);
    assert_eq!(body["live"]["reasons"], json!(["threshold_not_reached"]));
    assert_eq!(body["live"]["threshold_progress"], 1);
    let (_, _, again) = send(&api.service, live(e1.clone(), created.clone())).await;
    assert_eq!(
        again["live"]["threshold_progress"], 1,
        "the dry run changed nothing"
    );

    // The worker counts it; the next one would execute.
    let ev1 = worker_sees(&e1);
    decide(
        &mut redis,
        &[Pair::new(
            &rule,
            &ev1,
            "s/1-0",
            ev1.occurred_at.timestamp_millis(),
        )],
        60_000,
    )
    .await
    .expect("gate");
    let e2 = new_event();
    let (_, _, body) = send(&api.service, live(e2.clone(), created.clone())).await;
    assert_eq!(body["live"]["would_execute"], true, "{body}");
    assert_eq!(body["live"]["reasons"], json!([]));
    assert_eq!(body["live"]["threshold_progress"], 2);

    // It fires and takes the cooldown; two more count up to the threshold again, and
    // then the cooldown is the reason.
    let ev2 = worker_sees(&e2);
    decide(
        &mut redis,
        &[Pair::new(
            &rule,
            &ev2,
            "s/2-0",
            ev2.occurred_at.timestamp_millis(),
        )],
        60_000,
    )
    .await
    .expect("gate");
    let e3 = new_event();
    let ev3 = worker_sees(&e3);
    decide(
        &mut redis,
        &[Pair::new(
            &rule,
            &ev3,
            "s/3-0",
            ev3.occurred_at.timestamp_millis(),
        )],
        60_000,
    )
    .await
    .expect("gate");
    let (_, _, body) = send(&api.service, live(new_event(), created.clone())).await;
    assert_eq!(
        body["live"]["reasons"],
        json!(["cooldown_active"]),
        "{body}"
    );
    assert!(
        body["live"]["cooldown_remaining_seconds"]
            .as_f64()
            .unwrap_or(0.0)
            > 25.0
    );
    let (_, _, body) = send(&api.service, live(e2.clone(), created.clone())).await;
    assert_eq!(
        body["live"]["reasons"],
        json!(["already_processed"]),
        "{body}"
    );

    // A draft that was never saved, disabled, and not matching.
    let mut draft = rule_body("draft");
    draft["enabled"] = json!(false);
    let mut small = new_event();
    small["data"]["amount"] = json!(1);
    let (_, _, body) = send(&api.service, live(small, draft)).await;
    assert_eq!(
        body["live"]["reasons"],
        json!(["condition_not_met", "rule_disabled", "rule_not_loaded"]),
        "{body}"
    );
    assert_eq!(body["live"]["stored"], Value::Null);

    rules_e2e::RedisUnderTest::shared()
        .delete_matching(&format!("re:{{{id}}}:*"))
        .expect("delete the rule's keys");
}

#[actix_web::test]
async fn live_dry_run_answers_as_the_worker_would() {
    use rules_store::db::record::{record_batch, Decided, SuppressionRow};
    let api = start().await;
    let mut body = rule_body("as-worker");
    body["actions"][0]["max_age_seconds"] = json!(30);
    let created = create(&api.service, body).await;
    let id = created["id"].as_str().expect("id").to_owned();
    let live_by_id = |event: Value| {
        TestRequest::post()
            .uri("/api/rules/test")
            .insert_header(auth())
            .set_json(json!({"rule_id": id, "event": event, "live": true}))
    };
    let event = |extra: Value| {
        let mut e = json!({"id": uuid::Uuid::new_v4(), "type": "donation.received", "livestream_id": LS,
            "data": {"amount": 50, "user": {"id": "u-9", "name": "a"}}});
        if let (Some(o), Some(x)) = (e.as_object_mut(), extra.as_object()) {
            for (k, v) in x {
                o.insert(k.clone(), v.clone());
            }
        }
        e
    };
    // By id, at the stored version: nothing in the way.
    let (status, _, body) = send(&api.service, live_by_id(event(json!({})))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["live"]["reasons"], json!([]), "{body}");
    assert_eq!(body["live"]["would_execute"], true);

    // The saved rule pasted back without its version is taken at the stored one.
    let mut pasted = created.clone();
    pasted.as_object_mut().map(|o| o.remove("version"));
    let (_, _, body) = send(
        &api.service,
        TestRequest::post()
            .uri("/api/rules/test")
            .insert_header(auth())
            .set_json(json!({"rule": pasted, "event": event(json!({})), "live": true})),
    )
    .await;
    assert_eq!(body["live"]["reasons"], json!([]), "{body}");

    // Another livestream's event never reaches this rule in a worker.
    let other = event(json!({"livestream_id": "0e2a9c1b-0000-4000-8000-00000000ffff"}));
    let (_, _, body) = send(&api.service, live_by_id(other)).await;
    assert_eq!(
        body["live"]["reasons"],
        json!(["livestream_not_matched"]),
        "{body}"
    );

    // Too old for its only action: it would be skipped, not executed.
    let old = (chrono::Utc::now() - chrono::TimeDelta::seconds(120)).to_rfc3339();
    let (_, _, body) = send(&api.service, live_by_id(event(json!({"occurred_at": old})))).await;
    assert_eq!(body["live"]["reasons"], json!(["stale"]), "{body}");

    // Decided and recorded long ago (nothing of it left in Redis): already processed.
    let decided = event(json!({}));
    let mut conn = api.db.conn().await.expect("db");
    record_batch(
        &mut conn,
        &Decided {
            suppressions: vec![SuppressionRow {
                rule_id: uuid::Uuid::parse_str(&id).expect("uuid"),
                event_id: uuid::Uuid::parse_str(decided["id"].as_str().expect("id")).expect("uuid"),
                suppressed_at: chrono::Utc::now(),
                event_day: chrono::Utc::now().date_naive(),
            }],
            ..Decided::default()
        },
    )
    .await
    .expect("record");
    let (_, _, body) = send(&api.service, live_by_id(decided)).await;
    assert_eq!(
        body["live"]["reasons"],
        json!(["already_processed"]),
        "{body}"
    );

    // Both `rule` and `rule_id`: one of them.
    let (status, _, body) = send(
        &api.service,
        TestRequest::post()
            .uri("/api/rules/test")
            .insert_header(auth())
            .set_json(json!({"rule": created, "rule_id": id, "event": event(json!({}))})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
}
