//! `GET /api/rules`: filters, limits and keyset pagination under concurrent inserts.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::HashSet;

async fn page<S, B>(service: &S, query: &str) -> (u16, Value)
where
    S: App<B>,
    B: actix_web::body::MessageBody,
{
    get(service, &format!("/api/rules?{query}")).await
}

fn ids(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect()
}

#[actix_web::test]
async fn filters() {
    let api = start().await;
    let other_ls = "11111111-0000-4000-8000-000000000000";
    let donation = create(&api.service, rule_body("donation")).await;
    let mut follow = rule_body("follow");
    follow["trigger_config"] = json!({"event_types": ["follow"]});
    let follow = create(&api.service, follow).await;
    let mut any = rule_body("any");
    any["trigger_config"] = json!({"event_types": ["*"]});
    any["enabled"] = json!(false);
    let any = create(&api.service, any).await;
    let mut elsewhere = rule_body("elsewhere");
    elsewhere["livestream_id"] = json!(other_ls);
    let elsewhere = create(&api.service, elsewhere).await;
    let id = |v: &Value| v["id"].as_str().expect("id").to_owned();

    let (status, body) = page(&api.service, "").await;
    assert_eq!(status, 200);
    assert_eq!(
        ids(&body),
        vec![id(&elsewhere), id(&any), id(&follow), id(&donation)],
        "newest first"
    );
    assert_eq!(body["next_cursor"], Value::Null);
    let (_, body) = page(&api.service, &format!("livestream_id={other_ls}")).await;
    assert_eq!(ids(&body), vec![id(&elsewhere)]);
    let (_, body) = page(&api.service, "enabled=false").await;
    assert_eq!(ids(&body), vec![id(&any)]);
    let (_, body) = page(&api.service, "event_type=follow").await;
    assert_eq!(
        ids(&body),
        vec![id(&any), id(&follow)],
        "`*` rules receive every type"
    );
    let (_, body) = page(
        &api.service,
        &format!("event_type=donation.received&enabled=true&livestream_id={LS}"),
    )
    .await;
    assert_eq!(ids(&body), vec![id(&donation)]);

    for bad in [
        "limit=0",
        "limit=201",
        "limit=x",
        "enabled=maybe",
        "livestream_id=nope",
        "cursor=garbage",
    ] {
        let (status, body) = page(&api.service, bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "bad_query");
    }
}

#[actix_web::test]
async fn pagination_is_stable_under_concurrent_inserts() {
    let api = start().await;
    let mut initial = HashSet::new();
    for i in 0..25 {
        let rule = create(&api.service, rule_body(&format!("r{i}"))).await;
        initial.insert(rule["id"].as_str().expect("id").to_owned());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("limit=7&cursor={c}"),
            None => "limit=7".to_owned(),
        };
        let (status, body) = page(&api.service, &query).await;
        assert_eq!(status, 200, "{body}");
        seen.extend(ids(&body));
        pages += 1;
        // Others keep creating rules while this client pages.
        for j in 0..3 {
            create(&api.service, rule_body(&format!("late {pages}.{j}"))).await;
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 4);
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no rule appears twice");
    assert_eq!(
        unique, initial,
        "every rule that existed at the start, none created later"
    );
}
