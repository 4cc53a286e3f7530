//! The `rules` table: rows, conversion to and from the validated model, and the
//! queries both binaries use (the worker's loader is the API's reader too).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rules_core::{parse_rule_spec, CompiledRule, Rule, ValidationErrors};
use serde_json::{json, Value};
use uuid::Uuid;

use super::schema::rules;
use super::DbError;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = rules, check_for_backend(diesel::pg::Pg))]
pub struct RuleRow {
    pub id: Uuid,
    pub livestream_id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub trigger_config: Value,
    pub actions: Value,
    pub cooldown_seconds: i32,
    pub cooldown_key: Option<String>,
    pub enabled: bool,
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl RuleRow {
    /// The row that stores a validated rule.
    pub fn from_rule(rule: &Rule) -> Self {
        let spec = &rule.spec;
        Self {
            id: rule.id,
            livestream_id: spec.livestream_id,
            name: spec.name.clone(),
            description: spec.description.clone(),
            trigger_config: serde_json::to_value(&spec.trigger_config).unwrap_or(Value::Null),
            actions: serde_json::to_value(&spec.actions).unwrap_or(Value::Null),
            cooldown_seconds: i32::try_from(spec.cooldown_seconds).unwrap_or(i32::MAX),
            cooldown_key: spec.cooldown_key.as_ref().map(|k| k.as_str().to_owned()),
            enabled: spec.enabled,
            version: rule.version,
            created_at: rule.created_at,
            updated_at: rule.updated_at,
        }
    }

    /// Re-validates a stored row. A row written by the API always passes; one edited
    /// by hand, or stored under older limits, is reported instead of trusted.
    pub fn into_rule(self) -> Result<Rule, ValidationErrors> {
        let body = json!({
            "livestream_id": self.livestream_id,
            "name": self.name,
            "description": self.description,
            "trigger_config": self.trigger_config,
            "actions": self.actions,
            "cooldown_seconds": self.cooldown_seconds,
            "cooldown_key": self.cooldown_key,
            "enabled": self.enabled,
        });
        Ok(Rule {
            id: self.id,
            spec: parse_rule_spec(&body)?,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }

    /// Validates and compiles the row for matching.
    pub fn compile(self) -> Result<CompiledRule, ValidationErrors> {
        CompiledRule::compile(self.into_rule()?)
    }
}

/// Every enabled rule: the worker's start-up load and periodic reconcile.
pub async fn load_enabled(conn: &mut AsyncPgConnection) -> Result<Vec<RuleRow>, DbError> {
    Ok(rules::table
        .filter(rules::enabled.eq(true))
        .select(RuleRow::as_select())
        .load(conn)
        .await?)
}

/// One rule by id.
pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<RuleRow>, DbError> {
    Ok(rules::table
        .find(id)
        .select(RuleRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Stores a new rule.
pub async fn insert(conn: &mut AsyncPgConnection, row: &RuleRow) -> Result<(), DbError> {
    diesel::insert_into(rules::table)
        .values(row)
        .execute(conn)
        .await?;
    Ok(())
}
