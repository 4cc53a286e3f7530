//! `GET /api/events/recent`: the newest readable events of the input streams (of one
//! livestream, when asked), so a person testing a rule can start from a real event.
//! Read-only and bounded: at most `SCAN` entries are read.

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::{ApiError, ErrorBody};
use crate::input::{read_entries, read_event};
use crate::state::AppState;

/// Newest entries read, across all input streams, to find the events asked for.
const SCAN: usize = 1_000;
const MAX_LIMIT: usize = 50;
const DEFAULT_LIMIT: usize = 10;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecentQuery {
    /// Only this livestream's events.
    pub livestream_id: Option<Uuid>,
    /// How many, 1–50 (default 10).
    #[param(minimum = 1, maximum = 50)]
    pub limit: Option<usize>,
}

/// One event as the input stream holds it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecentEvent {
    pub stream: String,
    /// The entry's id in its stream.
    pub entry_id: String,
    /// When Redis added the entry.
    pub added_at: DateTime<Utc>,
    /// The event, as a dry run takes it.
    #[schema(value_type = Object)]
    pub event: Value,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecentEvents {
    /// Newest first.
    pub items: Vec<RecentEvent>,
    /// Entries read (the newest, at most 1,000).
    pub scanned: u64,
}

/// The newest events of the input streams.
#[utoipa::path(
    tag = "events",
    params(RecentQuery),
    responses(
        (status = 200, description = "Newest first", body = RecentEvents),
        (status = 422, description = "Bad parameters", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/events/recent")]
pub async fn recent_events(
    state: web::Data<AppState>,
    query: web::Query<RecentQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::invalid(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let (entries, _) = read_entries(&state, DateTime::UNIX_EPOCH, Utc::now(), SCAN).await?;
    let scanned = entries.len() as u64;
    let items = entries
        .iter()
        .rev()
        .filter_map(|(stream, entry)| {
            let added_at = entry.id.time()?;
            let event = read_event(entry, added_at, state.max_event_bytes)?;
            if query
                .livestream_id
                .is_some_and(|l| l != event.livestream_id)
            {
                return None;
            }
            Some(RecentEvent {
                stream: stream.to_string(),
                entry_id: entry.id.to_string(),
                added_at,
                event: serde_json::to_value(&event).ok()?,
            })
        })
        .take(limit)
        .collect();
    Ok(HttpResponse::Ok().json(RecentEvents { items, scanned }))
}
