//! `/api/rules/{id}/cooldowns`: which cooldowns are running, and clearing them
//! without a restart (the worker reads the same Redis keys, so it honours a clear
//! at once).

use actix_web::{delete, get, web, HttpResponse};
use rules_store::cooldowns;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Cooldown {
    /// The `cooldown_key` value; null for a rule-wide cooldown (and empty for events
    /// that lacked the key field).
    pub key: Option<String>,
    pub seconds_remaining: f64,
    /// The event whose execution started it.
    pub started_by_event_id: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CooldownList {
    pub rule_id: Uuid,
    pub cooldowns: Vec<Cooldown>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ClearQuery {
    /// Clear only the cooldown of this key value.
    pub key: Option<String>,
}

async fn ensure_rule(state: &AppState, id: Uuid) -> Result<(), ApiError> {
    state.find_rule(id).await.map(|_| ())
}

/// The rule's running cooldowns, longest remaining first.
#[utoipa::path(
    tag = "rules",
    params(("id" = Uuid, Path, description = "Rule id")),
    responses(
        (status = 200, description = "Running cooldowns", body = CooldownList),
        (status = 404, description = "No such rule", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/rules/{id}/cooldowns")]
pub async fn list_cooldowns(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = *id;
    ensure_rule(&state, id).await?;
    let mut conn = state.redis().await?;
    let active = cooldowns::list(&mut conn, id).await?;
    Ok(HttpResponse::Ok().json(CooldownList {
        rule_id: id,
        cooldowns: active
            .into_iter()
            .map(|c| Cooldown {
                key: c.key,
                seconds_remaining: c.remaining_ms as f64 / 1000.0,
                started_by_event_id: c.started_by_event_id,
            })
            .collect(),
    }))
}

/// Clear the rule's cooldowns (`?key=` for one key value); the next match executes.
#[utoipa::path(
    tag = "rules",
    params(("id" = Uuid, Path, description = "Rule id"), ClearQuery),
    responses(
        (status = 204, description = "Cleared"),
        (status = 404, description = "No such rule", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[delete("/rules/{id}/cooldowns")]
pub async fn clear_cooldowns(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<ClearQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = *id;
    ensure_rule(&state, id).await?;
    let mut conn = state.redis().await?;
    let cleared = cooldowns::clear(&mut conn, id, query.key.as_deref()).await?;
    tracing::info!(rule_id = %id, key = ?query.key, cleared, "cooldowns cleared");
    Ok(HttpResponse::NoContent().finish())
}
