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
    let paths: Vec<&str> = body["error"]["details"]
        .as_array()
        .expect("details")
        .iter()
        .filter_map(|d| d["path"].as_str())
        .collect();
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
