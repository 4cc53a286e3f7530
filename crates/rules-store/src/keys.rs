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
//! | `re:{R}:cd:<scope>` | hash | `s` start (event time, ms), `h` id of the event that started the cooldown, `k` key value (JSON) | cooldown + 1 h after it started |
//! | `re:{R}:cds` | sorted set | cooldown scopes, score = start (event time, ms) | with the last cooldown |
//! | `re:{R}:th:<gen>:<group>` | sorted set | ids of counted events, score = event time (ms) | window + 1 h after the last count |
//! | `re:{R}:thm:<gen>:<group>` | hash | `r` time of the last firing, `l` newest counted time | window + 1 h after the last count |
//! | `re:{R}:d:<event_id>` | string | the decision for (rule, event): `<entry>\|<code>\|<detail>\|<progress>` | `worker.dedupe_seconds` |
//! | `re:dest:{H}:cb` | hash | webhook destination H's breaker: `failures`, `open_until` (ms) | ten cool-offs after the last failure |
//! | `re:dest:{H}:probe` | string | the one call probing H after a cool-off | one cool-off |
//! | `re:dest:{H}:rl:<second>` | counter | calls to H in that second | 2 s |
//!
//! A scope or group is `_` for the rule as a whole, `v:<text>` for a string key value,
//! `j:<json>` for any other (canonical JSON: `10.0` is `j:10`, never `v:10`), and
//! `missing` when the event lacks the key field. Longer than 128 bytes, it is
//! `h:<sha1 of the scope>` so keys stay bounded (the cooldown hash keeps the value).
//! `<gen>` is the rule's [`rules_core::CompiledRule::threshold_generation`]: a new
//! threshold definition counts afresh.

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
    let scope = match value {
        Scope::WholeRule => return WHOLE_RULE.to_owned(),
        Scope::Missing => return MISSING_VALUE.to_owned(),
        Scope::Text(v) => format!("v:{v}"),
        Scope::Json(j) => format!("j:{j}"),
    };
    if scope.len() > MAX_VALUE_BYTES {
        format!("h:{}", sha1_smol::Sha1::from(scope.as_bytes()).digest())
    } else {
        scope
    }
}

/// `re:{<rule id>}` and then `parts`, in one allocation and without the formatting
/// machinery: a gate call names five keys for each (rule, event) pair, and
/// `format!` made them 1,800 instructions each.
fn rule_key(rule_id: Uuid, parts: &[&str]) -> String {
    let mut id = Uuid::encode_buffer();
    let id = rule_id.hyphenated().encode_lower(&mut id);
    let mut key =
        String::with_capacity(5 + id.len() + parts.iter().map(|p| p.len()).sum::<usize>());
    key.push_str("re:{");
    key.push_str(id);
    key.push('}');
    for part in parts {
        key.push_str(part);
    }
    key
}

pub fn cooldown(rule_id: Uuid, scope: &str) -> String {
    rule_key(rule_id, &[":cd:", scope])
}

pub fn cooldown_index(rule_id: Uuid) -> String {
    rule_key(rule_id, &[":cds"])
}

pub fn threshold(rule_id: Uuid, generation: &str, group: &str) -> String {
    rule_key(rule_id, &[":th:", generation, ":", group])
}

pub fn threshold_state(rule_id: Uuid, generation: &str, group: &str) -> String {
    rule_key(rule_id, &[":thm:", generation, ":", group])
}

pub fn decision(rule_id: Uuid, event_id: Uuid) -> String {
    let mut event = Uuid::encode_buffer();
    rule_key(
        rule_id,
        &[":d:", event_id.hyphenated().encode_lower(&mut event)],
    )
}

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
            threshold(r, "g", "v:u-1"),
            threshold_state(r, "g", "v:u-1"),
            decision(r, Uuid::nil()),
        ] {
            assert!(
                key.starts_with("re:{00000000-0000-0000-0000-000000000000}:"),
                "{key}"
            );
        }
    }

    #[test]
    fn keys_are_the_documented_text() {
        let (r, e) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(cooldown(r, "v:u-1"), format!("re:{{{r}}}:cd:v:u-1"));
        assert_eq!(cooldown_index(r), format!("re:{{{r}}}:cds"));
        assert_eq!(threshold(r, "g1", "_"), format!("re:{{{r}}}:th:g1:_"));
        assert_eq!(
            threshold_state(r, "g1", "_"),
            format!("re:{{{r}}}:thm:g1:_")
        );
        assert_eq!(decision(r, e), format!("re:{{{r}}}:d:{e}"));
    }

    #[test]
    fn scopes() {
        assert_eq!(scope(&Scope::WholeRule), "_");
        assert_eq!(scope(&Scope::Missing), "missing");
        assert_eq!(scope(&Scope::Text("u-42".into())), "v:u-42");
        assert_eq!(scope(&Scope::Json("42".into())), "j:42");
        assert_eq!(scope(&Scope::Text("x".repeat(200))).len(), 42);
    }
}
