//! `/api/rules`: create, list, read, replace, patch, delete.

use actix_web::http::header;
use actix_web::{delete, get, patch, post, put, web, HttpRequest, HttpResponse};
use chrono::{DurationRound, TimeDelta, Utc};
use rules_core::{parse_rule_spec, Rule, RuleSpec};
use rules_store::db::rules::{self as store, ReplaceError, RuleCursor, RuleFilter, RuleRow};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::{ApiError, ErrorBody};
use crate::pagination;
use crate::state::AppState;

/// A page of rules.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RulePage<'a> {
    #[schema(value_type = Vec<Rule>)]
    pub items: Vec<store::RuleView<'a>>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this livestream's rules.
    pub livestream_id: Option<Uuid>,
    /// Only enabled (`true`) or disabled (`false`) rules.
    pub enabled: Option<bool>,
    /// Only rules that receive this event type (listing it, or `"*"`).
    pub event_type: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn rule_response(status: actix_web::http::StatusCode, row: &RuleRow) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::ETAG, format!("\"{}\"", row.version)))
        .json(row.view())
}

/// Validates a body into a spec (off the request threads: regexes compile here),
/// and what this deployment refuses in it (publish targets, webhook IP literals),
/// turning problems into a 422.
async fn validated(state: &AppState, body: &Value) -> Result<RuleSpec, ApiError> {
    let body = body.clone();
    let state = state.clone();
    crate::offload::cpu(move || {
        let spec = parse_rule_spec(&body)?;
        let refused = state.refusals(&spec);
        if !refused.is_empty() {
            return Err(ApiError::Validation(refused));
        }
        Ok(spec)
    })
    .await?
}

fn now() -> chrono::DateTime<Utc> {
    // PostgreSQL keeps microseconds; so do the responses.
    let now = Utc::now();
    now.duration_trunc(TimeDelta::microseconds(1))
        .unwrap_or(now)
}

/// Create a rule.
#[utoipa::path(
    tag = "rules",
    request_body(content = RuleSpec, description = "The rule (docs/contract.md §2); server fields are ignored",
        example = rule_example),
    responses(
        (status = 201, description = "Created; `Location` names it", body = Rule),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 422, description = "Every validation problem, by path", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/rules")]
pub async fn create_rule(
    state: web::Data<AppState>,
    body: web::Json<rules_core::Strict>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner().0;
    let spec = validated(&state, &body).await?;
    let at = now();
    let rule = Rule {
        id: Uuid::now_v7(),
        spec,
        version: 1,
        created_at: at,
        updated_at: at,
    };
    let row = RuleRow::from_rule(&rule);
    let mut conn = state.db().await?;
    store::insert(&mut conn, &row).await?;
    tracing::info!(rule_id = %row.id, livestream_id = %row.livestream_id, "rule created");
    let mut response = rule_response(actix_web::http::StatusCode::CREATED, &row);
    response.headers_mut().insert(
        header::LOCATION,
        header::HeaderValue::from_str(&format!("/api/rules/{}", row.id))
            .map_err(ApiError::internal)?,
    );
    Ok(response)
}

/// List rules, newest first.
#[utoipa::path(
    tag = "rules",
    params(ListQuery),
    responses(
        (status = 200, description = "One page, newest first", body = RulePage),
        (status = 400, description = "Bad parameters", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/rules")]
pub async fn list_rules(
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = pagination::limit(query.limit)?;
    let after = query
        .cursor
        .as_deref()
        .map(pagination::decode)
        .transpose()?
        .map(|(created_at, id)| RuleCursor { created_at, id });
    let filter = RuleFilter {
        livestream_id: query.livestream_id,
        enabled: query.enabled,
        event_type: query.event_type.clone(),
    };
    let mut conn = state.db().await?;
    let rows = store::list(&mut conn, &filter, after, limit + 1).await?;
    let (rows, next_cursor) = pagination::page(rows, limit, |r| (r.created_at, r.id));
    Ok(HttpResponse::Ok().json(RulePage {
        items: rows.iter().map(RuleRow::view).collect(),
        next_cursor,
    }))
}

/// Read one rule.
#[utoipa::path(
    tag = "rules",
    params(("id" = Uuid, Path, description = "Rule id")),
    responses(
        (status = 200, description = "The rule; `ETag` is its version", body = Rule),
        (status = 404, description = "No such rule", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/rules/{id}")]
pub async fn get_rule(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let row = state.find_rule(*id).await?;
    Ok(rule_response(actix_web::http::StatusCode::OK, &row))
}

/// The version a change is based on: `If-Match` (412 on mismatch) or the body's
/// `version` (409 on mismatch); neither means unconditional.
#[derive(Debug, Clone, PartialEq)]
enum Precondition {
    None,
    /// The versions an `If-Match` list names (RFC 9110 allows several), and its text.
    IfMatch(Vec<i32>, String),
    BodyVersion(i32),
}

fn precondition(req: &HttpRequest, body: &Value) -> Result<Precondition, ApiError> {
    if let Some(raw) = req.headers().get(header::IF_MATCH) {
        let text = raw
            .to_str()
            .map_err(|_| ApiError::bad_request("bad_header", "If-Match is not text"))?
            .trim()
            .to_owned();
        if text == "*" {
            return Ok(Precondition::None);
        }
        let versions = text
            .split(',')
            .filter_map(|tag| {
                tag.trim()
                    .trim_start_matches("W/")
                    .trim_matches('"')
                    .parse::<i32>()
                    .ok()
            })
            .collect();
        return Ok(Precondition::IfMatch(versions, text));
    }
    match body.get("version") {
        None | Some(Value::Null) => Ok(Precondition::None),
        Some(v) => v
            .as_i64()
            .and_then(|v| i32::try_from(v).ok())
            .map(Precondition::BodyVersion)
            .ok_or_else(|| {
                ApiError::Validation(vec![rules_core::FieldError {
                    path: "version".into(),
                    message: "must be a whole number".into(),
                }])
            }),
    }
}

/// Checks a precondition against the stored version before any work.
fn check(pre: &Precondition, current: i32) -> Result<(), ApiError> {
    match pre {
        Precondition::IfMatch(versions, _) if versions.contains(&current) => Ok(()),
        Precondition::IfMatch(_, text) => Err(ApiError::PreconditionFailed {
            expected: text.clone(),
            current,
        }),
        Precondition::BodyVersion(v) if *v != current => Err(ApiError::Conflict {
            expected: *v,
            current,
        }),
        _ => Ok(()),
    }
}

/// The rule the OpenAPI document shows as the body of a create and a replace.
fn rule_example() -> Value {
    serde_json::json!({"livestream_id": "0e2a9c1b-0000-4000-8000-00000000abcd", "name": "Big donation alert",
        "trigger_config": {"event_types": ["donation.received"],
            "condition": {"field": "data.amount", "op": "gte", "value": 10}},
        "actions": [{"type": "log", "message": "{{ event.data.user.name }} gave {{ event.data.amount }}"}],
        "cooldown_seconds": 60, "cooldown_key": "data.user.id"})
}

/// Writes `spec` over rule `current` if it is still at its version.
async fn store_replacement(
    state: &AppState,
    current: &RuleRow,
    spec: RuleSpec,
    pre: &Precondition,
) -> Result<HttpResponse, ApiError> {
    let (id, based_on) = (current.id, current.version);
    let at = now();
    let row = RuleRow::from_rule(&Rule {
        id,
        spec,
        version: based_on,
        created_at: at,
        updated_at: at,
    });
    let mut conn = state.db().await?;
    match store::replace(&mut conn, &row, Some(based_on)).await? {
        Ok(updated) => {
            tracing::info!(rule_id = %id, version = updated.version, "rule updated");
            if updated.cooldown_seconds > current.cooldown_seconds {
                extend_cooldowns(state, &updated).await;
            }
            Ok(rule_response(actix_web::http::StatusCode::OK, &updated))
        }
        Err(ReplaceError::NotFound) => Err(ApiError::rule_not_found(id)),
        // Someone else changed it between our read and our write.
        Err(ReplaceError::VersionMismatch { current }) => Err(match pre {
            Precondition::IfMatch(_, text) => ApiError::PreconditionFailed {
                expected: text.clone(),
                current,
            },
            _ => ApiError::Conflict {
                expected: based_on,
                current,
            },
        }),
    }
}

/// A raised `cooldown_seconds` applies to running cooldowns too: their Redis keys are
/// kept alive for the new duration. The change is committed already, so a Redis
/// error here is logged, not returned: those cooldowns then end at their old time.
async fn extend_cooldowns(state: &AppState, rule: &RuleRow) {
    let seconds = u32::try_from(rule.cooldown_seconds).unwrap_or(0);
    let now_ms = chrono::Utc::now().timestamp_millis();
    let extended = match state.redis().await {
        Ok(mut conn) => rules_store::cooldowns::retime(&mut conn, rule.id, seconds, now_ms)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match extended {
        Ok(n) => tracing::info!(rule_id = %rule.id, extended = n, "running cooldowns extended"),
        Err(error) => {
            tracing::warn!(rule_id = %rule.id, %error, "running cooldowns could not be extended")
        }
    }
}

/// Replace a rule; bumps `version`.
#[utoipa::path(
    tag = "rules",
    params(
        ("id" = Uuid, Path, description = "Rule id"),
        ("If-Match" = Option<String>, Header, description = "The version the change is based on, e.g. `\"3\"`"),
    ),
    request_body(content = RuleSpec, description = "The whole rule; `version` in the body also guards the change",
        example = rule_example),
    responses(
        (status = 200, description = "Replaced", body = Rule),
        (status = 404, description = "No such rule", body = ErrorBody),
        (status = 409, description = "Body `version` is not the current one", body = ErrorBody),
        (status = 412, description = "`If-Match` is not the current version", body = ErrorBody),
        (status = 422, description = "Every validation problem, by path", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[put("/rules/{id}")]
pub async fn replace_rule(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: web::Json<rules_core::Strict>,
) -> Result<HttpResponse, ApiError> {
    let id = *id;
    let body = body.into_inner().0;
    let pre = precondition(&req, &body)?;
    let spec = validated(&state, &body).await?;
    let current = state.find_rule(id).await?;
    check(&pre, current.version)?;
    store_replacement(&state, &current, spec, &pre).await
}

/// Change part of a rule with a JSON Merge Patch (RFC 7396); the result is validated whole.
#[utoipa::path(
    tag = "rules",
    params(
        ("id" = Uuid, Path, description = "Rule id"),
        ("If-Match" = Option<String>, Header, description = "The version the change is based on"),
    ),
    request_body(content = Object, content_type = "application/merge-patch+json",
        description = "e.g. `{\"enabled\": false}`; `null` removes an optional field"),
    responses(
        (status = 200, description = "Patched", body = Rule),
        (status = 404, description = "No such rule", body = ErrorBody),
        (status = 409, description = "Body `version` is not the current one", body = ErrorBody),
        (status = 412, description = "`If-Match` is not the current version", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "The patched rule is invalid", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[patch("/rules/{id}")]
pub async fn patch_rule(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<Uuid>,
    patch: web::Json<rules_core::Strict>,
) -> Result<HttpResponse, ApiError> {
    let id = *id;
    let patch = patch.into_inner().0;
    if !patch.is_object() {
        return Err(ApiError::Validation(vec![rules_core::FieldError {
            path: String::new(),
            message: "a merge patch must be a JSON object".into(),
        }]));
    }
    let pre = precondition(&req, &patch)?;
    let current = state.find_rule(id).await?;
    check(&pre, current.version)?;
    let mut merged = current.spec_json();
    json_patch::merge(&mut merged, &patch);
    let spec = validated(&state, &merged).await?;
    store_replacement(&state, &current, spec, &pre).await
}

/// Delete a rule. Its executions and counters are kept.
#[utoipa::path(
    tag = "rules",
    params(("id" = Uuid, Path, description = "Rule id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such rule", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[delete("/rules/{id}")]
pub async fn delete_rule(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db().await?;
    if store::delete(&mut conn, *id).await? {
        tracing::info!(rule_id = %id, "rule deleted");
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::rule_not_found(*id))
    }
}
