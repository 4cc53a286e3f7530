//! `POST /api/rules/backtest`: replays recent events of the input streams through a
//! saved or draft rule, with thresholds and cooldowns simulated in memory as the
//! worker applies them. Read-only, and bounded: at most `MAX_SCAN` entries.

use actix_web::{post, web, HttpResponse};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use rules_core::simulate::{Pending, Simulation};
use rules_core::Decision;
use rules_core::{CompiledRule, TraceNode};
use rules_store::streams::{self, StreamEntry};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use uuid::Uuid;

use crate::error::{ApiError, ErrorBody};
use crate::input::{read_entries, read_event};
use crate::state::AppState;

/// Most entries one backtest reads (across all input streams), and the default.
pub const MAX_SCAN: usize = 100_000;
pub const DEFAULT_SCAN: usize = 10_000;
/// Matched events returned with their trace.
const SAMPLES: usize = 10;

/// The request: `{"rule": {...}}` or `{"rule_id": "..."}`, with `livestream_id`,
/// `from`, `to` (RFC 3339; default the last hour) and `limit` (default 10,000, at
/// most 100,000).
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct BacktestRequest {
    #[schema(value_type = Option<Object>)]
    #[serde(default)]
    rule: Option<Value>,
    #[serde(default)]
    rule_id: Option<Uuid>,
    /// Whose events to replay; default the rule's livestream.
    #[serde(default)]
    livestream_id: Option<Uuid>,
    #[serde(default)]
    from: Option<DateTime<Utc>>,
    #[serde(default)]
    to: Option<DateTime<Utc>>,
    #[serde(default)]
    limit: Option<usize>,
    /// Fields this request does not have: refused by name.
    #[serde(flatten)]
    #[schema(ignore)]
    unknown: std::collections::BTreeMap<String, Value>,
}

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Counts {
    pub matched: u64,
    pub would_execute: u64,
    pub suppressed_by_cooldown: u64,
    pub below_threshold: u64,
    pub duplicates: u64,
    /// Matches whose every action would have been skipped as stale, judged as if
    /// each event had been handled live (at its entry's time).
    pub skipped: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BacktestPoint {
    pub bucket_start: DateTime<Utc>,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Sample {
    #[schema(value_type = Object)]
    pub event: Value,
    pub outcome: rules_core::Outcome,
    pub trace: Vec<TraceNode>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BacktestResponse {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Entries read from the input streams.
    pub scanned: u64,
    /// Entries that could not be read as events.
    pub unreadable: u64,
    /// Events of the livestream replayed.
    pub events: u64,
    /// The scan stopped at `limit`: older events in the range were not replayed.
    pub truncated: bool,
    #[serde(flatten)]
    pub counts: Counts,
    /// Per minute for ranges up to 6 hours, else per hour; buckets with no match are omitted.
    pub series: Vec<BacktestPoint>,
    pub samples: Vec<Sample>,
}

/// Backtest a rule on past events.
#[utoipa::path(
    tag = "rules",
    request_body(content = BacktestRequest),
    responses(
        (status = 200, description = "What the rule would have done", body = BacktestResponse),
        (status = 404, description = "No such rule", body = ErrorBody),
        (status = 422, description = "Invalid rule or parameters", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/rules/backtest")]
pub async fn backtest(
    state: web::Data<AppState>,
    body: web::Json<rules_core::Strict>,
) -> Result<HttpResponse, ApiError> {
    let request: BacktestRequest = crate::request::parse(body.into_inner().0)?;
    let unknown = crate::request::unknown_fields(&request.unknown);
    if !unknown.is_empty() {
        return Err(ApiError::Validation(unknown));
    }
    let rule = load_rule(&state, &request).await?;
    let livestream_id = request.livestream_id.unwrap_or(rule.livestream_id());
    let to = request.to.unwrap_or_else(Utc::now);
    let from = request.from.unwrap_or(to - TimeDelta::hours(1));
    if from >= to {
        return Err(ApiError::invalid("from", "must be before `to`"));
    }
    let limit = request.limit.unwrap_or(DEFAULT_SCAN);
    if limit == 0 || limit > MAX_SCAN {
        return Err(ApiError::invalid(
            "limit",
            format!("must be between 1 and {MAX_SCAN}"),
        ));
    }

    let (entries, truncated) = read_entries(&state, from, to, limit).await?;
    let max_event_bytes = state.max_event_bytes;
    let response = crate::offload::cpu(move || {
        replay(
            &rule,
            &entries,
            livestream_id,
            from,
            to,
            truncated,
            max_event_bytes,
        )
    })
    .await?;
    Ok(HttpResponse::Ok().json(response))
}

/// The CPU part of a backtest: the entries replayed through the rule, with
/// cooldowns and thresholds simulated.
fn replay(
    rule: &CompiledRule,
    entries: &[(std::sync::Arc<str>, StreamEntry)],
    livestream_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    truncated: bool,
    max_event_bytes: usize,
) -> BacktestResponse {
    let bucket = if to - from <= TimeDelta::hours(6) {
        TimeDelta::minutes(1)
    } else {
        TimeDelta::hours(1)
    };
    let mut sim = Simulation::new();
    let mut counts = Counts::default();
    let mut series: BTreeMap<DateTime<Utc>, Counts> = BTreeMap::new();
    let mut samples = Vec::new();
    let (mut unreadable, mut events) = (0u64, 0u64);
    let scanned = entries.len() as u64;
    for (stream, entry) in entries {
        let at = entry.id.time().unwrap_or(from);
        let Some(event) = read_event(entry, at, max_event_bytes) else {
            unreadable += 1;
            continue;
        };
        if event.livestream_id != livestream_id {
            continue;
        }
        events += 1;
        if !rule.matches_type(event.event_type()) || !rule.condition_holds(&event) {
            continue;
        }
        // On the worker's clock: the event's time, bounded by its entry's.
        let at_ms = rules_core::clock::event_time_ms(event.occurred_at, at);
        let token = streams::token(stream, entry.id);
        let decision = sim.decide(&Pending {
            rule,
            event: &event,
            token: &token,
            at_ms,
            stale: rule.all_actions_stale(at_ms, at.timestamp_millis()),
        });
        let point = series
            .entry(at.duration_trunc(bucket).unwrap_or(at))
            .or_default();
        let outcome = decision.outcome();
        for c in [&mut counts, point] {
            match decision {
                Decision::Execute => {
                    c.matched += 1;
                    c.would_execute += 1;
                }
                Decision::Suppressed { .. } => {
                    c.matched += 1;
                    c.suppressed_by_cooldown += 1;
                }
                Decision::BelowThreshold { .. } => c.below_threshold += 1,
                Decision::Duplicate => c.duplicates += 1,
                Decision::Skip => {
                    c.matched += 1;
                    c.skipped += 1;
                }
            }
        }
        if samples.len() < SAMPLES {
            samples.push(Sample {
                event: serde_json::to_value(&event).unwrap_or(Value::Null),
                outcome,
                trace: rule.evaluate_traced(&event).trace,
            });
        }
    }
    BacktestResponse {
        from,
        to,
        scanned,
        unreadable,
        events,
        truncated,
        counts,
        series: series
            .into_iter()
            .map(|(bucket_start, counts)| BacktestPoint {
                bucket_start,
                counts,
            })
            .collect(),
        samples,
    }
}

async fn load_rule(state: &AppState, request: &BacktestRequest) -> Result<CompiledRule, ApiError> {
    match (&request.rule, request.rule_id) {
        (Some(rule), None) => crate::draft::compile(rule).map_err(ApiError::Validation),
        (None, Some(id)) => Ok(state.find_rule(id).await?.compile()?),
        _ => Err(ApiError::invalid("rule", "give either `rule` or `rule_id`")),
    }
}
