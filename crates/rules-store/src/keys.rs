//! The Redis key scheme for cooldowns, thresholds and delivery claims: the one place
//! that names them, used by the worker (which writes) and the API (which reads and
//! clears).
//!
//! Every key starts with `re:{<rule_id>}:`. The braces are a Redis Cluster hash tag:
//! all keys of one rule live in one slot, so the gate script can touch them
//! atomically on a cluster too.
//!
//! | key | type | holds | expires |
//! |---|---|---|---|
//! | `re:{R}:cd:<scope>` | string | id of the event that started the cooldown | with the cooldown |
//! | `re:{R}:cds` | sorted set | active cooldown scopes, score = expiry (ms) | with the last cooldown |
//! | `re:{R}:th:<group>` | sorted set | ids of matching events in the window, score = arrival (ms) | one window after the last arrival |
//! | `re:{R}:thf:<group>` | string | id of the event that last fired the threshold | one window |
//! | `re:{R}:claim:<event_id>` | string | the stream entry responsible for (rule, event) | `worker.dedupe_seconds` |
//! | `re:dest:{H}:cb` | hash | webhook destination H's breaker: `failures`, `open_until` (ms) | ten cool-offs after the last failure |
//! | `re:dest:{H}:probe` | string | the one call probing H after a cool-off | one cool-off |
//! | `re:dest:{H}:rl:<second>` | counter | calls to H in that second | 2 s |
//!
//! A scope or group is `_` for the rule as a whole, `v:<value>` for a key value, and
//! `missing` when the event lacks the key field. Values longer than 128 bytes are
//! replaced by their SHA-1 (hex) so keys stay bounded.

use rules_core::Scope;
use uuid::Uuid;

/// Rule-wide scope (no `cooldown_key` / `group_by`).
pub const WHOLE_RULE: &str = "_";
/// The event does not carry the key field.
pub const MISSING_VALUE: &str = "missing";
const MAX_VALUE_BYTES: usize = 128;

/// The scope of a cooldown or the group of a threshold, from
/// [`rules_core::CompiledRule::cooldown_scope`] / `threshold_group`.
pub fn scope(value: &Scope) -> String {
    match value {
        Scope::WholeRule => WHOLE_RULE.to_owned(),
        Scope::Missing => MISSING_VALUE.to_owned(),
        Scope::Value(v) if v.len() > MAX_VALUE_BYTES => {
            format!("h:{}", sha1_smol::Sha1::from(v.as_bytes()).digest())
        }
        Scope::Value(v) => format!("v:{v}"),
    }
}

/// The key value a scope names, for display (`None` for the whole rule).
pub fn scope_value(scope: &str) -> Option<String> {
    match scope {
        WHOLE_RULE => None,
        MISSING_VALUE => Some(String::new()),
        s => Some(s.strip_prefix("v:").unwrap_or(s).to_owned()),
    }
}

fn prefix(rule_id: Uuid) -> String {
    format!("re:{{{rule_id}}}")
}

pub fn cooldown(rule_id: Uuid, scope: &str) -> String {
    format!("{}:cd:{scope}", prefix(rule_id))
}

pub fn cooldown_index(rule_id: Uuid) -> String {
    format!("{}:cds", prefix(rule_id))
}

pub fn threshold(rule_id: Uuid, group: &str) -> String {
    format!("{}:th:{group}", prefix(rule_id))
}

pub fn threshold_fired(rule_id: Uuid, group: &str) -> String {
    format!("{}:thf:{group}", prefix(rule_id))
}

pub fn claim(rule_id: Uuid, event_id: Uuid) -> String {
    format!("{}:claim:{event_id}", prefix(rule_id))
}

/// Keys of one webhook destination (host[:port]), hash-tagged per destination.
pub fn destination_breaker(host: &str) -> String {
    format!("re:dest:{{{host}}}:cb")
}

pub fn destination_probe(host: &str) -> String {
    format!("re:dest:{{{host}}}:probe")
}

pub fn destination_rate(host: &str, second: i64) -> String {
    format!("re:dest:{{{host}}}:rl:{second}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_the_rule_hash_tag() {
        let r = Uuid::nil();
        for key in [
            cooldown(r, "_"),
            cooldown_index(r),
            threshold(r, "v:u-1"),
            threshold_fired(r, "v:u-1"),
            claim(r, Uuid::nil()),
        ] {
            assert!(
                key.starts_with("re:{00000000-0000-0000-0000-000000000000}:"),
                "{key}"
            );
        }
    }

    #[test]
    fn scopes() {
        assert_eq!(scope(&Scope::WholeRule), "_");
        assert_eq!(scope(&Scope::Missing), "missing");
        assert_eq!(scope(&Scope::Value("u-42".into())), "v:u-42");
        assert_eq!(scope(&Scope::Value("x".repeat(200))).len(), 42);
        assert_eq!(scope_value("v:u-42").as_deref(), Some("u-42"));
        assert_eq!(scope_value("_"), None);
    }
}
