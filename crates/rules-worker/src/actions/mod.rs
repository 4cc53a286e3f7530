//! Running a rule's actions for one event, in order, and describing each outcome
//! for the execution record.

pub mod destination;
pub mod webhook;

use rules_core::{CompiledRule, Event, LogLevel, RenderedActionKind, Status};
use rules_store::db::executions::ExecutionRow;
use rules_store::db::raw_json::RawJson;
use rules_store::redis::{RedisError, SharedConnection};
use rules_store::streams::{self, StreamError};
use serde::Serialize;
use std::time::{Duration, Instant};
use uuid::Uuid;

use self::webhook::{WebhookClient, WebhookRequest};

/// One action's outcome, as stored in `result.actions`.
#[derive(Debug, Clone, Serialize)]
pub struct ActionResult {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub status: Status,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// The entry id a `publish` action wrote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_id: Option<String>,
    /// A `publish` attempt failed after it was sent, so an entry may have been
    /// written besides the one named (with the same `execution_id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maybe_written: Option<bool>,
}

impl ActionResult {
    fn new(kind: &'static str, started: Instant) -> Self {
        Self {
            kind,
            status: Status::Succeeded,
            duration_ms: started.elapsed().as_millis() as u64,
            error: None,
            http_status: None,
            attempts: None,
            entry_id: None,
            maybe_written: None,
        }
    }

    fn failed(mut self, error: impl Into<String>) -> Self {
        self.status = Status::Failed;
        self.error = Some(error.into());
        self
    }
}

/// A whole execution's outcome.
#[derive(Debug, Clone)]
pub struct ExecutionOutcome {
    pub failed: bool,
    pub duration_ms: u64,
    pub actions: Vec<ActionResult>,
}

impl ExecutionOutcome {
    /// `failed` when an action failed, `skipped` when every action was skipped as
    /// stale, `succeeded` otherwise.
    pub fn status(&self) -> Status {
        if self.failed {
            Status::Failed
        } else if !self.actions.is_empty()
            && self.actions.iter().all(|a| a.status == Status::Skipped)
        {
            Status::Skipped
        } else {
            Status::Succeeded
        }
    }
}

/// Runs one rule's actions for one event of time `at_ms` (see [`rules_core::clock`])
/// and builds the execution record.
pub async fn run(
    executor: &Executor,
    rule: &CompiledRule,
    event: &Event,
    at_ms: i64,
) -> ExecutionRow {
    let id = rules_core::execution_id(rule.id(), event.id);
    let executed_at = chrono::Utc::now();
    let outcome = executor.execute(rule, event, at_ms, id).await;
    let status = outcome.status();
    metrics::counter!("executions_total", "status" => status.as_str()).increment(1);
    ExecutionRow {
        id,
        rule_id: rule.id(),
        event_id: event.id,
        livestream_id: event.livestream_id,
        executed_at,
        status,
        duration_ms: i32::try_from(outcome.duration_ms).unwrap_or(i32::MAX),
        result: recorded_result(&outcome.actions, None),
        event_day: rules_core::clock::day_of_ms(at_ms),
    }
}

/// An execution's `result`: its actions' outcomes (and the error when none could
/// run), written as JSON text at once.
fn recorded_result(actions: &[ActionResult], error: Option<&str>) -> RawJson {
    #[derive(serde::Serialize)]
    struct Recorded<'a> {
        actions: &'a [ActionResult],
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<&'a str>,
    }
    RawJson::of(&Recorded { actions, error }).unwrap_or_else(|e| {
        // An outcome that does not serialize (it cannot: strings, numbers and
        // options) is still recorded, with why.
        RawJson::from_value(&serde_json::json!({"actions": [], "error": e.to_string()}))
    })
}

/// The record of a pair that failed before any action could run (its gate script
/// failed): `failed`, no actions, the cause.
pub fn failed_before_running(
    rule: &CompiledRule,
    event: &Event,
    event_day: chrono::NaiveDate,
    error: &str,
) -> ExecutionRow {
    metrics::counter!("executions_total", "status" => Status::Failed.as_str()).increment(1);
    ExecutionRow {
        id: rules_core::execution_id(rule.id(), event.id),
        rule_id: rule.id(),
        event_id: event.id,
        livestream_id: event.livestream_id,
        executed_at: chrono::Utc::now(),
        status: Status::Failed,
        duration_ms: 0,
        result: recorded_result(&[], Some(&crate::pipeline::bounded(error))),
        event_day,
    }
}

#[derive(Clone)]
pub struct Executor {
    pub webhooks: WebhookClient,
    /// Publishes share one connection, so a batch's go out together.
    pub publisher: std::sync::Arc<SharedConnection>,
    pub publish_maxlen: u64,
    pub publish_max_attempts: u32,
    pub publish_policy: rules_core::PublishPolicy,
}

impl Executor {
    /// Runs every action in order. A failed action does not stop the next one; an
    /// action whose event (of time `at_ms`) is older than its `max_age_seconds` when
    /// its turn comes is skipped.
    pub async fn execute(
        &self,
        rule: &CompiledRule,
        event: &Event,
        at_ms: i64,
        execution_id: Uuid,
    ) -> ExecutionOutcome {
        let started = Instant::now();
        let mut actions = Vec::new();
        let specs = &rule.rule().spec.actions;
        for (i, rendered) in rule.render_actions(event).into_iter().enumerate() {
            let kind = specs.get(i).map_or("unknown", |a| a.kind.type_name());
            let action_started = Instant::now();
            let rendered = match rendered {
                Ok(r) => r,
                Err(e) => {
                    warn_failed(rule, event, kind, Some(&e.to_string()));
                    actions.push(ActionResult::new(kind, action_started).failed(e.to_string()));
                    metrics::counter!("actions_total", "type" => kind, "status" => Status::Failed.as_str())
                        .increment(1);
                    continue;
                }
            };
            if let Some(max_age) = rendered.max_age_seconds {
                let age_ms = chrono::Utc::now().timestamp_millis() - at_ms;
                if age_ms > i64::from(max_age) * 1000 {
                    let mut skipped = ActionResult::new(kind, action_started);
                    skipped.status = Status::Skipped;
                    skipped.error = Some("expired".into());
                    actions.push(skipped);
                    metrics::counter!("actions_total", "type" => kind, "status" => Status::Skipped.as_str())
                        .increment(1);
                    continue;
                }
            }
            let result = match &rendered.kind {
                RenderedActionKind::Webhook {
                    url,
                    method,
                    headers,
                    body,
                    timeout_ms,
                } => {
                    // Boxed: the HTTP client's future is 8 KB, and held inline it
                    // made every execution's future that size, moved on each spawn
                    // even when the rule only publishes.
                    let outcome = Box::pin(self.webhooks.send(&WebhookRequest {
                        url,
                        method: *method,
                        headers,
                        body,
                        timeout: Duration::from_millis(u64::from(*timeout_ms)),
                        execution_id,
                    }))
                    .await;
                    let mut r = ActionResult::new(kind, action_started);
                    r.http_status = outcome.http_status;
                    r.attempts = Some(outcome.attempts);
                    if outcome.ok {
                        r
                    } else {
                        r.failed(outcome.error.unwrap_or_else(|| "failed".into()))
                    }
                }
                RenderedActionKind::Publish { stream, payload } => {
                    let outcome = self
                        .publish(stream, payload, rule.id(), event.id, execution_id)
                        .await;
                    let mut r = ActionResult::new(kind, action_started);
                    r.attempts = Some(outcome.attempts);
                    r.maybe_written = outcome.maybe_written.then_some(true);
                    match outcome.result {
                        Ok(entry_id) => {
                            r.entry_id = Some(entry_id.to_string());
                            r
                        }
                        Err(e) => r.failed(crate::pipeline::bounded(&e.to_string())),
                    }
                }
                RenderedActionKind::Log { message, level } => {
                    log(*level, message, rule.id(), event.id);
                    ActionResult::new(kind, action_started)
                }
            };
            metrics::counter!("actions_total", "type" => kind, "status" => result.status.as_str())
                .increment(1);
            if result.status == Status::Failed {
                warn_failed(rule, event, kind, result.error.as_deref());
            }
            actions.push(result);
        }
        ExecutionOutcome {
            failed: actions.iter().any(|a| a.status == Status::Failed),
            duration_ms: started.elapsed().as_millis() as u64,
            actions,
        }
    }

    /// XADD to `stream`, retried on transient errors (Redis unreachable, a dropped
    /// connection, a timeout) up to `publish_max_attempts` with the worker's backoff;
    /// other errors (a key of another type, out of memory) fail at once. A dropped
    /// connection or timeout after the command was sent leaves it unknown whether
    /// the entry was written: the outcome says so (`maybe_written`), and a repeat
    /// carries the same `execution_id` for readers to deduplicate on.
    async fn publish(
        &self,
        stream: &str,
        payload: &serde_json::Value,
        rule_id: Uuid,
        event_id: Uuid,
        execution_id: Uuid,
    ) -> PublishOutcome {
        let mut outcome = PublishOutcome {
            result: Err(PublishError::Refused {
                stream: stream.to_owned(),
                why: String::new(),
            }),
            attempts: 0,
            maybe_written: false,
        };
        if let Some(why) = self.publish_policy.refusal(stream) {
            outcome.result = Err(PublishError::Refused {
                stream: stream.to_owned(),
                why,
            });
            return outcome;
        }
        // Written straight into bytes: a `Value`'s `to_string` goes through the
        // formatting machinery a piece at a time (a tenth of a publish's instructions).
        let Ok(payload) = serde_json::to_vec(payload) else {
            // A `Value` always serializes (its keys are strings); this cannot happen.
            outcome.result = Err(PublishError::Refused {
                stream: stream.to_owned(),
                why: "the payload did not serialize to JSON".into(),
            });
            return outcome;
        };
        // The ids by uuid's own encoder, not the formatting machinery.
        let (mut rule_buf, mut event_buf, mut execution_buf) = (
            Uuid::encode_buffer(),
            Uuid::encode_buffer(),
            Uuid::encode_buffer(),
        );
        let rule_id = rule_id.hyphenated().encode_lower(&mut rule_buf);
        let event_id = event_id.hyphenated().encode_lower(&mut event_buf);
        let execution_id = execution_id.hyphenated().encode_lower(&mut execution_buf);
        let fields: [(&[u8], &[u8]); 4] = [
            (b"payload", payload.as_slice()),
            (b"rule_id", rule_id.as_bytes()),
            (b"event_id", event_id.as_bytes()),
            (b"execution_id", execution_id.as_bytes()),
        ];
        let mut delays = rules_store::backoff::delays(PUBLISH_RETRY_MIN, PUBLISH_RETRY_MAX);
        loop {
            outcome.attempts += 1;
            let (error, transient) = match self.publisher.get().await {
                Err(e) => (StreamError::Redis(e), true),
                Ok(mut conn) => {
                    match streams::add(&mut conn, stream, self.publish_maxlen, &fields).await {
                        Ok(id) => {
                            outcome.result = Ok(id);
                            return outcome;
                        }
                        Err(StreamError::Redis(RedisError::Command(e))) => {
                            let sent = e.is_timeout() || e.is_connection_dropped();
                            outcome.maybe_written |= sent;
                            let transient = sent || e.is_io_error() || e.is_connection_refusal();
                            (StreamError::Redis(RedisError::Command(e)), transient)
                        }
                        Err(e) => (e, false),
                    }
                }
            };
            if transient {
                self.publisher.forget();
            }
            if !transient || outcome.attempts >= self.publish_max_attempts {
                outcome.result = Err(PublishError::Failed {
                    stream: stream.to_owned(),
                    cause: error,
                });
                return outcome;
            }
            tokio::time::sleep(delays.next().unwrap_or(PUBLISH_RETRY_MAX)).await;
        }
    }
}

/// The first and longest pause between publish attempts.
const PUBLISH_RETRY_MIN: Duration = Duration::from_millis(100);
const PUBLISH_RETRY_MAX: Duration = Duration::from_secs(2);

/// Why a publish did not write.
#[derive(Debug, thiserror::Error)]
enum PublishError {
    #[error("publish to {stream:?} refused: {why}")]
    Refused { stream: String, why: String },
    /// The last attempt's error, kept whole (shown inline, so not also a source).
    #[error("XADD {stream}: {cause}")]
    Failed { stream: String, cause: StreamError },
}

/// What a publish came to, after its retries.
struct PublishOutcome {
    /// The new entry's id, or the last error.
    result: Result<rules_store::streams::EntryId, PublishError>,
    attempts: u32,
    /// An attempt failed after the command was sent: it may have been written.
    maybe_written: bool,
}

/// Failed actions at warn, a few a second at most (the counters count them all).
fn warn_failed(rule: &CompiledRule, event: &Event, kind: &str, error: Option<&str>) {
    static BUDGET: crate::pipeline::LogBudget = crate::pipeline::LogBudget::new(10);
    if let Some(held_back) = BUDGET.allow() {
        tracing::warn!(
            rule_id = %rule.id(),
            event_id = %event.id,
            action = kind,
            error = error.unwrap_or("failed"),
            similar_lines_held_back = held_back,
            "action failed"
        );
    }
}

fn log(level: LogLevel, message: &str, rule_id: Uuid, event_id: Uuid) {
    let (rule_id, event_id) = (rule_id.to_string(), event_id.to_string());
    match level {
        LogLevel::Trace => tracing::trace!(target: "rule_action", %rule_id, %event_id, "{message}"),
        LogLevel::Debug => tracing::debug!(target: "rule_action", %rule_id, %event_id, "{message}"),
        LogLevel::Info => tracing::info!(target: "rule_action", %rule_id, %event_id, "{message}"),
        LogLevel::Warn => tracing::warn!(target: "rule_action", %rule_id, %event_id, "{message}"),
        LogLevel::Error => tracing::error!(target: "rule_action", %rule_id, %event_id, "{message}"),
    }
}
