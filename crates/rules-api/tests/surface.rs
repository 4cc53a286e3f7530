//! The API's surface: the OpenAPI document (snapshot), docs page, metrics, CORS, and
//! the change notification workers consume.

mod common;

use actix_web::test::TestRequest;
use common::*;

use serde_json::Value;

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");

#[actix_web::test]
async fn openapi_describes_every_route_and_matches_the_snapshot() {
    let api = start().await;
    let (status, _, doc) = send(&api.service, TestRequest::get().uri("/openapi.json")).await;
    assert_eq!(status, 200);
    // Served in utoipa's field order, `openapi` first (the README's tour shows it).
    let raw = actix_web::test::call_and_read_body(
        &api.service,
        TestRequest::get().uri("/openapi.json").to_request(),
    )
    .await;
    assert!(
        raw.starts_with(br#"{"openapi":"3.1"#),
        "{:?}",
        &raw[..40.min(raw.len())]
    );
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    let expected: &[(&str, &str)] = &[
        ("/api/rules", "post"),
        ("/api/rules", "get"),
        ("/api/rules/{id}", "get"),
        ("/api/rules/{id}", "put"),
        ("/api/rules/{id}", "patch"),
        ("/api/rules/{id}", "delete"),
        ("/api/rules/{id}/executions", "get"),
        ("/api/rules/{id}/analytics", "get"),
        ("/api/rules/test", "post"),
        ("/api/rules/backtest", "post"),
        ("/api/rules/{id}/cooldowns", "get"),
        ("/api/rules/{id}/cooldowns", "delete"),
        ("/health/live", "get"),
        ("/health/ready", "get"),
    ];
    for (path, method) in expected {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is not described"
        );
    }
    assert!(doc["components"]["schemas"]["RuleSpec"].is_object());
    // Every reference resolves (a fuzzer reading the document depends on it).
    let text = doc.to_string();
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap_or_default();
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "#/components/schemas/{name} is referenced but not defined"
        );
    }
    // Every /api operation documents the errors it can give.
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("item") {
            let responses = &operation["responses"];
            if path.starts_with("/api") {
                for status in ["401", "500", "503"] {
                    assert!(responses[status].is_object(), "{method} {path}: {status}");
                }
            }
            if operation["requestBody"].is_object() {
                for status in ["400", "413", "415", "422"] {
                    assert!(responses[status].is_object(), "{method} {path}: {status}");
                }
            }
        }
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // A created rule links to what can be done with it, by operations that exist.
    let operation_ids: Vec<&str> = doc["paths"]
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|item| item.as_object().expect("item").values())
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    let links = doc["paths"]["/api/rules"]["post"]["responses"]["201"]["links"]
        .as_object()
        .expect("the created rule's links");
    assert!(links.len() >= 8, "{links:?}");
    for (name, link) in links {
        let target = link["operationId"].as_str().unwrap_or_default();
        assert!(operation_ids.contains(&target), "{name} links to {target}");
        assert_eq!(link["parameters"]["id"], "$response.body#/id", "{name}");
    }

    let pretty = serde_json::to_string_pretty(&doc).expect("serializes") + "\n";
    if std::env::var("UPDATE_OPENAPI_SNAPSHOT").is_ok() {
        std::fs::write(SNAPSHOT, &pretty).expect("write snapshot");
    }
    let committed = std::fs::read_to_string(SNAPSHOT).unwrap_or_default();
    assert!(
        committed == pretty,
        "/openapi.json changed; if deliberate, run `UPDATE_OPENAPI_SNAPSHOT=1 cargo test -p rules-api --test surface` and commit crates/rules-api/openapi.json"
    );
}

#[actix_web::test]
async fn docs_page_is_served_from_the_binary() {
    let api = start().await;
    let (status, _, body) = send(&api.service, TestRequest::get().uri("/docs/")).await;
    assert_eq!(status, 200);
    assert!(
        body.as_str().is_some_and(|html| html.contains("swagger")),
        "{body}"
    );
}

#[actix_web::test]
async fn metrics_count_requests_by_route_and_status() {
    let api = start().await;
    let id = "6f1c2d3e-0000-4000-8000-000000000042";
    send(
        &api.service,
        TestRequest::get()
            .uri(&format!("/api/rules/{id}"))
            .insert_header(auth()),
    )
    .await;
    send(
        &api.service,
        TestRequest::get().uri("/api/rules").insert_header(auth()),
    )
    .await;
    let (status, _, body) = send(&api.service, TestRequest::get().uri("/metrics")).await;
    assert_eq!(status, 200);
    let text = body.as_str().expect("text");
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/api/rules/{id}",status="404"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/api/rules",status="200"}"#),
        "{text}"
    );
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("db_pool_connections"), "{text}");
    assert!(!text.contains(id), "raw ids never become labels");
}

#[actix_web::test]
async fn cors_allows_the_configured_origin_only() {
    let api = start_with(&[("RULES__API__CORS_ORIGINS", "https://dashboard.example.com")]).await;
    let preflight = |origin: &'static str| {
        TestRequest::default()
            .method(actix_web::http::Method::OPTIONS)
            .uri("/api/rules")
            .insert_header(("Origin", origin))
            .insert_header(("Access-Control-Request-Method", "POST"))
            .insert_header((
                "Access-Control-Request-Headers",
                "authorization, content-type",
            ))
    };
    let (status, headers, _) = send(&api.service, preflight("https://dashboard.example.com")).await;
    assert_eq!(status, 200);
    assert_eq!(
        headers
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("https://dashboard.example.com")
    );
    let (_, headers, _) = send(&api.service, preflight("https://evil.example.com")).await;
    assert!(headers.get("access-control-allow-origin").is_none());
}

#[actix_web::test]
async fn every_rule_change_is_notified_on_commit() {
    use diesel_async::RunQueryDsl;
    use futures_util::StreamExt;
    let api = start().await;
    let mut listener = api.db.conn().await.expect("conn");
    diesel::sql_query("LISTEN rule_changes")
        .execute(&mut listener)
        .await
        .expect("listen");
    let mut notifications = Box::pin(listener.notifications_stream());

    let created = create(&api.service, rule_body("n")).await;
    let id = created["id"].as_str().expect("id").to_owned();
    let uri = format!("/api/rules/{id}");
    send(
        &api.service,
        TestRequest::patch()
            .uri(&uri)
            .insert_header(auth())
            .set_json(serde_json::json!({"enabled": false})),
    )
    .await;
    send(
        &api.service,
        TestRequest::delete().uri(&uri).insert_header(auth()),
    )
    .await;

    let mut seen = Vec::new();
    for _ in 0..3 {
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), notifications.next())
            .await
            .expect("notified within 5 s")
            .expect("stream open")
            .expect("notification");
        assert_eq!(n.channel, rules_store::db::rules::CHANGE_CHANNEL);
        let payload: Value = serde_json::from_str(&n.payload).expect("json payload");
        assert_eq!(payload["id"], id.as_str());
        seen.push((
            payload["op"].as_str().unwrap_or_default().to_owned(),
            payload["version"].as_i64().unwrap_or(0),
        ));
    }
    assert_eq!(
        seen,
        vec![
            ("INSERT".into(), 1),
            ("UPDATE".into(), 2),
            ("DELETE".into(), 2)
        ]
    );
}
