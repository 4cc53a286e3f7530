//! The `rules` table: rows, conversion to and from the validated model, and the
//! queries both binaries use (the worker's loader is the API's reader too).

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rules_core::{parse_rule_spec, CompiledRule, Rule, ValidationErrors};
use serde_json::{json, Value};
use uuid::Uuid;

use super::raw_json::RawJson;
use super::schema::rules;
use super::DbError;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = rules, check_for_backend(diesel::pg::Pg))]
pub struct RuleRow {
    pub id: Uuid,
    pub livestream_id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub trigger_config: RawJson,
    pub actions: RawJson,
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
            trigger_config: RawJson::from_value(
                &serde_json::to_value(&spec.trigger_config).unwrap_or(Value::Null),
            ),
            actions: RawJson::from_value(
                &serde_json::to_value(&spec.actions).unwrap_or(Value::Null),
            ),
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
        let body = self.spec_json();
        Ok(Rule {
            id: self.id,
            spec: parse_rule_spec(&body)?,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }

    /// The rule as the API shows it (docs/contract.md §2), straight from the row: the JSON
    /// columns are copied as stored text, not rebuilt.
    pub fn view(&self) -> RuleView<'_> {
        RuleView {
            id: self.id,
            livestream_id: self.livestream_id,
            name: &self.name,
            description: self.description.as_deref(),
            trigger_config: &self.trigger_config,
            actions: &self.actions,
            cooldown_seconds: self.cooldown_seconds,
            cooldown_key: self.cooldown_key.as_deref(),
            enabled: self.enabled,
            version: self.version,
            created_at: rules_core::event::format_time(self.created_at),
            updated_at: rules_core::event::format_time(self.updated_at),
        }
    }

    /// The client-writable part, as JSON: the base a merge patch applies to.
    pub fn spec_json(&self) -> Value {
        json!({
            "livestream_id": self.livestream_id,
            "name": self.name,
            "description": self.description,
            "trigger_config": self.trigger_config.to_value(),
            "actions": self.actions.to_value(),
            "cooldown_seconds": self.cooldown_seconds,
            "cooldown_key": self.cooldown_key,
            "enabled": self.enabled,
        })
    }

    /// Validates and compiles the row for matching.
    pub fn compile(self) -> Result<CompiledRule, ValidationErrors> {
        Ok(CompiledRule::compile(self.into_rule()?))
    }
}

/// A stored rule as the API returns it.
#[derive(Debug, serde::Serialize)]
pub struct RuleView<'a> {
    pub id: Uuid,
    pub livestream_id: Uuid,
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub trigger_config: &'a RawJson,
    pub actions: &'a RawJson,
    pub cooldown_seconds: i32,
    pub cooldown_key: Option<&'a str>,
    pub enabled: bool,
    pub version: i32,
    pub created_at: String,
    pub updated_at: String,
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

/// The NOTIFY channel on which the database announces every rule change (migration 3).
pub const CHANGE_CHANNEL: &str = "rule_changes";

/// Filters of the rule list.
#[derive(Debug, Clone, Default)]
pub struct RuleFilter {
    pub livestream_id: Option<Uuid>,
    pub enabled: Option<bool>,
    /// Rules that receive this event type: those listing it, and `"*"` rules.
    pub event_type: Option<String>,
}

/// A position in the list's order (newest first): the last row of the previous page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleCursor {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

/// One page of rules, newest first (`created_at DESC, id DESC`): a stable order in
/// which rules created while a client pages appear before its first page, never
/// inside the pages it has yet to read.
pub async fn list(
    conn: &mut AsyncPgConnection,
    filter: &RuleFilter,
    after: Option<RuleCursor>,
    limit: i64,
) -> Result<Vec<RuleRow>, DbError> {
    let mut query = rules::table.select(RuleRow::as_select()).into_boxed();
    if let Some(livestream_id) = filter.livestream_id {
        query = query.filter(rules::livestream_id.eq(livestream_id));
    }
    if let Some(enabled) = filter.enabled {
        query = query.filter(rules::enabled.eq(enabled));
    }
    if let Some(event_type) = &filter.event_type {
        let types = || rules::trigger_config.retrieve_as_object("event_types");
        query = query.filter(
            types()
                .contains(json!([event_type]))
                .or(types().contains(json!(["*"]))),
        );
    }
    if let Some(c) = after {
        query = query.filter(
            rules::created_at
                .lt(c.created_at)
                .or(rules::created_at.eq(c.created_at).and(rules::id.lt(c.id))),
        );
    }
    Ok(query
        .order((rules::created_at.desc(), rules::id.desc()))
        .limit(limit)
        .load(conn)
        .await?)
}

/// Why a replace did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplaceError {
    NotFound,
    /// The stored version differs from the one the client based its change on.
    VersionMismatch {
        current: i32,
    },
}

/// Replaces a rule's content, bumping its version, when the stored version is
/// `expected_version` (or unconditionally without one). `row.version`,
/// `created_at` and `updated_at` are ignored: the database assigns them.
pub async fn replace(
    conn: &mut AsyncPgConnection,
    row: &RuleRow,
    expected_version: Option<i32>,
) -> Result<Result<RuleRow, ReplaceError>, DbError> {
    let changes = (
        rules::livestream_id.eq(row.livestream_id),
        rules::name.eq(&row.name),
        rules::description.eq(&row.description),
        rules::trigger_config.eq(&row.trigger_config),
        rules::actions.eq(&row.actions),
        rules::cooldown_seconds.eq(row.cooldown_seconds),
        rules::cooldown_key.eq(&row.cooldown_key),
        rules::enabled.eq(row.enabled),
        rules::version.eq(rules::version + 1),
        rules::updated_at.eq(diesel::dsl::now),
    );
    // Checking the version in the UPDATE's own WHERE makes the check and the write one
    // atomic step: a concurrent writer's row is re-checked by PostgreSQL.
    let target = rules::table.filter(rules::id.eq(row.id));
    let updated = match expected_version {
        Some(v) => diesel::update(target.filter(rules::version.eq(v)))
            .set(changes)
            .returning(RuleRow::as_returning())
            .get_result(conn)
            .await
            .optional()?,
        None => diesel::update(target)
            .set(changes)
            .returning(RuleRow::as_returning())
            .get_result(conn)
            .await
            .optional()?,
    };
    if let Some(updated) = updated {
        return Ok(Ok(updated));
    }
    Ok(Err(match find(conn, row.id).await? {
        None => ReplaceError::NotFound,
        Some(current) => ReplaceError::VersionMismatch {
            current: current.version,
        },
    }))
}

/// Deletes a rule; `false` when there was none. Its executions and counters stay.
pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> Result<bool, DbError> {
    Ok(diesel::delete(rules::table.find(id)).execute(conn).await? > 0)
}

/// Stores many rules, a thousand per statement (imports, the load tool).
pub async fn insert_many(conn: &mut AsyncPgConnection, rows: &[RuleRow]) -> Result<(), DbError> {
    for chunk in rows.chunks(1_000) {
        diesel::insert_into(rules::table)
            .values(chunk)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// One page of enabled rules in id order, after `after`: loading a large rule set
/// page by page keeps the loader's transient memory to one page.
pub async fn load_enabled_page(
    conn: &mut AsyncPgConnection,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<RuleRow>, DbError> {
    let mut query = rules::table
        .filter(rules::enabled.eq(true))
        .select(RuleRow::as_select())
        .order(rules::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(rules::id.gt(after));
    }
    Ok(query.load(conn).await?)
}
