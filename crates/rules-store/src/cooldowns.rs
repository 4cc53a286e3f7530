//! Reading and clearing a rule's running cooldowns, through the per-rule index the
//! gate keeps (`re:{R}:cds`), so listing never scans the keyspace.

use redis::aio::ConnectionLike;
use rules_core::Scope;
use uuid::Uuid;

use crate::keys;
use crate::redis::RedisError;

/// One running cooldown.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ActiveCooldown {
    /// The `cooldown_key` value it applies to (JSON); `None` for a rule-wide cooldown
    /// and for events that lacked the key field.
    pub key: Option<serde_json::Value>,
    /// The scope as stored: `_` (rule-wide), `v:<text>`, `j:<json>`, `missing` or
    /// `h:<sha1>`; [`clear`] takes it back.
    pub scope: String,
    pub remaining_ms: i64,
    /// The event whose execution started it.
    pub started_by_event_id: String,
}

/// What to clear.
#[derive(Debug, Clone, Copy)]
pub enum Clear<'a> {
    All,
    /// The cooldowns of a key value given as text: the string, and the JSON value it
    /// spells (`42` clears both `"42"` and `42`).
    Key(&'a str),
    /// One scope exactly as listed.
    Scope(&'a str),
}

/// The rule's cooldowns still running at `now_ms`, measured with its current
/// `cooldown_seconds`, longest remaining first.
pub async fn list<C: ConnectionLike + Send>(
    conn: &mut C,
    rule_id: Uuid,
    cooldown_seconds: u32,
    now_ms: i64,
) -> Result<Vec<ActiveCooldown>, RedisError> {
    let scopes: Vec<String> = redis::cmd("ZRANGE")
        .arg(keys::cooldown_index(rule_id))
        .arg(0)
        .arg(-1)
        .query_async(conn)
        .await?;
    if scopes.is_empty() || cooldown_seconds == 0 {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for scope in &scopes {
        pipe.cmd("HMGET")
            .arg(keys::cooldown(rule_id, scope))
            .arg("s")
            .arg("h")
            .arg("k");
    }
    let replies: Vec<(Option<i64>, Option<String>, Option<String>)> =
        pipe.query_async(conn).await?;
    let cooldown_ms = i64::from(cooldown_seconds) * 1000;
    let mut active: Vec<ActiveCooldown> = scopes
        .into_iter()
        .zip(replies)
        .filter_map(|(scope, (start, holder, key))| {
            let remaining_ms = start? + cooldown_ms - now_ms;
            (remaining_ms > 0).then(|| ActiveCooldown {
                key: key.and_then(|k| serde_json::from_str(&k).ok()),
                scope,
                remaining_ms,
                started_by_event_id: holder.unwrap_or_default(),
            })
        })
        .collect();
    active.sort_by_key(|c| std::cmp::Reverse(c.remaining_ms));
    Ok(active)
}

/// Clears the rule's cooldowns; returns how many there were. Workers read the same
/// keys, so the next match executes.
pub async fn clear<C: ConnectionLike + Send>(
    conn: &mut C,
    rule_id: Uuid,
    what: Clear<'_>,
) -> Result<usize, RedisError> {
    let scopes: Vec<String> = match what {
        Clear::Key(text) => Scope::named_by(text).iter().map(keys::scope).collect(),
        Clear::Scope(scope) => vec![scope.to_owned()],
        Clear::All => {
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
    match what {
        Clear::All => {
            pipe.cmd("DEL").arg(keys::cooldown_index(rule_id)).ignore();
        }
        Clear::Key(_) | Clear::Scope(_) => {
            pipe.cmd("ZREM")
                .arg(keys::cooldown_index(rule_id))
                .arg(&scopes)
                .ignore();
        }
    }
    let deleted: Vec<i64> = pipe.query_async(conn).await?;
    Ok(deleted.into_iter().filter(|d| *d > 0).count())
}
