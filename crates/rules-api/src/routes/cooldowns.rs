//! `/api/rules/{id}/cooldowns`: which cooldowns are running, and clearing them
//! without a restart (the worker reads the same Redis keys, so it honours a clear
//! at once).

use actix_web::{delete, get, web, HttpResponse};
use rules_store::cooldowns::{self, Clear};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Cooldown {
    /// The `cooldown_key` value, as it was in the event (a string, a number, ...);
    /// null for a rule-wide cooldown and for events that lacked the key field.
    #[schema(value_type = Option<Object>)]
    pub key: Option<serde_json::Value>,
    /// The cooldown's scope as stored (`_` rule-wide, `v:<text>`, `j:<json>`,
    /// `missing`, `h:<sha1>` for long values): `DELETE …?scope=` clears exactly it.
    pub scope: String,
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
    /// Clear only the cooldowns of this key value (the text of a string, or the
    /// JSON of a number: `42` clears both `"42"` and `42`).
    pub key: Option<String>,
    /// Clear only the cooldown of this scope, as listed.
    pub scope: Option<String>,
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
    let rule = state.find_rule(id).await?;
    let cooldown_seconds = u32::try_from(rule.cooldown_seconds).unwrap_or(0);
    let mut conn = state.redis().await?;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let active = cooldowns::list(&mut conn, id, cooldown_seconds, now_ms).await?;
    Ok(HttpResponse::Ok().json(CooldownList {
        rule_id: id,
        cooldowns: active
            .into_iter()
            .map(|c| Cooldown {
                key: c.key,
                scope: c.scope,
                seconds_remaining: c.remaining_ms as f64 / 1000.0,
                started_by_event_id: c.started_by_event_id,
            })
            .collect(),
    }))
}

/// Clear the rule's cooldowns (`?key=` for one key value, `?scope=` for one listed
/// scope); the next match executes.
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
    state.find_rule(id).await?;
    let what = match (&query.key, &query.scope) {
        (None, None) => Clear::All,
        (Some(key), None) => Clear::Key(key),
        (None, Some(scope)) => Clear::Scope(scope),
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "bad_query",
                "give `key` or `scope`, not both",
            ))
        }
    };
    let mut conn = state.redis().await?;
    let cleared = cooldowns::clear(&mut conn, id, what).await?;
    tracing::info!(rule_id = %id, key = ?query.key, scope = ?query.scope, cleared, "cooldowns cleared");
    Ok(HttpResponse::NoContent().finish())
}
