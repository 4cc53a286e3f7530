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

/// Keeps the rule's running cooldowns alive for a longer `cooldown_seconds` (after
/// an edit raised it): each key lives until its start plus the new duration plus the
/// gate's grace, never shorter than it already would. Returns how many it extended.
/// (A lowered duration needs nothing: the gate measures each cooldown with the
/// rule's current one.)
pub async fn retime<C: ConnectionLike + Send>(
    conn: &mut C,
    rule_id: Uuid,
    cooldown_seconds: u32,
    now_ms: i64,
) -> Result<usize, RedisError> {
    let started: Vec<(String, i64)> = redis::cmd("ZRANGE")
        .arg(keys::cooldown_index(rule_id))
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(conn)
        .await?;
    let lasting = i64::from(cooldown_seconds) * 1000 + rules_core::clock::MAX_EVENT_AGE_MS;
    let mut pipe = redis::pipe();
    let mut longest = 0;
    for (scope, start) in &started {
        let ttl = start + lasting - now_ms;
        if ttl > 0 {
            longest = longest.max(ttl);
            pipe.cmd("PEXPIRE")
                .arg(keys::cooldown(rule_id, scope))
                .arg(ttl)
                .arg("GT");
        }
    }
    if longest == 0 {
        return Ok(0);
    }
    pipe.cmd("PEXPIRE")
        .arg(keys::cooldown_index(rule_id))
        .arg(longest)
        .arg("GT")
        .ignore();
    let extended: Vec<i64> = pipe.query_async(conn).await?;
    Ok(extended.into_iter().filter(|e| *e == 1).count())
}
