//! Reading and clearing a rule's active cooldowns, through the per-rule index the
//! gate keeps (`re:{R}:cds`), so listing never scans the keyspace.

use redis::aio::ConnectionLike;
use uuid::Uuid;

use crate::keys;
use crate::redis::RedisError;

/// One active cooldown.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ActiveCooldown {
    /// The `cooldown_key` value it applies to; `None` for a rule-wide cooldown.
    pub key: Option<String>,
    /// The scope as stored: `_` (rule-wide), `v:<value>`, `missing` or `h:<sha1>`.
    pub scope: String,
    pub remaining_ms: i64,
    /// The event whose execution started it.
    pub started_by_event_id: String,
}

/// The rule's cooldowns still running, longest remaining first.
pub async fn list<C: ConnectionLike + Send>(
    conn: &mut C,
    rule_id: Uuid,
) -> Result<Vec<ActiveCooldown>, RedisError> {
    let scopes: Vec<String> = redis::cmd("ZRANGE")
        .arg(keys::cooldown_index(rule_id))
        .arg(0)
        .arg(-1)
        .query_async(conn)
        .await?;
    if scopes.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for scope in &scopes {
        let key = keys::cooldown(rule_id, scope);
        pipe.cmd("PTTL").arg(&key).cmd("GET").arg(&key);
    }
    let replies: Vec<(i64, Option<String>)> = pipe.query_async(conn).await?;
    let mut active: Vec<ActiveCooldown> = scopes
        .into_iter()
        .zip(replies)
        .filter(|(_, (ttl, holder))| *ttl > 0 && holder.is_some())
        .map(|(scope, (remaining_ms, holder))| ActiveCooldown {
            key: keys::scope_value(&scope),
            scope,
            remaining_ms,
            started_by_event_id: holder.unwrap_or_default(),
        })
        .collect();
    active.sort_by_key(|c| std::cmp::Reverse(c.remaining_ms));
    Ok(active)
}

/// Clears the rule's cooldowns (one key value, or all); returns how many were
/// running. Workers read the same keys, so the next match executes.
pub async fn clear<C: ConnectionLike + Send>(
    conn: &mut C,
    rule_id: Uuid,
    key: Option<&str>,
) -> Result<usize, RedisError> {
    let scopes: Vec<String> = match key {
        Some(value) => vec![keys::scope(&rules_core::Scope::Value(value.to_owned()))],
        None => {
            redis::cmd("ZRANGE")
                .arg(keys::cooldown_index(rule_id))
                .arg(0)
                .arg(-1)
                .query_async(conn)
                .await?
        }
    };
    let mut pipe = redis::pipe();
    for scope in &scopes {
        pipe.cmd("DEL").arg(keys::cooldown(rule_id, scope));
    }
    match key {
        Some(_) => {
            pipe.cmd("ZREM")
                .arg(keys::cooldown_index(rule_id))
                .arg(&scopes)
                .ignore();
        }
        None => {
            pipe.cmd("DEL").arg(keys::cooldown_index(rule_id)).ignore();
        }
    }
    let deleted: Vec<i64> = pipe.query_async(conn).await?;
    Ok(deleted.into_iter().filter(|d| *d > 0).count())
}
