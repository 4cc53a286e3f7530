//! Liveness and readiness probes.
//!
//! Liveness says the process serves HTTP. Readiness also checks PostgreSQL and Redis
//! and answers 503 naming the failing part, so a load balancer stops sending traffic
//! to a pod that cannot do its work.

use actix_web::{get, web, HttpResponse};
use serde_json::json;

use crate::state::AppState;

/// Liveness.
#[utoipa::path(tag = "health", responses((status = 200, description = "The process serves HTTP")))]
#[get("/health/live")]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Readiness: PostgreSQL and Redis answer.
#[utoipa::path(tag = "health", responses(
    (status = 200, description = "Ready"),
    (status = 503, description = "A dependency is failing; `checks` names it"),
))]
#[get("/health/ready")]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let (ok, body) = rules_store::readiness(&state.db, &state.redis).await;
    if ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
