//! `POST /api/rules/test`: a dry run of a rule, saved or not (`rule`) or as stored
//! (`rule_id`), against one event. No side effects: nothing is stored, published or
//! called. The evaluation and rendering are pure (and run off the request threads);
//! with `live`, the stored rule and the recorded decisions (PostgreSQL) and the
//! gate's state (Redis) are read, never written, through the worker's own lookup
//! and gate script, on the worker's clock (the event's time, bounded by now).

use actix_web::{post, web, HttpResponse};
use chrono::Utc;
use rules_core::{CompiledRule, Event, FieldError, NotNow, TraceNode};
use serde::Serialize;
use serde_json::{json, Value};

use rules_store::db::{record, rules as rules_db};
use rules_store::gate::{self, Decision, Pair};

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// The request: `{"rule": {...}, "event": {...}}` or `{"rule_id": "...", "event": {...}}`.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct DryRunRequest {
    /// A rule in the API's format; `id` is used when it is a UUID, and `version`
    /// when given (else the stored rule's version, if it is stored).
    // Defaulted so that its absence is reported with the other problems.
    #[schema(value_type = Option<Object>)]
    #[serde(default)]
    rule: Value,
    /// A stored rule, at its stored version (instead of `rule`).
    #[serde(default)]
    rule_id: Option<uuid::Uuid>,
    /// An event envelope (docs/contract.md §1).
    #[schema(value_type = Object, required = true)]
    #[serde(default)]
    event: Value,
    /// Also read the current cooldown and threshold state (never changed) and say
    /// whether the rule would execute now.
    #[serde(default)]
    live: Option<bool>,
    /// Fields this request does not have: refused by name.
    #[serde(flatten)]
    #[schema(ignore)]
    unknown: std::collections::BTreeMap<String, Value>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DryRunResponse {
    /// The event's type is one the rule listens to and the condition holds.
    pub matched: bool,
    pub event_type_matched: bool,
    pub condition_matched: bool,
    /// Every condition node's result, in pre-order.
    pub trace: Vec<TraceNode>,
    /// The threshold that would gate execution, and this event's group.
    #[schema(value_type = Option<Object>)]
    pub threshold: Option<Value>,
    /// The cooldown that would follow execution, and this event's key value.
    #[schema(value_type = Option<Object>)]
    pub cooldown: Option<Value>,
    /// The actions rendered for this event (or the error of one that fails to render).
    #[schema(value_type = Vec<Object>)]
    pub actions: Vec<Value>,
    /// With `"live": true`: the current state in Redis and whether the rule would
    /// execute now, and if not, why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveState>,
}

/// Whether a rule would execute for an event now, read (never changed) from the
/// state the workers keep, through the same gate script they run.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LiveState {
    pub would_execute: bool,
    /// Why not, in order: `livestream_not_matched`, `event_type_not_matched`,
    /// `condition_not_met`, `rule_disabled`, `rule_not_loaded` (not stored, disabled
    /// in the database, or stored at another version), `threshold_not_reached`,
    /// `cooldown_active`, `stale` (every action would be skipped as too old),
    /// `already_processed` (this event was decided for this rule before).
    pub reasons: Vec<NotNow>,
    /// The rule as stored: absent for a draft that was never saved.
    #[schema(value_type = Option<Object>)]
    pub stored: Option<Value>,
    /// Seconds left of the cooldown this event falls in (0 when none runs).
    pub cooldown_remaining_seconds: f64,
    /// Matching events in the threshold window, this one included (null without a threshold).
    pub threshold_progress: Option<i64>,
}

async fn live_state(state: &AppState, prepared: &Prepared) -> Result<LiveState, ApiError> {
    let (rule, event) = (&prepared.rule, &prepared.event);
    let spec = &rule.rule().spec;
    let mut reasons = Vec::new();
    if event.livestream_id != rule.livestream_id() {
        reasons.push(NotNow::LivestreamNotMatched);
    }
    let type_matched = prepared.evaluation.event_type_matched;
    let condition_matched = prepared.evaluation.condition_matched;
    if !type_matched {
        reasons.push(NotNow::EventTypeNotMatched);
    }
    if !condition_matched {
        reasons.push(NotNow::ConditionNotMet);
    }
    if !spec.enabled {
        reasons.push(NotNow::RuleDisabled);
    }
    let (stored, recorded) = {
        let mut conn = state.db().await?;
        let stored = rules_db::find(&mut conn, rule.id()).await?;
        // The worker's day of this event's time is that of its entry's clock; the
        // entry is not known here, so both days it can be are looked up.
        let at_ms = rules_core::clock::event_time_ms(event.occurred_at, Utc::now());
        let days = [
            rules_core::clock::day_of_ms(event.occurred_at.timestamp_millis()),
            rules_core::clock::day_of_ms(at_ms),
        ];
        let keys = days.map(|day| (rule.id(), event.id, day));
        let recorded = record::already_decided(&mut conn, &keys).await?;
        (stored, !recorded.is_empty())
    };
    let loaded = stored.as_ref().is_some_and(|row| {
        row.enabled && (!prepared.version_given || row.version == rule.rule().version)
    });
    if !loaded {
        reasons.push(NotNow::RuleNotLoaded);
    }
    let now = Utc::now();
    let at_ms = rules_core::clock::event_time_ms(event.occurred_at, now);
    let (decision, progress) = if recorded {
        (Decision::Duplicate, 0)
    } else {
        let mut conn = state.redis().await?;
        gate::inspect(
            &mut conn,
            &Pair {
                rule,
                event,
                token: "dry-run",
                at_ms,
                stale: rule.all_actions_stale(at_ms, now.timestamp_millis()),
            },
        )
        .await?
    };
    let mut cooldown_remaining_seconds = 0.0;
    reasons.extend(decision.live_reason());
    if let Decision::Suppressed { remaining_ms } = decision {
        cooldown_remaining_seconds = remaining_ms as f64 / 1000.0;
    }
    Ok(LiveState {
        would_execute: reasons.is_empty(),
        reasons,
        stored: stored.map(|row| json!({"enabled": row.enabled, "version": row.version})),
        cooldown_remaining_seconds,
        threshold_progress: spec.trigger_config.threshold.as_ref().map(|_| progress),
    })
}

/// The CPU part of a dry run: the request checked, the rule compiled, evaluated
/// and rendered.
struct Prepared {
    rule: CompiledRule,
    event: Event,
    live: bool,
    /// The rule came with its `version` (or from `rule_id`, at the stored one).
    version_given: bool,
    evaluation: rules_core::Evaluation,
    threshold: Option<Value>,
    cooldown: Option<Value>,
    actions: Vec<Value>,
}

fn prepare(
    request: DryRunRequest,
    stored: Option<CompiledRule>,
    allow_private_webhooks: bool,
) -> Result<Prepared, ApiError> {
    // Every problem at once: unknown fields, the rule's, the event's.
    let mut errors = crate::request::unknown_fields(&request.unknown);
    let version_given = stored.is_some() || request.rule.get("version").is_some();
    let compiled = match stored {
        Some(rule) => Ok(rule),
        None => crate::draft::compile(&request.rule),
    };
    let rule = match compiled {
        Ok(rule) => {
            // A webhook that can never be called shows here as at save.
            let refused =
                rules_core::address::refused_webhooks(&rule.rule().spec, allow_private_webhooks);
            errors.extend(FieldError::under("rule", refused));
            Some(rule)
        }
        Err(nested) => {
            errors.extend(nested);
            None
        }
    };
    let event = match Some(&request.event).filter(|v| !v.is_null()) {
        None => {
            errors.push(FieldError {
                path: "event".into(),
                message: "is required".into(),
            });
            None
        }
        Some(v) => match Event::from_value(v, Some(Utc::now())) {
            Ok(e) => Some(e),
            Err(e) => {
                let path = match &e {
                    rules_core::EnvelopeError::Missing(f)
                    | rules_core::EnvelopeError::Invalid { field: f, .. } => {
                        format!("event.{f}")
                    }
                    _ => "event".into(),
                };
                errors.push(FieldError {
                    path,
                    message: e.to_string(),
                });
                None
            }
        },
    };
    let live = request.live.unwrap_or(false);
    let (Some(rule), Some(event), true) = (rule, event, errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };

    let evaluation = rule.evaluate_traced(&event);
    let spec = &rule.rule().spec;
    let threshold = spec.trigger_config.threshold.as_ref().map(|t| {
        json!({
            "count": t.count,
            "window_seconds": t.window_seconds,
            "group_by": t.group_by,
            "group": rule.threshold_group(&event).value(),
        })
    });
    let cooldown = (spec.cooldown_seconds > 0).then(|| {
        json!({
            "seconds": spec.cooldown_seconds,
            "key": spec.cooldown_key,
            "key_value": rule.cooldown_scope(&event).value(),
        })
    });
    let actions: Vec<Value> = rule
        .render_actions(&event)
        .into_iter()
        .enumerate()
        .map(|(i, rendered)| match rendered {
            Ok(action) => serde_json::to_value(action).unwrap_or(Value::Null),
            Err(e) => json!({"index": i, "type": spec.actions[i].kind.type_name(), "error": e.to_string()}),
        })
        .collect();
    Ok(Prepared {
        rule,
        event,
        live,
        version_given,
        evaluation,
        threshold,
        cooldown,
        actions,
    })
}

/// Dry-run a rule against an event.
#[utoipa::path(
    tag = "rules",
    request_body(content = DryRunRequest),
    responses(
        (status = 200, description = "Whether it matches, the trace and the rendered actions", body = DryRunResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "`rule_id` names no rule", body = ErrorBody),
        (status = 422, description = "The rule or the event is invalid", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/rules/test")]
pub async fn dry_run(
    state: web::Data<AppState>,
    body: web::Json<rules_core::Strict>,
) -> Result<HttpResponse, ApiError> {
    let request: DryRunRequest = crate::request::parse(body.into_inner().0)?;
    let stored = match request.rule_id {
        // Both given is the request's mistake, told before any lookup.
        Some(_) if !request.rule.is_null() => {
            return Err(ApiError::Validation(vec![FieldError {
                path: "rule".into(),
                message: "give either `rule` or `rule_id`".into(),
            }]))
        }
        Some(id) => Some(state.find_rule(id).await?.compile()?),
        None => None,
    };
    let allow_private = state.allow_private_webhooks;
    let prepared = crate::offload::cpu(move || prepare(request, stored, allow_private)).await??;
    let live = if prepared.live {
        Some(live_state(&state, &prepared).await?)
    } else {
        None
    };
    let evaluation = &prepared.evaluation;
    Ok(HttpResponse::Ok().json(DryRunResponse {
        live,
        matched: evaluation.matched,
        event_type_matched: evaluation.event_type_matched,
        condition_matched: evaluation.condition_matched,
        trace: prepared.evaluation.trace,
        threshold: prepared.threshold,
        cooldown: prepared.cooldown,
        actions: prepared.actions,
    }))
}
