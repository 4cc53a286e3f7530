//! CRUD of `/api/rules` against a real PostgreSQL: success paths and every error status.

mod common;

use actix_web::test::TestRequest;
use common::*;
use serde_json::{json, Value};

#[actix_web::test]
async fn create_then_read() {
    let api = start().await;
    let (status, headers, body) = send(
        &api.service,
        TestRequest::post()
            .uri("/api/rules")
            .insert_header(auth())
            .set_json(rule_body("Big donation")),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().expect("id").to_owned();
    assert_eq!(
        headers.get("location").and_then(|v| v.to_str().ok()),
        Some(format!("/api/rules/{id}").as_str())
    );
    assert_eq!(
        headers.get("etag").and_then(|v| v.to_str().ok()),
        Some("\"1\"")
    );
    assert_eq!(body["version"], 1);
    assert_eq!(body["enabled"], true);
    assert_eq!(body["description"], Value::Null);
    assert_eq!(body["cooldown_key"], "data.user.id");
    assert_eq!(body["created_at"], body["updated_at"]);

    let (status, _, read) = send(
        &api.service,
        TestRequest::get()
            .uri(&format!("/api/rules/{id}"))
            .insert_header(auth()),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(read, body);
}

#[actix_web::test]
async fn every_api_route_needs_a_key() {
    let api = start().await;
    let created = create(&api.service, rule_body("r")).await;
    let id = created["id"].as_str().expect("id");
    let routes: Vec<(&str, String)> = vec![
        ("POST", "/api/rules".into()),
        ("GET", "/api/rules".into()),
        ("GET", format!("/api/rules/{id}")),
        ("PUT", format!("/api/rules/{id}")),
        ("PATCH", format!("/api/rules/{id}")),
        ("DELETE", format!("/api/rules/{id}")),
        ("GET", format!("/api/rules/{id}/executions")),
        ("GET", format!("/api/rules/{id}/analytics")),
        ("POST", "/api/rules/test".into()),
        ("POST", "/api/rules/backtest".into()),
        ("GET", format!("/api/rules/{id}/cooldowns")),
        ("DELETE", format!("/api/rules/{id}/cooldowns")),
    ];
    for (method, uri) in &routes {
        for header in [
            None,
            Some("Bearer wrong-key-0123456789"),
            Some("Basic dGVzdA=="),
            Some(KEY),
        ] {
            let mut req = TestRequest::default()
                .method(method.parse().expect("method"))
                .uri(uri);
            if let Some(h) = header {
                req = req.insert_header(("Authorization", h));
            }
            let (status, headers, body) = send(&api.service, req.set_json(json!({}))).await;
            assert_eq!(status, 401, "{method} {uri} with {header:?}: {body}");
            assert_eq!(body["error"]["code"], "unauthorized");
            assert_eq!(
                headers
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok()),
                Some("Bearer")
            );
        }
    }
    // The rule is untouched.
    let (status, _, _) = send(
        &api.service,
        TestRequest::get()
            .uri(&format!("/api/rules/{id}"))
            .insert_header(auth()),
    )
    .await;
    assert_eq!(status, 200);
    // Probes, metrics and the API description are open.
    for uri in ["/health/live", "/health/ready", "/metrics", "/openapi.json"] {
        let (status, _, _) = send(&api.service, TestRequest::get().uri(uri)).await;
        assert_eq!(status, 200, "{uri}");
    }
}

#[actix_web::test]
async fn validation_lists_every_problem() {
    let api = start().await;
    let mut body = rule_body("r");
    body["name"] = json!("");
    body["trigger_config"]["condition"]["value"] = json!("ten");
    body["actions"][0]["type"] = json!("email");
    let (status, _, err) = send(
        &api.service,
        TestRequest::post()
            .uri("/api/rules")
            .insert_header(auth())
            .set_json(body),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(err["error"]["code"], "validation_failed");
    let paths = error_paths(&err);
    assert_eq!(
        paths,
        vec!["name", "trigger_config.condition.value", "actions[0].type"]
    );
    assert_eq!(err["error"]["details"][1]["message"], "gte needs a number");
}

#[actix_web::test]
async fn malformed_bodies_are_400_413_415() {
    let api = start_with(&[("RULES__API__BODY_LIMIT_BYTES", "2048")]).await;
    let (status, _, err) = send(
        &api.service,
        TestRequest::post()
            .uri("/api/rules")
            .insert_header(auth())
            .insert_header(("content-type", "application/json"))
            .set_payload("{\"name\": "),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"]["code"], "malformed_json");
    let (status, _, err) = send(
        &api.service,
        TestRequest::post()
            .uri("/api/rules")
            .insert_header(auth())
            .insert_header(("content-type", "text/plain"))
            .set_payload("{}"),
    )
    .await;
    assert_eq!(status, 415, "{err}");
    let big = json!({"name": "x".repeat(4096)});
    let (status, _, err) = send(
        &api.service,
        TestRequest::post()
            .uri("/api/rules")
            .insert_header(auth())
            .set_json(big),
    )
    .await;
    assert_eq!(status, 413, "{err}");
    assert_eq!(err["error"]["code"], "payload_too_large");
    let (status, _, err) = send(
        &api.service,
        TestRequest::post()
            .uri("/api/rules")
            .insert_header(auth())
            .set_json(json!([1])),
    )
    .await;
    assert_eq!(status, 422, "{err}");
}

#[actix_web::test]
async fn unknown_ids_and_routes_are_404() {
    let api = start().await;
    for uri in [
        "/api/rules/6f1c2d3e-0000-4000-8000-000000000099",
        "/api/rules/not-a-uuid",
        "/api/nothing-here",
        "/nowhere",
    ] {
        let (status, _, err) = send(
            &api.service,
            TestRequest::get().uri(uri).insert_header(auth()),
        )
        .await;
        assert_eq!(status, 404, "{uri}: {err}");
        assert_eq!(err["error"]["code"], "not_found");
    }
    let missing = "/api/rules/6f1c2d3e-0000-4000-8000-000000000099";
    let (status, _, _) = send(
        &api.service,
        TestRequest::delete().uri(missing).insert_header(auth()),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _, _) = send(
        &api.service,
        TestRequest::put()
            .uri(missing)
            .insert_header(auth())
            .set_json(rule_body("x")),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _, _) = send(
        &api.service,
        TestRequest::patch()
            .uri(missing)
            .insert_header(auth())
            .set_json(json!({"enabled": false})),
    )
    .await;
    assert_eq!(status, 404);
    for uri in [
        format!("{missing}/executions"),
        format!("{missing}/analytics"),
    ] {
        let (status, _, _) = send(
            &api.service,
            TestRequest::get().uri(&uri).insert_header(auth()),
        )
        .await;
        assert_eq!(status, 404, "{uri}");
    }
}

#[actix_web::test]
async fn put_replaces_and_bumps_version_with_optimistic_concurrency() {
    let api = start().await;
    let created = create(&api.service, rule_body("v1")).await;
    let uri = format!("/api/rules/{}", created["id"].as_str().expect("id"));

    let mut next = rule_body("v2");
    next["enabled"] = json!(false);
    let (status, headers, body) = send(
        &api.service,
        TestRequest::put()
            .uri(&uri)
            .insert_header(auth())
            .insert_header(("If-Match", "\"1\""))
            .set_json(&next),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["version"].as_i64(),
            body["name"].as_str(),
            body["enabled"].as_bool()
        ),
        (Some(2), Some("v2"), Some(false))
    );
    assert_eq!(
        headers.get("etag").and_then(|v| v.to_str().ok()),
        Some("\"2\"")
    );
    assert_eq!(body["created_at"], created["created_at"]);
    assert_ne!(body["updated_at"], created["updated_at"]);

    // A stale If-Match is 412; a stale body version is 409; neither changes the rule.
    let (status, _, err) = send(
        &api.service,
        TestRequest::put()
            .uri(&uri)
            .insert_header(auth())
            .insert_header(("If-Match", "\"1\""))
            .set_json(&next),
    )
    .await;
    assert_eq!(status, 412, "{err}");
    assert_eq!(err["error"]["code"], "precondition_failed");
    let mut stale = next.clone();
    stale["version"] = json!(1);
    let (status, _, err) = send(
        &api.service,
        TestRequest::put()
            .uri(&uri)
            .insert_header(auth())
            .set_json(&stale),
    )
    .await;
    assert_eq!(status, 409, "{err}");
    assert_eq!(err["error"]["code"], "version_conflict");
    // The current version in the body, W/ etags and `*` are accepted.
    stale["version"] = json!(2);
    let (status, _, body) = send(
        &api.service,
        TestRequest::put()
            .uri(&uri)
            .insert_header(auth())
            .set_json(&stale),
    )
    .await;
    assert_eq!((status, body["version"].as_i64()), (200, Some(3)));
    let (status, _, body) = send(
        &api.service,
        TestRequest::put()
            .uri(&uri)
            .insert_header(auth())
            .insert_header(("If-Match", "W/\"3\""))
            .set_json(&next),
    )
    .await;
    assert_eq!((status, body["version"].as_i64()), (200, Some(4)));
    let (status, _, body) = send(
        &api.service,
        TestRequest::put()
            .uri(&uri)
            .insert_header(auth())
            .insert_header(("If-Match", "*"))
            .set_json(&next),
    )
    .await;
    assert_eq!((status, body["version"].as_i64()), (200, Some(5)));
    // A list (RFC 9110) matches when any of its tags is current, and only then.
    let (status, _, body) = send(
        &api.service,
        TestRequest::put()
            .uri(&uri)
            .insert_header(auth())
            .insert_header(("If-Match", "\"2\", W/\"5\""))
            .set_json(&next),
    )
    .await;
    assert_eq!((status, body["version"].as_i64()), (200, Some(6)), "{body}");
    let (status, _, _) = send(
        &api.service,
        TestRequest::put()
            .uri(&uri)
            .insert_header(auth())
            .insert_header(("If-Match", "\"2\", \"3\""))
            .set_json(&next),
    )
    .await;
    assert_eq!(status, 412);
    // An invalid replacement is 422 and changes nothing.
    let (status, _, _) = send(
        &api.service,
        TestRequest::put()
            .uri(&uri)
            .insert_header(auth())
            .set_json(json!({"name": "x"})),
    )
    .await;
    assert_eq!(status, 422);
    let (_, _, body) = send(
        &api.service,
        TestRequest::get().uri(&uri).insert_header(auth()),
    )
    .await;
    assert_eq!(
        body["version"], 6,
        "the refused list and the invalid body changed nothing"
    );
}

#[actix_web::test]
async fn concurrent_writers_with_the_same_version_one_wins() {
    let api = start().await;
    let created = create(&api.service, rule_body("v1")).await;
    let uri = format!("/api/rules/{}", created["id"].as_str().expect("id"));
    let requests = (0..6).map(|i| {
        let mut body = rule_body(&format!("writer {i}"));
        body["version"] = json!(1);
        send(
            &api.service,
            TestRequest::put()
                .uri(&uri)
                .insert_header(auth())
                .set_json(body),
        )
    });
    let results = futures_util::future::join_all(requests).await;
    let statuses: Vec<u16> = results.iter().map(|(s, _, _)| *s).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        5,
        "{statuses:?}"
    );
    let (_, _, body) = send(
        &api.service,
        TestRequest::get().uri(&uri).insert_header(auth()),
    )
    .await;
    assert_eq!(body["version"], 2);
}

#[actix_web::test]
async fn patch_is_a_merge_patch_validated_whole() {
    let api = start().await;
    let mut body = rule_body("p");
    body["description"] = json!("to be removed");
    let created = create(&api.service, body).await;
    let uri = format!("/api/rules/{}", created["id"].as_str().expect("id"));

    let (status, _, body) = send(
        &api.service,
        TestRequest::patch().uri(&uri).insert_header(auth()).insert_header(("content-type", "application/merge-patch+json"))
            .set_payload(r#"{"enabled": false, "description": null, "trigger_config": {"condition": {"value": 50}}}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["enabled"], false);
    assert_eq!(body["description"], Value::Null);
    assert_eq!(
        body["trigger_config"]["condition"],
        json!({"field": "data.amount", "op": "gte", "value": 50})
    );
    assert_eq!(
        body["trigger_config"]["event_types"],
        json!(["donation.received"])
    );
    assert_eq!(body["version"], 2);

    // application/json works too; the result is validated as a whole.
    let (status, _, err) = send(
        &api.service,
        TestRequest::patch()
            .uri(&uri)
            .insert_header(auth())
            .set_json(json!({"cooldown_seconds": 999_999_999})),
    )
    .await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["error"]["details"][0]["path"], "cooldown_seconds");
    let (status, _, err) = send(
        &api.service,
        TestRequest::patch()
            .uri(&uri)
            .insert_header(auth())
            .set_json(json!({"actions": null})),
    )
    .await;
    assert_eq!(status, 422, "{err}");
    // JSON Patch (RFC 6902) is another format: 415.
    let (status, _, _) = send(
        &api.service,
        TestRequest::patch()
            .uri(&uri)
            .insert_header(auth())
            .insert_header(("content-type", "application/json-patch+json"))
            .set_payload("[]"),
    )
    .await;
    assert_eq!(status, 415);
    // Version rules as for PUT.
    let (status, _, _) = send(
        &api.service,
        TestRequest::patch()
            .uri(&uri)
            .insert_header(auth())
            .insert_header(("If-Match", "\"1\""))
            .set_json(json!({"enabled": true})),
    )
    .await;
    assert_eq!(status, 412);
    let (status, _, _) = send(
        &api.service,
        TestRequest::patch()
            .uri(&uri)
            .insert_header(auth())
            .set_json(json!({"enabled": true, "version": 1})),
    )
    .await;
    assert_eq!(status, 409);
    let (status, _, body) = send(
        &api.service,
        TestRequest::patch()
            .uri(&uri)
            .insert_header(auth())
            .set_json(json!({"enabled": true, "version": 2})),
    )
    .await;
    assert_eq!(
        (status, body["enabled"].as_bool(), body["version"].as_i64()),
        (200, Some(true), Some(3))
    );
}

#[actix_web::test]
async fn delete_is_204_then_404() {
    let api = start().await;
    let created = create(&api.service, rule_body("d")).await;
    let uri = format!("/api/rules/{}", created["id"].as_str().expect("id"));
    let (status, _, body) = send(
        &api.service,
        TestRequest::delete().uri(&uri).insert_header(auth()),
    )
    .await;
    assert_eq!((status, body), (204, Value::Null));
    let (status, _, _) = send(
        &api.service,
        TestRequest::get().uri(&uri).insert_header(auth()),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _, _) = send(
        &api.service,
        TestRequest::delete().uri(&uri).insert_header(auth()),
    )
    .await;
    assert_eq!(status, 404);
}
