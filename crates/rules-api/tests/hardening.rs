//! What a hostile rule author or client tries at the API: it is refused with a clear
//! answer, never stored to break the workers later.

mod common;

use actix_web::test::TestRequest;
use common::*;
use serde_json::json;

fn publishing_to(streams: &[&str]) -> serde_json::Value {
    json!({
        "livestream_id": LS, "name": "p",
        "trigger_config": {"event_types": ["donation.received"]},
        "actions": streams.iter().map(|s| json!({"type": "publish", "stream": s})).collect::<Vec<_>>()
    })
}

#[actix_web::test]
async fn publish_targets_are_confined_at_save() {
    let api = start_with(&[
        ("RULES__WORKER__STREAMS", "events,events-2"),
        ("RULES__WORKER__PUBLISH_ALLOWED_PREFIXES", "overlay:,bot:"),
    ])
    .await;
    let (status, _, body) = send(
        &api.service,
        TestRequest::post()
            .uri("/api/rules")
            .insert_header(auth())
            .set_json(publishing_to(&[
                "overlay:alerts",
                "re:{x}:cd:_",
                "events-2",
                "rule-engine:dead-letter",
                "billing:x",
            ])),
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
        [
            "actions[1].stream",
            "actions[2].stream",
            "actions[3].stream",
            "actions[4].stream"
        ],
        "{body}"
    );
    let (status, _, body) = send(
        &api.service,
        TestRequest::post()
            .uri("/api/rules")
            .insert_header(auth())
            .set_json(publishing_to(&["overlay:alerts", "bot:chat"])),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}
