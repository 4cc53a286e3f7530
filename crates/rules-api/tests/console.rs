//! The console's files as served (`/console`), and `GET /api/events/recent`, which
//! its test panel reads, over a real input stream. The console itself is driven in
//! a real browser by `tests/tests/console.rs`.

mod common;

use actix_web::test::TestRequest;
use common::*;
use serde_json::json;
use uuid::Uuid;

fn header<'a>(headers: &'a actix_web::http::header::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[actix_web::test]
async fn the_console_is_served_from_the_binary_under_a_same_origin_policy() {
    let api = start().await;
    let (status, headers, _) = send(&api.service, TestRequest::get().uri("/console")).await;
    assert_eq!(status, 308);
    assert_eq!(header(&headers, "location"), "/console/");

    // Open like /docs: the page asks for the key itself.
    let (status, headers, body) = send(&api.service, TestRequest::get().uri("/console/")).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), "text/html; charset=utf-8");
    let csp = header(&headers, "content-security-policy");
    assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"));
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(body
        .as_str()
        .expect("the page is text")
        .contains(r#"<script type="module" src="js/main.js">"#));

    let (status, headers, _) = send(
        &api.service,
        TestRequest::get().uri("/console/js/pages/editor.js"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "content-type"),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(header(&headers, "x-content-type-options"), "nosniff");

    for missing in ["/console/js/nothing.js", "/console/../Cargo.toml"] {
        let (status, _, _) = send(&api.service, TestRequest::get().uri(missing)).await;
        assert_eq!(status, 404, "{missing}");
    }
}

#[actix_web::test]
async fn recent_events_are_the_newest_readable_ones_of_a_livestream() {
    let stream = format!("test:recent:{}", Uuid::new_v4().simple());
    let api = start_with(&[("RULES__WORKER__STREAMS", stream.as_str())]).await;
    let mut conn = redis().await;
    let other = "11111111-0000-4000-8000-000000000000";
    let mut ours = Vec::new();
    for i in 0..4 {
        let id = Uuid::new_v4();
        let livestream = if i == 2 { other } else { LS };
        let event = json!({"id": id, "type": "donation.received", "livestream_id": livestream,
                           "data": {"amount": i}});
        let _: String = redis::cmd("XADD")
            .arg(&stream)
            .arg("*")
            .arg("event")
            .arg(event.to_string())
            .query_async(&mut conn)
            .await
            .expect("xadd");
        if livestream == LS {
            ours.push(id);
        }
    }
    let _: String = redis::cmd("XADD")
        .arg(&stream)
        .arg("*")
        .arg("event")
        .arg("{not json")
        .query_async(&mut conn)
        .await
        .expect("xadd");

    let (status, body) = get(
        &api.service,
        &format!("/api/events/recent?livestream_id={LS}&limit=2"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scanned"], 5);
    let items = body["items"].as_array().expect("items");
    let ids: Vec<String> = items
        .iter()
        .map(|i| i["event"]["id"].as_str().expect("an id").to_owned())
        .collect();
    // Newest first, the other livestream's and the unreadable entry left out.
    assert_eq!(ids, [ours[2].to_string(), ours[1].to_string()]);
    assert_eq!(items[0]["stream"], stream.as_str());
    assert_eq!(items[0]["event"]["data"]["amount"], 3);
    assert!(items[0]["entry_id"]
        .as_str()
        .expect("an entry id")
        .contains('-'));

    // The event as a dry run takes it.
    let rule = rule_body("recent");
    let (status, _, dry) = send(
        &api.service,
        TestRequest::post()
            .uri("/api/rules/test")
            .insert_header(auth())
            .set_json(json!({"rule": rule, "event": items[0]["event"]})),
    )
    .await;
    assert_eq!(status, 200, "{dry}");

    let (status, body) = get(&api.service, "/api/events/recent?limit=51").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(error_paths(&body), ["limit"]);
    let (status, _, _) = send(&api.service, TestRequest::get().uri("/api/events/recent")).await;
    assert_eq!(status, 401);

    // The stream is the test's own: gone with it.
    let _: () = redis::cmd("DEL")
        .arg(&stream)
        .query_async(&mut conn)
        .await
        .expect("del");
}
