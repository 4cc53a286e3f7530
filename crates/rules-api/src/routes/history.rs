//! `/api/rules/{id}/executions` and `/api/rules/{id}/analytics`. Both answer for a
//! deleted rule whose history remains; an id with neither rule nor history is 404.

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};
use rules_store::db::executions::{self, ExecutionCursor, ExecutionFilter, ExecutionRow};
use rules_store::db::raw_json::RawJson;
use rules_store::db::{retention, rules as rules_db, stats};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::analytics::{
    aggregate, check_minutes_kept, range, starts, time_zone, Analytics, Bucket,
};
use crate::error::{ApiError, ErrorBody};
use crate::pagination;
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExecutionsQuery {
    /// `succeeded` or `failed`.
    pub status: Option<String>,
    /// Executed at or after (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Executed before (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One execution record (docs/contract.md §3).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Execution {
    pub id: Uuid,
    pub rule_id: Uuid,
    pub event_id: Uuid,
    pub livestream_id: Uuid,
    pub executed_at: DateTime<Utc>,
    /// `succeeded` or `failed`.
    pub status: String,
    pub duration_ms: i32,
    /// `{"actions": [{"type", "status", "duration_ms", "error", ...}]}`
    #[schema(value_type = Object)]
    pub result: RawJson,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExecutionPage {
    pub items: Vec<Execution>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsQuery {
    /// Start (RFC 3339); default `to` minus 24 hours.
    pub from: Option<DateTime<Utc>>,
    /// End (RFC 3339, exclusive); default now.
    pub to: Option<DateTime<Utc>>,
    /// `minute` (for the last `retention.stats_minutes_days` days), `hour` (default) or
    /// `day`.
    pub bucket: Option<Bucket>,
    /// IANA time zone whose hours and midnights buckets start at (default `UTC`),
    /// e.g. `Europe/Berlin`.
    pub tz: Option<String>,
}

/// 404 for an id with neither rule nor history.
///
/// Asked only when the answer is empty: a row of the rule's executions or a count
/// of its counters is history already (what `has_history` looks for), so a page
/// or an analytics answer holding one needs no other round trip.
async fn ensure_known(
    conn: &mut diesel_async::AsyncPgConnection,
    id: Uuid,
) -> Result<(), ApiError> {
    if rules_db::find(conn, id).await?.is_some() || executions::has_history(conn, id).await? {
        Ok(())
    } else {
        Err(ApiError::rule_not_found(id))
    }
}

/// A rule's executions, newest first.
#[utoipa::path(
    tag = "history",
    params(("id" = Uuid, Path, description = "Rule id"), ExecutionsQuery),
    responses(
        (status = 200, description = "One page, newest first", body = ExecutionPage),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 404, description = "No such rule and no history", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/rules/{id}/executions")]
pub async fn list_executions(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<ExecutionsQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = *id;
    let limit = pagination::limit(query.limit)?;
    let status = match query.status.as_deref().map(rules_core::Status::parse) {
        None => None,
        Some(Some(s @ (rules_core::Status::Succeeded | rules_core::Status::Failed))) => Some(s),
        Some(_) => {
            return Err(ApiError::bad_request(
                "bad_query",
                "status must be `succeeded` or `failed`",
            ))
        }
    };
    let after = query
        .cursor
        .as_deref()
        .map(pagination::decode)
        .transpose()?
        .map(|(executed_at, id)| ExecutionCursor { executed_at, id });
    let filter = ExecutionFilter {
        status,
        from: query.from,
        to: query.to,
    };
    let mut conn = state.db().await?;
    let counted_since = retention::counters_complete_since(state.stats_days, Utc::now());
    let rows =
        executions::list_for_rule(&mut conn, id, &filter, after, limit + 1, counted_since).await?;
    if rows.is_empty() {
        ensure_known(&mut conn, id).await?;
    }
    let (rows, next_cursor) = pagination::page(rows, limit, |r| (r.executed_at, r.id));
    Ok(HttpResponse::Ok().json(ExecutionPage {
        items: rows.into_iter().map(execution).collect(),
        next_cursor,
    }))
}

fn execution(row: ExecutionRow) -> Execution {
    Execution {
        id: row.id,
        rule_id: row.rule_id,
        event_id: row.event_id,
        livestream_id: row.livestream_id,
        executed_at: row.executed_at,
        status: row.status.into(),
        duration_ms: row.duration_ms,
        result: row.result,
    }
}

/// A rule's analytics over a range, from its counters: per minute for the last
/// `retention.stats_minutes_days` (minute buckets reach no further back), per quarter
/// hour before.
#[utoipa::path(
    tag = "history",
    params(("id" = Uuid, Path, description = "Rule id"), AnalyticsQuery),
    responses(
        (status = 200, description = "Totals and a series with every bucket present", body = Analytics),
        (status = 400, description = "Bad range or bucket", body = ErrorBody),
        (status = 404, description = "No such rule and no history", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/rules/{id}/analytics")]
pub async fn analytics(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<AnalyticsQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = *id;
    let bucket = query.bucket.unwrap_or(Bucket::Hour);
    let tz = time_zone(query.tz.as_deref())?;
    let now = Utc::now();
    let (from, to) = range(query.from, query.to, now)?;
    check_minutes_kept(from, bucket, now, state.stats_minutes_days)?;
    // Before the database is asked: the range's buckets are within the limit.
    let starts = starts(from, to, bucket, tz)?;
    let mut conn = state.db().await?;
    let sums = match bucket {
        Bucket::Day => stats::sum_by_day(&mut conn, id, (from, to), &starts).await?,
        Bucket::Minute | Bucket::Hour => {
            stats::sum_by_bucket(&mut conn, id, (from, to), &starts).await?
        }
    };
    let answer = aggregate(id, (from, to), bucket, (tz, &starts), &sums)?;
    if answer.counted_nothing() {
        ensure_known(&mut conn, id).await?;
    }
    Ok(HttpResponse::Ok().json(answer))
}
