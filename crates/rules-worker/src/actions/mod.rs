//! Running a rule's actions for one event, in order, and describing each outcome
//! for the execution record.

pub mod destination;
pub mod webhook;

use rules_core::{CompiledRule, Event, LogLevel, RenderedActionKind};
use rules_store::db::executions::ExecutionRow;
use rules_store::redis::RedisPool;
use serde::Serialize;
use std::time::{Duration, Instant};
use uuid::Uuid;

use self::webhook::{WebhookClient, WebhookRequest};

/// One action's outcome, as stored in `result.actions`.
#[derive(Debug, Clone, Serialize)]
pub struct ActionResult {
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `succeeded`, `failed` or `skipped`.
    pub status: &'static str,
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
}

impl ActionResult {
    fn new(kind: &'static str, started: Instant) -> Self {
        Self {
            kind,
            status: "succeeded",
            duration_ms: started.elapsed().as_millis() as u64,
            error: None,
            http_status: None,
            attempts: None,
            entry_id: None,
        }
    }

    fn failed(mut self, error: impl Into<String>) -> Self {
        self.status = "failed";
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

/// Runs one rule's actions for one event and builds the execution record.
pub async fn run(executor: &Executor, rule: &CompiledRule, event: &Event) -> ExecutionRow {
    let id = rules_core::execution_id(rule.id(), event.id);
    let executed_at = chrono::Utc::now();
    let outcome = executor.execute(rule, event, id).await;
    let status = if outcome.failed {
        "failed"
    } else {
        "succeeded"
    };
    metrics::counter!("executions_total", "status" => status).increment(1);
    ExecutionRow {
        id,
        rule_id: rule.id(),
        event_id: event.id,
        livestream_id: event.livestream_id,
        executed_at,
        status: status.to_owned(),
        duration_ms: i32::try_from(outcome.duration_ms).unwrap_or(i32::MAX),
        result: serde_json::json!({ "actions": outcome.actions }),
    }
}

#[derive(Clone)]
pub struct Executor {
    pub webhooks: WebhookClient,
    pub redis: RedisPool,
    pub publish_maxlen: u64,
}

impl Executor {
    /// Runs every action in order. A failed action does not stop the next one; an
    /// action whose event is older than its `max_age_seconds` is skipped.
    pub async fn execute(
        &self,
        rule: &CompiledRule,
        event: &Event,
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
                    actions.push(ActionResult::new(kind, action_started).failed(e.to_string()));
                    metrics::counter!("actions_total", "type" => kind, "status" => "failed")
                        .increment(1);
                    continue;
                }
            };
            if let Some(max_age) = rendered.max_age_seconds {
                let age = chrono::Utc::now() - event.occurred_at;
                if age > chrono::TimeDelta::seconds(i64::from(max_age)) {
                    let mut skipped = ActionResult::new(kind, action_started);
                    skipped.status = "skipped";
                    skipped.error = Some("expired".into());
                    actions.push(skipped);
                    metrics::counter!("actions_total", "type" => kind, "status" => "skipped")
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
                    let outcome = self
                        .webhooks
                        .send(&WebhookRequest {
                            url,
                            method: *method,
                            headers,
                            body,
                            timeout: Duration::from_millis(u64::from(*timeout_ms)),
                            execution_id,
                        })
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
                    match self
                        .publish(stream, payload, rule.id(), event.id, execution_id)
                        .await
                    {
                        Ok(entry_id) => {
                            let mut r = ActionResult::new(kind, action_started);
                            r.entry_id = Some(entry_id);
                            r
                        }
                        Err(e) => ActionResult::new(kind, action_started).failed(e),
                    }
                }
                RenderedActionKind::Log { message, level } => {
                    log(*level, message, rule.id(), event.id);
                    ActionResult::new(kind, action_started)
                }
            };
            metrics::counter!("actions_total", "type" => kind, "status" => result.status)
                .increment(1);
            actions.push(result);
        }
        ExecutionOutcome {
            failed: actions.iter().any(|a| a.status == "failed"),
            duration_ms: started.elapsed().as_millis() as u64,
            actions,
        }
    }

    async fn publish(
        &self,
        stream: &str,
        payload: &serde_json::Value,
        rule_id: Uuid,
        event_id: Uuid,
        execution_id: Uuid,
    ) -> Result<String, String> {
        let mut conn = self.redis.get().await.map_err(|e| format!("redis: {e}"))?;
        redis::cmd("XADD")
            .arg(stream)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.publish_maxlen)
            .arg("*")
            .arg("payload")
            .arg(payload.to_string())
            .arg("rule_id")
            .arg(rule_id.to_string())
            .arg("event_id")
            .arg(event_id.to_string())
            .arg("execution_id")
            .arg(execution_id.to_string())
            .query_async(&mut conn)
            .await
            .map_err(|e| format!("XADD {stream}: {e}"))
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
