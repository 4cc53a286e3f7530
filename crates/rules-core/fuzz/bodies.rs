//! What each fuzz target does with its input. One implementation, two users: the
//! cargo-fuzz targets beside this file (`make fuzz`) and the regression test
//! `crates/rules-core/tests/fuzz_regressions.rs` (in `make test`), which replays every
//! input under `regressions/` — the inputs that once found a crash stay there.
//!
//! Each body must never panic, whatever the input: that is the property fuzzed.

use chrono::{TimeZone, Utc};
use rules_core::{CompiledRule, Event};
use serde_json::{json, Value};
use uuid::Uuid;

const LIVESTREAM: Uuid = Uuid::from_u128(0x0e2a_9c1b_0000_4000_8000_0000_0000_abcd);

/// Events with the shapes rules look at: nested objects, arrays, numbers of every
/// kind, strings with case and Unicode, nulls, missing fields.
fn events() -> Vec<Event> {
    let at = Utc
        .timestamp_opt(1_764_547_200, 0)
        .single()
        .unwrap_or_default();
    let data = [
        json!({"amount": 10, "user": {"name": "Alice", "id": "u1", "tags": ["vip", "Ünïcode"]},
               "message": "Hello WORLD", "ratio": 0.5, "big": 9_007_199_254_740_993_i64,
               "nested": {"a": {"b": {"c": [1, 2, {"d": null}]}}}}),
        json!({"amount": -1.5e300, "user": null, "message": "", "list": []}),
        json!({}),
    ];
    data.into_iter()
        .enumerate()
        .map(|(i, d)| {
            Event::new(
                Uuid::from_u128(i as u128 + 1),
                "donation.received",
                LIVESTREAM,
                at,
                d,
            )
        })
        .collect()
}

/// Everything a worker and the dry run do with a compiled rule, on every event.
fn exercise(rule: &CompiledRule) {
    for event in events() {
        let _ = rule.matches(&event);
        let _ = rule.evaluate_traced(&event);
        let _ = rule.cooldown_scope(&event);
        let _ = rule.threshold_group(&event);
        let _ = rule.render_actions(&event);
        let _ = rule.threshold_generation();
        let _ = rule.all_actions_stale(0, i64::MAX);
    }
}

/// Rule JSON → validation → compile → evaluate and render.
pub fn rule(bytes: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
        return;
    };
    let _ = rules_core::parse_rule_spec(&value);
    if let Ok(rule) = CompiledRule::from_json(Uuid::nil(), 1, &value) {
        exercise(&rule);
    }
}

/// Stream fields → event, in both envelope forms. The input is a list of fields:
/// `0x00` separates fields, the first `0x01` in a field separates name from value.
/// The whole input is also read as the JSON form.
pub fn event(bytes: &[u8]) {
    let fields: Vec<(&[u8], &[u8])> = bytes
        .split(|b| *b == 0)
        .map(|f| match f.iter().position(|b| *b == 1) {
            Some(i) => (&f[..i], &f[i + 1..]),
            None => (f, &[][..]),
        })
        .collect();
    let at = Utc.timestamp_opt(1_764_547_200, 0).single();
    if let Ok(event) = Event::from_stream_fields(&fields, at, 65_536) {
        let _ = event.to_envelope();
    }
    if let Ok(event) = Event::from_json_slice(bytes, at) {
        let _ = event.to_envelope();
    }
}

/// A template (the input as text) in every place a rule takes one: a publish
/// payload, a webhook body, URL and header, a log message; rendered on every event.
pub fn template(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let body = json!({
        "livestream_id": LIVESTREAM,
        "name": "fuzzed template",
        "trigger_config": {"event_types": ["donation.received"]},
        "actions": [
            {"type": "publish", "stream": "overlay:alerts", "payload": {"text": text, "nested": [text]}},
            {"type": "webhook", "url": format!("https://example.com/{text}"),
             "headers": {"X-Text": text}, "body": {"text": text}},
            {"type": "log", "message": text}
        ]
    });
    if let Ok(rule) = CompiledRule::from_json(Uuid::nil(), 1, &body) {
        exercise(&rule);
    }
}
