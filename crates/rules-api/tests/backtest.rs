//! `POST /api/rules/backtest` over a real input stream.

mod common;

use actix_web::test::TestRequest;
use common::*;
use serde_json::{json, Value};
use uuid::Uuid;

async fn xadd(
    conn: &mut rules_store::redis::Link,
    stream: &str,
    ms: i64,
    fields: &[(&str, String)],
) {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(stream).arg(format!("{ms}-0"));
    for (k, v) in fields {
        cmd.arg(*k).arg(v);
    }
    let _: String = cmd.query_async(conn).await.expect("xadd");
}

fn donation(user: &str, amount: i64) -> String {
    json!({"id": Uuid::new_v4(), "type": "donation.received", "livestream_id": LS,
           "data": {"amount": amount, "user": {"id": user, "name": user}}})
    .to_string()
}

#[actix_web::test]
async fn replays_with_cooldowns_and_thresholds_simulated() {
    let stream = format!("test:backtest:{}", Uuid::new_v4().simple());
    let api = start_with(&[("RULES__WORKER__STREAMS", stream.as_str())]).await;
    let mut conn = redis().await;
    let t0 = chrono::Utc::now().timestamp_millis() - 30 * 60 * 1000;
    let s = 1000;
    xadd(&mut conn, &stream, t0, &[("event", donation("u1", 50))]).await;
    xadd(
        &mut conn,
        &stream,
        t0 + 5 * s,
        &[("event", donation("u2", 50))],
    )
    .await;
    xadd(
        &mut conn,
        &stream,
        t0 + 10 * s,
        &[("event", donation("u1", 50))],
    )
    .await; // cooling down
    xadd(
        &mut conn,
        &stream,
        t0 + 20 * s,
        &[("event", donation("u1", 5))],
    )
    .await; // condition false
    xadd(
        &mut conn,
        &stream,
        t0 + 70 * s,
        &[("event", donation("u1", 50))],
    )
    .await; // cooled down
    xadd(
        &mut conn,
        &stream,
        t0 + 80 * s,
        &[("event", "{broken".into())],
    )
    .await;
    let other = json!({"id": Uuid::new_v4(), "type": "donation.received",
        "livestream_id": "11111111-0000-4000-8000-000000000000", "data": {"amount": 99}})
    .to_string();
    xadd(&mut conn, &stream, t0 + 90 * s, &[("event", other)]).await;

    let mut rule = rule_body("bt");
    rule["cooldown_seconds"] = json!(30);
    let (status, _, body) = send(
        &api.service,
        TestRequest::post()
            .uri("/api/rules/backtest")
            .insert_header(auth())
            .set_json(json!({"rule": rule})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["scanned"].as_u64(),
            body["unreadable"].as_u64(),
            body["events"].as_u64()
        ),
        (Some(7), Some(1), Some(5))
    );
    assert_eq!(
        (
            body["matched"].as_u64(),
            body["would_execute"].as_u64(),
            body["suppressed_by_cooldown"].as_u64()
        ),
        (Some(4), Some(3), Some(1))
    );
    assert_eq!(body["truncated"], false);
    assert_eq!(body["samples"].as_array().map(Vec::len), Some(4));
    assert_eq!(body["samples"][2]["outcome"], "suppressed_by_cooldown");
    let series_total: u64 = body["series"]
        .as_array()
        .expect("series")
        .iter()
        .filter_map(|p| p["would_execute"].as_u64())
        .sum();
    assert_eq!(series_total, 3);

    // A saved rule by id, with a threshold of two per user, over part of the range.
    let mut saved = rule_body("threshold");
    saved["cooldown_seconds"] = json!(0);
    saved["trigger_config"]["threshold"] =
        json!({"count": 2, "window_seconds": 60, "group_by": "data.user.id"});
    let created = create(&api.service, saved).await;
    let (status, _, body) = send(
        &api.service,
        TestRequest::post()
            .uri("/api/rules/backtest")
            .insert_header(auth())
            .set_json(json!({"rule_id": created["id"], "limit": 100})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // u1 at 0 s and 10 s: the second fires; u2 once; u1 at 70 s starts a new count.
    assert_eq!(
        (
            body["would_execute"].as_u64(),
            body["below_threshold"].as_u64()
        ),
        (Some(1), Some(3)),
        "{body}"
    );

    // Bounded: the newest entries only, flagged as truncated.
    let (_, _, body) = send(
        &api.service,
        TestRequest::post()
            .uri("/api/rules/backtest")
            .insert_header(auth())
            .set_json(json!({"rule": rule, "limit": 3})),
    )
    .await;
    assert_eq!(
        (body["scanned"].as_u64(), body["truncated"].as_bool()),
        (Some(3), Some(true)),
        "{body}"
    );

    for (bad, path) in [
        (json!({"rule": rule, "limit": 0}), "limit"),
        (json!({"rule": rule, "limit": "many"}), "limit"),
        (json!({"rule": rule, "bogus": 1}), "bogus"),
        (json!({"rule": rule, "from": "yesterday"}), "from"),
        (json!({"rule": rule, "limit": 100001}), "limit"),
        (json!({}), "rule"),
        (json!({"rule": {"name": "x"}}), "rule.livestream_id"),
        (
            json!({"rule": rule, "from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}),
            "from",
        ),
    ] {
        let (status, _, body) = send(
            &api.service,
            TestRequest::post()
                .uri("/api/rules/backtest")
                .insert_header(auth())
                .set_json(bad),
        )
        .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"]["details"][0]["path"], path, "{body}");
    }
    let (status, _, _) = send(
        &api.service,
        TestRequest::post()
            .uri("/api/rules/backtest")
            .insert_header(auth())
            .set_json(json!({"rule_id": Uuid::new_v4()})),
    )
    .await;
    assert_eq!(status, 404);
    let _: () = redis::cmd("DEL")
        .arg(&stream)
        .query_async(&mut conn)
        .await
        .expect("del");
    let _: Value = Value::Null;
}

#[actix_web::test]
async fn times_before_1970_are_a_422_and_an_outage_a_503_without_its_cause() {
    let api = start().await;
    let created = create(&api.service, rule_body("old")).await;
    let backtest = |body: serde_json::Value| {
        TestRequest::post()
            .uri("/api/rules/backtest")
            .insert_header(auth())
            .set_json(body)
    };
    let (status, _, body) = send(
        &api.service,
        backtest(json!({"rule_id": created["id"], "from": "1960-01-01T00:00:00Z"})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(error_paths(&body), vec!["from"], "{body}");

    // Redis gone away: a 503 that names the service, never Redis's own words.
    let mut redis = rules_e2e::services::OwnRedis::start().expect("own redis");
    let url = redis.url();
    let away = start_with(&[
        ("RULES__REDIS__URL", url.as_str()),
        // One server, also when the suites' shared Redis is a cluster.
        ("RULES__REDIS__CLUSTER", "false"),
        ("RULES__REDIS__CONNECT_TIMEOUT_MS", "300"),
        ("RULES__REDIS__ACQUIRE_TIMEOUT_MS", "300"),
    ])
    .await;
    redis.kill().expect("kill redis");
    let created = create(&away.service, rule_body("away")).await;
    let (status, _, body) = send(
        &away.service,
        TestRequest::post()
            .uri("/api/rules/backtest")
            .insert_header(auth())
            .set_json(json!({"rule_id": created["id"]})),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or("");
    assert_eq!(message, "Redis is unavailable", "{body}");
}
