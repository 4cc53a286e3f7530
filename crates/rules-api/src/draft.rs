//! A rule sent in a request body (a dry run's or a backtest's draft), validated and
//! compiled as the workers would: the one place a draft becomes a `CompiledRule`.

use chrono::Utc;
use rules_core::{parse_rule_spec, CompiledRule, FieldError, Rule};
use serde_json::Value;
use uuid::Uuid;

/// Compiles the draft at `rule` (the request's `rule` field). Its `id` and `version`,
/// when a client sends back what it read, are kept (a nil id and version 1
/// otherwise); problems are reported under `rule.`.
pub fn compile(rule: &Value) -> Result<CompiledRule, Vec<FieldError>> {
    let spec = parse_rule_spec(rule).map_err(|e| FieldError::under("rule", e.0))?;
    let id = rule
        .get("id")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
        .unwrap_or_else(Uuid::nil);
    let version = rule
        .get("version")
        .and_then(Value::as_i64)
        .and_then(|v| i32::try_from(v).ok())
        .unwrap_or(1);
    let now = Utc::now();
    Ok(CompiledRule::compile(Rule {
        id,
        spec,
        version,
        created_at: now,
        updated_at: now,
    }))
}
