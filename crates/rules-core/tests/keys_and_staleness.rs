//! What a compiled rule derives from itself and from an event beyond matching:
//! cooldown and threshold keys (typed, numbers in one spelling), the threshold's
//! generation, staleness and destinations. Gaps found by `make mutants`.

use chrono::{TimeZone, Utc};
use rules_core::{CompiledRule, Event, Scope};
use serde_json::{json, Value};
use uuid::Uuid;

const LS: &str = "0e2a9c1b-0000-4000-8000-00000000abcd";

fn rule(extra: Value) -> CompiledRule {
    let mut body = json!({
        "livestream_id": LS, "name": "r",
        "trigger_config": {"event_types": ["donation.received"]},
        "actions": [{"type": "log", "message": "hi"}],
        "cooldown_seconds": 10, "cooldown_key": "data.k"
    });
    for (k, v) in extra.as_object().expect("object") {
        body[k] = v.clone();
    }
    CompiledRule::from_json(Uuid::nil(), 1, &body).expect("valid rule")
}

fn event(data: Value) -> Event {
    let at = Utc.timestamp_opt(1_764_547_200, 0).single().expect("time");
    Event::new(
        Uuid::nil(),
        "donation.received",
        LS.parse().expect("uuid"),
        at,
        data,
    )
}

fn key_of(value: Value) -> Scope {
    rule(json!({})).cooldown_scope(&event(json!({ "k": value })))
}

#[test]
fn numbers_have_one_spelling_in_keys() {
    assert_eq!(key_of(json!(10)), Scope::Json("10".into()));
    assert_eq!(key_of(json!(10.0)), Scope::Json("10".into()));
    // Negative zero is zero; a fraction stays a fraction.
    assert_eq!(key_of(json!(-0.0)), key_of(json!(0)));
    assert_eq!(key_of(json!(0.5)), Scope::Json("0.5".into()));
    assert_eq!(key_of(json!(-5)), Scope::Json("-5".into()));
    // Integers beyond i64 keep every digit (not rounded through a float).
    assert_eq!(
        key_of(json!(u64::MAX)),
        Scope::Json("18446744073709551615".into())
    );
    assert_eq!(key_of(json!("10")), Scope::Text("10".into()));
    assert_eq!(
        key_of(json!([1, 2.0, {"a": 3.0}])),
        Scope::Json(r#"[1,2,{"a":3}]"#.into())
    );
    assert_eq!(
        rule(json!({})).cooldown_scope(&event(json!({}))),
        Scope::Missing
    );
}

#[test]
fn a_key_given_as_text_names_the_string_and_the_value_it_spells() {
    assert_eq!(
        Scope::named_by("42"),
        vec![Scope::Text("42".into()), Scope::Json("42".into())]
    );
    assert_eq!(Scope::named_by("alice"), vec![Scope::Text("alice".into())]);
    // A JSON string names only itself, as text.
    assert_eq!(
        Scope::named_by(r#""alice""#),
        vec![Scope::Text(r#""alice""#.into())]
    );
}

#[test]
fn a_key_gives_back_its_value() {
    assert_eq!(Scope::Text("a".into()).value(), Some(json!("a")));
    assert_eq!(Scope::Json("[1,2]".into()).value(), Some(json!([1, 2])));
    assert_eq!(Scope::WholeRule.value(), None);
    assert_eq!(Scope::Missing.value(), None);
}

#[test]
fn the_threshold_generation_changes_with_what_is_counted_only() {
    let threshold = |count: u32| {
        json!({"trigger_config": {"event_types": ["donation.received"],
                                  "threshold": {"count": count, "window_seconds": 60}}})
    };
    let base = rule(threshold(3));
    assert!(!base.threshold_generation().is_empty());
    assert_ne!(
        base.threshold_generation(),
        rule(threshold(4)).threshold_generation()
    );
    let mut renamed = threshold(3);
    renamed["name"] = json!("another name");
    assert_eq!(
        base.threshold_generation(),
        rule(renamed).threshold_generation()
    );
}

#[test]
fn a_pair_is_stale_when_every_action_is_past_its_age() {
    let aged = |actions: Value| rule(json!({ "actions": actions }));
    let all = aged(json!([
        {"type": "log", "message": "a", "max_age_seconds": 10},
        {"type": "log", "message": "b", "max_age_seconds": 10}
    ]));
    assert!(all.all_actions_stale(0, 10_001));
    assert!(
        !all.all_actions_stale(0, 10_000),
        "exactly the age is not past it"
    );
    assert!(!all.all_actions_stale(0, 5_000));
    let one_fresh = aged(json!([
        {"type": "log", "message": "a", "max_age_seconds": 10},
        {"type": "log", "message": "b"}
    ]));
    assert!(!one_fresh.all_actions_stale(0, 1_000_000));
}

#[test]
fn destinations_are_the_webhooks_hosts() {
    let r = rule(json!({"actions": [
        {"type": "webhook", "url": "https://bot.example.com/a"},
        {"type": "webhook", "url": "https://bot.example.com/b"},
        {"type": "webhook", "url": "http://other.example.com:8080/"},
        {"type": "log", "message": "x"}
    ]}));
    let hosts: Vec<&str> = r.destinations().iter().map(|h| &**h).collect();
    assert_eq!(hosts, ["bot.example.com:443", "other.example.com:8080"]);
}
