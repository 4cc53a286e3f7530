//! Liveness and readiness probes.
//!
//! Liveness says the process serves HTTP. Readiness also checks PostgreSQL and Redis
//! and answers 503 naming the failing part, so a load balancer stops sending traffic
//! to a pod that cannot do its work.

use actix_web::{get, web, HttpResponse};
use serde_json::json;

use crate::AppState;

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
    let (db, redis) = tokio::join!(
        rules_store::db::ping(&state.db),
        rules_store::redis::ping(&state.redis)
    );
    let check = |r: &Result<(), String>| match r {
        Ok(()) => json!({"status": "ok"}),
        Err(e) => json!({"status": "failing", "error": e}),
    };
    let db = db.map_err(|e| e.to_string());
    let redis = redis.map_err(|e| e.to_string());
    let ok = db.is_ok() && redis.is_ok();
    if let Err(e) = &db {
        tracing::warn!(error = %e, "readiness: postgres failing");
    }
    if let Err(e) = &redis {
        tracing::warn!(error = %e, "readiness: redis failing");
    }
    let body = json!({
        "status": if ok { "ok" } else { "failing" },
        "checks": {"postgres": check(&db), "redis": check(&redis)},
    });
    if ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
