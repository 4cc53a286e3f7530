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
    let paths = error_paths(&body);
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

#[actix_web::test]
async fn a_dry_run_of_an_amplifying_rule_answers_a_bounded_body() {
    let api = start().await;
    // Ten log actions, each a loop printing a 2,000-byte field 2,000 times, well
    // within its fuel: 4 MB per template, 40 MB for the rule.
    let amplifier = "{% for i in range(2000) %}{{ event.data.s }}{% endfor %}";
    let actions: Vec<_> = (0..10)
        .map(|_| json!({"type": "log", "message": amplifier}))
        .collect();
    let body = json!({
        "rule": {"livestream_id": LS, "name": "amp",
                 "trigger_config": {"event_types": ["t"]}, "actions": actions},
        "event": {"id": "6f1c2d3e-0000-4000-8000-000000000001", "type": "t",
                  "livestream_id": LS, "data": {"s": "x".repeat(2_000)}}
    });
    let response = actix_web::test::call_service(
        &api.service,
        TestRequest::post()
            .uri("/api/rules/test")
            .insert_header(auth())
            .set_json(body)
            .to_request(),
    )
    .await;
    assert_eq!(response.status(), 200);
    let bytes = actix_web::test::read_body(response).await;
    assert!(bytes.len() < 8 << 20, "{} bytes", bytes.len());
    let answer: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    let errors = answer["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter(|a| {
            a["error"]
                .as_str()
                .is_some_and(|e| e.contains("rendered over") || e.contains("fuel"))
        })
        .count();
    assert_eq!(errors, 10, "every action stopped: {}", answer["actions"]);
}

#[actix_web::test]
async fn nul_characters_are_a_422_or_a_400_never_a_500() {
    let api = start().await;
    let mut rule = rule_body("n");
    rule["name"] = json!("bad\u{0}name");
    rule["cooldown_key"] = json!("data.\u{0}");
    let (status, _, body) = send(
        &api.service,
        TestRequest::post()
            .uri("/api/rules")
            .insert_header(auth())
            .set_json(rule),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let paths = error_paths(&body);
    assert_eq!(paths, ["cooldown_key", "name"], "{body}");
    for uri in ["/api/rules?event_type=%00", "/api/rules?event_type=a%00b"] {
        let (status, _, body) = send(
            &api.service,
            TestRequest::get().uri(uri).insert_header(auth()),
        )
        .await;
        assert_eq!(status, 400, "{uri}: {body}");
        assert_eq!(body["error"]["code"], "invalid_query");
    }
}

#[actix_web::test]
async fn made_up_methods_do_not_grow_the_metrics() {
    let api = start().await;
    for i in 0..50 {
        let method =
            actix_web::http::Method::from_bytes(format!("MADEUP{i}").as_bytes()).expect("a token");
        let _ = send(
            &api.service,
            TestRequest::default().method(method).uri("/api/rules"),
        )
        .await;
    }
    let response = actix_web::test::call_service(
        &api.service,
        TestRequest::get().uri("/metrics").to_request(),
    )
    .await;
    let text = String::from_utf8_lossy(&actix_web::test::read_body(response).await).to_string();
    assert!(!text.contains("MADEUP"), "a made-up method became a label");
    assert!(
        text.contains("method=\"other\""),
        "they are counted as other"
    );
}

#[actix_web::test]
async fn request_bodies_are_parsed_by_the_types_that_document_them() {
    let api = start().await;
    let (status, _, body) = send(
        &api.service,
        TestRequest::post()
            .uri("/api/rules/test")
            .insert_header(auth())
            .set_json(json!({"rule": rule_body("t"), "event": {}, "live": "yes"})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["details"][0]["path"], "live", "{body}");
    let (status, _, body) = send(
        &api.service,
        TestRequest::post()
            .uri("/api/rules/test")
            .insert_header(auth())
            .set_json(json!(["not", "an", "object"])),
    )
    .await;
    assert_eq!(status, 422, "{body}");
}

fn webhooks_to(urls: &[&str]) -> serde_json::Value {
    json!({
        "livestream_id": LS, "name": "w",
        "trigger_config": {"event_types": ["follow"]},
        "actions": urls.iter().map(|u| json!({"type": "webhook", "url": u})).collect::<Vec<_>>()
    })
}

#[actix_web::test]
async fn a_webhook_that_can_never_be_called_is_refused_at_save_and_in_a_dry_run() {
    let api = start().await;
    let rule = webhooks_to(&[
        "https://bot.example.com/hook",
        "http://127.0.0.1:8080/x",
        "http://[::1]/x",
        "http://169.254.169.254/latest",
        "http://[2002:c0a8:101::1]/x",
    ]);
    let (status, _, body) = send(
        &api.service,
        TestRequest::post()
            .uri("/api/rules")
            .insert_header(auth())
            .set_json(&rule),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        error_paths(&body),
        [
            "actions[1].url",
            "actions[2].url",
            "actions[3].url",
            "actions[4].url"
        ],
        "{body}"
    );
    let (status, _, body) = send(
        &api.service,
        TestRequest::post()
            .uri("/api/rules/test")
            .insert_header(auth())
            .set_json(
                json!({"rule": rule, "event": {"id": "6f1c2d3e-0000-4000-8000-000000000001",
                                                     "type": "follow", "livestream_id": LS}}),
            ),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(error_paths(&body)[0], "rule.actions[1].url", "{body}");

    // Where private destinations are allowed, the same rule is saved.
    let open = start_with(&[("RULES__WEBHOOK__ALLOW_PRIVATE", "true")]).await;
    let (status, _, body) = send(
        &open.service,
        TestRequest::post()
            .uri("/api/rules")
            .insert_header(auth())
            .set_json(&rule),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

#[actix_web::test]
async fn unknown_query_parameters_are_a_400_naming_them() {
    let api = start().await;
    let (_, _, created) = send(
        &api.service,
        TestRequest::post()
            .uri("/api/rules")
            .insert_header(auth())
            .set_json(rule_body("q")),
    )
    .await;
    let id = created["id"].as_str().expect("id").to_owned();
    for (uri, name) in [
        ("/api/rules?page=2".to_owned(), "page"),
        (
            format!("/api/rules/{id}/executions?stauts=failed"),
            "stauts",
        ),
        (
            format!("/api/rules/{id}/analytics?bucket=hour&timezone=Europe/Berlin"),
            "timezone",
        ),
        (format!("/api/rules/{id}/cooldowns?keys=u1"), "keys"),
    ] {
        let request = if uri.ends_with("keys=u1") {
            TestRequest::delete()
        } else {
            TestRequest::get()
        };
        let (status, _, body) = send(&api.service, request.uri(&uri).insert_header(auth())).await;
        assert_eq!(status, 400, "{uri}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains(name),
            "{uri}: {body}"
        );
    }
}

#[actix_web::test]
async fn a_known_path_with_another_method_is_a_405_naming_the_methods() {
    use actix_web::http::Method;
    let api = start().await;
    let rule = "/api/rules/6f1c2d3e-0000-4000-8000-000000000001";
    for (method, path, allow) in [
        ("TRACE", rule, "GET, PUT, PATCH, DELETE"),
        ("FROBNICATE", "/api/rules", "GET, POST"),
        ("GET", "/api/rules/test", "POST"),
        ("DELETE", "/health/live", "GET"),
        ("POST", "/metrics", "GET"),
    ] {
        let request = TestRequest::default()
            .method(Method::from_bytes(method.as_bytes()).expect("method"))
            .uri(path)
            .insert_header(auth());
        let (status, headers, body) = send(&api.service, request).await;
        assert_eq!(status, 405, "{method} {path}: {body}");
        assert_eq!(
            headers.get("allow").and_then(|v| v.to_str().ok()),
            Some(allow),
            "{method} {path}"
        );
        assert_eq!(body["error"]["code"], "method_not_allowed");
    }
    let (status, _, _) = send(
        &api.service,
        TestRequest::get()
            .uri("/api/nothing-here")
            .insert_header(auth()),
    )
    .await;
    assert_eq!(status, 404);
}

#[actix_web::test]
async fn bodies_are_json_only_and_keys_distinct_as_in_events() {
    let api = start().await;
    let body = rule_body("typed").to_string();
    for content_type in [
        "application/json-patch+json",
        "application/vnd.api+json",
        "text/plain",
    ] {
        let (status, _, reply) = send(
            &api.service,
            TestRequest::post()
                .uri("/api/rules")
                .insert_header(auth())
                .insert_header(("content-type", content_type))
                .set_payload(body.clone()),
        )
        .await;
        assert_eq!(status, 415, "{content_type}: {reply}");
        assert!(
            reply["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("application/json")),
            "{reply}"
        );
    }
    // A duplicate key, at the top or nested, is refused as the worker refuses it in
    // an event: neither reader picks one of the two.
    let doubled = body.replacen(r#""name":"typed""#, r#""name":"typed","name":"other""#, 1);
    assert_ne!(doubled, body);
    let nested = body.replacen(r#""value":10"#, r#""value":10,"value":1000"#, 1);
    assert_ne!(nested, body);
    for payload in [doubled, nested] {
        let (status, _, reply) = send(
            &api.service,
            TestRequest::post()
                .uri("/api/rules")
                .insert_header(auth())
                .insert_header(("content-type", "application/json"))
                .set_payload(payload),
        )
        .await;
        assert_eq!(status, 400, "{reply}");
        assert_eq!(reply["error"]["code"], "malformed_json");
        assert!(
            reply["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("duplicate key")),
            "{reply}"
        );
    }
}
