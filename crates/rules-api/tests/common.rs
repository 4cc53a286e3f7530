//! Shared set-up: the real app over a database of the test's own and real Redis.

#![allow(dead_code)]

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::test;
use rules_api::{app, AppState};
use rules_e2e::TestDb;
use rules_store::Settings;
use serde_json::{json, Value};

/// The app under test, as `test::init_service` gives it (a trait alias, so a helper
/// states one bound).
pub trait App<B>:
    Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>
{
}

impl<S, B> App<B> for S where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>
{
}

pub const KEY: &str = "test-key-0123456789abcdef";
pub const LS: &str = "0e2a9c1b-0000-4000-8000-00000000abcd";

pub struct Api<S> {
    pub db: TestDb,
    pub service: S,
    pub settings: Settings,
}

pub async fn settings_for(db: &TestDb, extra: &[(&str, &str)]) -> Settings {
    let mut vars: Vec<(String, String)> = rules_e2e::RedisUnderTest::shared()
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    vars.extend([
        ("DATABASE_URL".to_string(), db.url.clone()),
        ("RULES_API_KEYS".to_string(), KEY.to_string()),
    ]);
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Settings::load_from(&vars).expect("settings")
}

pub async fn start_with(
    extra: &[(&str, &str)],
) -> Api<
    impl Service<
        actix_http::Request,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    >,
> {
    let db = TestDb::migrated().await.expect("test database");
    let settings = settings_for(&db, extra).await;
    let state = AppState::connect(&settings).await.expect("connect");
    let service = test::init_service(app(state, &settings)).await;
    Api {
        db,
        service,
        settings,
    }
}

pub async fn start() -> Api<
    impl Service<
        actix_http::Request,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    >,
> {
    start_with(&[]).await
}

pub fn auth() -> (&'static str, String) {
    ("Authorization", format!("Bearer {KEY}"))
}

/// An authorized GET of `uri`: its status and JSON body.
pub async fn get<S, B>(service: &S, uri: &str) -> (u16, Value)
where
    S: App<B>,
    B: MessageBody,
{
    let (status, _, body) = send(
        service,
        test::TestRequest::get().uri(uri).insert_header(auth()),
    )
    .await;
    (status, body)
}

/// Sends a request; returns status, headers and the JSON body (Null when empty).
pub async fn send<S, B>(
    service: &S,
    req: test::TestRequest,
) -> (u16, actix_web::http::header::HeaderMap, Value)
where
    S: App<B>,
    B: MessageBody,
{
    // A middleware's error becomes its response, as the server does.
    let (status, headers, bytes) = match test::try_call_service(service, req.to_request()).await {
        Ok(response) => {
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            (status, headers, test::read_body(response).await)
        }
        Err(e) => {
            let response = e.error_response();
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let bytes = actix_web::body::to_bytes(response.into_body())
                .await
                .unwrap_or_default();
            (status, headers, bytes)
        }
    };
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, headers, body)
}

pub fn rule_body(name: &str) -> Value {
    json!({
        "livestream_id": LS,
        "name": name,
        "trigger_config": {
            "event_types": ["donation.received"],
            "condition": {"field": "data.amount", "op": "gte", "value": 10}
        },
        "actions": [{"type": "publish", "stream": "overlay:alerts",
                     "payload": {"text": "{{ event.data.user.name }} donated {{ event.data.amount }}!"}}],
        "cooldown_seconds": 30,
        "cooldown_key": "data.user.id"
    })
}

/// Sends `req` and checks the answer is `status`; its body.
pub async fn send_expecting<S, B>(service: &S, req: test::TestRequest, status: u16) -> Value
where
    S: App<B>,
    B: MessageBody,
{
    let (got, _, body) = send(service, req).await;
    assert_eq!(got, status, "{body}");
    body
}

/// Creates a rule through the API and returns its JSON.
pub async fn create<S, B>(service: &S, body: Value) -> Value
where
    S: App<B>,
    B: MessageBody,
{
    let req = test::TestRequest::post().uri("/api/rules").set_json(body);
    send_expecting(service, req.insert_header(auth()), 201).await
}

/// Deletes a rule through the API (204).
pub async fn delete_rule<S, B>(service: &S, id: impl std::fmt::Display)
where
    S: App<B>,
    B: MessageBody,
{
    let req = test::TestRequest::delete().uri(&format!("/api/rules/{id}"));
    send_expecting(service, req.insert_header(auth()), 204).await;
}

/// A connection to the shared test Redis (a cluster under `make test-cluster`).
pub async fn redis() -> rules_store::redis::Link {
    rules_e2e::RedisUnderTest::shared()
        .conn()
        .await
        .expect("redis")
}

/// The `path` of every problem in an error body, in order.
pub fn error_paths(body: &Value) -> Vec<&str> {
    body["error"]["details"]
        .as_array()
        .map(|details| details.iter().filter_map(|d| d["path"].as_str()).collect())
        .unwrap_or_default()
}
