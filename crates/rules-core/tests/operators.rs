//! Every operator of docs/contract.md §2, with the details clients rely on.

use rules_core::{CompiledRule, Event, RuleIndex, Scope};
use serde_json::{json, Value};
use std::sync::Arc;
use uuid::Uuid;

const LS: &str = "0e2a9c1b-0000-4000-8000-00000000abcd";

fn rule_with(event_types: Value, condition: Option<Value>) -> CompiledRule {
    let mut trigger = json!({"event_types": event_types});
    if let Some(c) = condition {
        trigger["condition"] = c;
    }
    let body = json!({
        "livestream_id": LS, "name": "test", "trigger_config": trigger,
        "actions": [{"type": "log", "message": "hi"}]
    });
    CompiledRule::from_json(Uuid::new_v4(), 1, &body).expect("valid rule")
}

fn event(event_type: &str, data: Value) -> Event {
    Event::new(
        Uuid::new_v4(),
        event_type,
        Uuid::parse_str(LS).expect("uuid"),
        chrono::Utc::now(),
        data,
    )
}

/// Evaluates one leaf against `data`.
fn leaf(field: &str, op: &str, value: Value, data: Value) -> bool {
    leaf_ic(field, op, value, false, data)
}

fn leaf_ic(field: &str, op: &str, value: Value, ignore_case: bool, data: Value) -> bool {
    let rule = rule_with(
        json!(["t"]),
        Some(json!({"field": field, "op": op, "value": value, "ignore_case": ignore_case})),
    );
    let e = event("t", data);
    let fast = rule.matches(&e);
    assert_eq!(
        fast,
        rule.evaluate_traced(&e).matched,
        "fast and traced evaluation disagree"
    );
    fast
}

#[test]
fn eq_and_ne() {
    let d = json!({"n": 10, "f": 10.0, "s": "10", "arr": [1, 2], "obj": {"a": 1}, "nul": null, "b": true});
    assert!(leaf("data.n", "eq", json!(10.0), d.clone()), "10 == 10.0");
    assert!(leaf("data.f", "eq", json!(10), d.clone()), "10.0 == 10");
    assert!(
        !leaf("data.s", "eq", json!(10), d.clone()),
        "a string is never a number"
    );
    assert!(!leaf("data.n", "eq", json!("10"), d.clone()));
    assert!(
        leaf("data.arr", "eq", json!([1.0, 2]), d.clone()),
        "arrays compare whole"
    );
    assert!(
        !leaf("data.arr", "eq", json!(1), d.clone()),
        "arrays are never flattened"
    );
    assert!(leaf("data.obj", "eq", json!({"a": 1}), d.clone()));
    assert!(
        leaf("data.nul", "eq", Value::Null, d.clone()),
        "null equals null"
    );
    assert!(leaf("data.b", "eq", json!(true), d.clone()));
    assert!(leaf("data.n", "ne", json!(11), d.clone()));
    assert!(!leaf("data.n", "ne", json!(10), d.clone()));
    assert!(
        !leaf("data.missing", "eq", Value::Null, d.clone()),
        "missing is not null"
    );
    assert!(
        !leaf("data.missing", "ne", json!(1), d.clone()),
        "missing is false even for ne"
    );
    assert!(leaf("data.nul", "ne", json!(1), d), "null differs from 1");
}

#[test]
fn big_integers_compare_exactly() {
    let d = json!({"big": 9007199254740993u64});
    assert!(!leaf(
        "data.big",
        "eq",
        json!(9007199254740992u64),
        d.clone()
    ));
    assert!(leaf(
        "data.big",
        "gt",
        json!(9007199254740992u64),
        d.clone()
    ));
    assert!(leaf("data.big", "gt", json!(-1), d));
}

#[test]
fn ordering_operators() {
    let d = json!({"n": 10, "x": 2.5, "s": "20", "nul": null});
    assert!(leaf("data.n", "gt", json!(9.5), d.clone()));
    assert!(!leaf("data.n", "gt", json!(10), d.clone()));
    assert!(leaf("data.n", "gte", json!(10), d.clone()));
    assert!(leaf("data.n", "gte", json!(10.0), d.clone()));
    assert!(leaf("data.x", "lt", json!(3), d.clone()));
    assert!(!leaf("data.x", "lt", json!(2.5), d.clone()));
    assert!(leaf("data.x", "lte", json!(2.5), d.clone()));
    assert!(leaf("data.n", "lte", json!(10), d.clone()));
    // Exact beyond 2^53, where a conversion to f64 would make them equal.
    let big = json!({"n": 9_007_199_254_740_993_u64, "neg": -9_007_199_254_740_993_i64});
    assert!(leaf(
        "data.n",
        "gt",
        json!(9_007_199_254_740_992.0),
        big.clone()
    ));
    assert!(!leaf(
        "data.n",
        "eq",
        json!(9_007_199_254_740_992.0),
        big.clone()
    ));
    assert!(leaf(
        "data.neg",
        "lt",
        json!(-9_007_199_254_740_992.0),
        big.clone()
    ));
    assert!(leaf("data.n", "lt", json!(1e300), big.clone()));
    assert!(leaf("data.x", "gt", json!(2), d.clone()), "2.5 > 2");
    assert!(leaf("data.x", "lt", json!(3), d.clone()), "2.5 < 3");
    assert!(
        !leaf("data.s", "gt", json!(5), d.clone()),
        "\"20\" is not gt 5"
    );
    assert!(
        !leaf("data.nul", "lt", json!(5), d.clone()),
        "null is not a number"
    );
    assert!(!leaf("data.missing", "lt", json!(5), d));
}

#[test]
fn in_and_not_in() {
    let d = json!({"c": "USD", "n": 2, "nul": null, "arr": [1]});
    assert!(leaf("data.c", "in", json!(["USD", "EUR"]), d.clone()));
    assert!(!leaf("data.c", "in", json!(["usd", "EUR"]), d.clone()));
    assert!(leaf_ic(
        "data.c",
        "in",
        json!(["usd", "eur"]),
        true,
        d.clone()
    ));
    assert!(
        leaf("data.n", "in", json!([1, 2.0, "x"]), d.clone()),
        "numbers compare numerically"
    );
    assert!(!leaf("data.n", "in", json!(["2"]), d.clone()));
    assert!(leaf("data.nul", "in", json!([null]), d.clone()));
    assert!(
        leaf("data.arr", "in", json!([[1], [2]]), d.clone()),
        "whole values compare"
    );
    assert!(leaf("data.c", "not_in", json!(["EUR"]), d.clone()));
    assert!(!leaf("data.c", "not_in", json!(["USD"]), d.clone()));
    assert!(!leaf_ic(
        "data.c",
        "not_in",
        json!(["usd"]),
        true,
        d.clone()
    ));
    assert!(
        !leaf("data.missing", "not_in", json!(["USD"]), d.clone()),
        "missing is false"
    );
    assert!(!leaf("data.c", "in", json!([]), d));
}

#[test]
fn contains_on_strings_and_arrays() {
    let d = json!({"m": "GG HYPE train", "tags": ["VIP", "mod"], "nums": [1, 2], "n": 12});
    assert!(leaf("data.m", "contains", json!("HYPE"), d.clone()));
    assert!(!leaf("data.m", "contains", json!("hype"), d.clone()));
    assert!(leaf_ic(
        "data.m",
        "contains",
        json!("hype"),
        true,
        d.clone()
    ));
    assert!(leaf("data.tags", "contains", json!("VIP"), d.clone()));
    assert!(!leaf("data.tags", "contains", json!("vip"), d.clone()));
    assert!(
        leaf_ic("data.tags", "contains", json!("vip"), true, d.clone()),
        "ignore_case on array elements"
    );
    assert!(
        !leaf("data.tags", "contains", json!("VI"), d.clone()),
        "array elements compare whole"
    );
    assert!(leaf("data.nums", "contains", json!(2.0), d.clone()));
    assert!(
        !leaf("data.m", "contains", json!(1), d.clone()),
        "a string does not contain a number"
    );
    assert!(
        !leaf("data.n", "contains", json!("1"), d.clone()),
        "a number contains nothing"
    );
    assert!(!leaf("data.missing", "contains", json!("x"), d));
}

#[test]
fn starts_and_ends_with() {
    let d = json!({"m": "!Command arg", "n": 5});
    assert!(leaf("data.m", "starts_with", json!("!Command"), d.clone()));
    assert!(!leaf("data.m", "starts_with", json!("!command"), d.clone()));
    assert!(leaf_ic(
        "data.m",
        "starts_with",
        json!("!COMMAND"),
        true,
        d.clone()
    ));
    assert!(leaf("data.m", "ends_with", json!("arg"), d.clone()));
    assert!(leaf_ic(
        "data.m",
        "ends_with",
        json!("ARG"),
        true,
        d.clone()
    ));
    assert!(!leaf("data.m", "ends_with", json!("Arg"), d.clone()));
    // Contained, not at the end: false, with and without ignore_case.
    assert!(!leaf("data.m", "ends_with", json!("Command"), d.clone()));
    assert!(!leaf_ic(
        "data.m",
        "ends_with",
        json!("COMMAND"),
        true,
        d.clone()
    ));
    assert!(!leaf_ic(
        "data.m",
        "starts_with",
        json!("ARG"),
        true,
        d.clone()
    ));
    assert!(!leaf("data.n", "starts_with", json!("5"), d));
    // Case matters without ignore_case, and only then, at either end.
    let upper = json!({"m": "ARG !Command ARG"});
    assert!(!leaf("data.m", "ends_with", json!("arg"), upper.clone()));
    assert!(leaf_ic(
        "data.m",
        "ends_with",
        json!("arg"),
        true,
        upper.clone()
    ));
    assert!(!leaf("data.m", "starts_with", json!("arg"), upper.clone()));
    assert!(leaf_ic("data.m", "starts_with", json!("arg"), true, upper));
}

#[test]
fn matches_regex() {
    let d = json!({"m": "order #1234 placed", "n": 1234});
    assert!(
        leaf("data.m", "matches", json!(r"#\d{4}\b"), d.clone()),
        "finds a match anywhere"
    );
    assert!(!leaf("data.m", "matches", json!(r"^#\d+"), d.clone()));
    assert!(!leaf("data.m", "matches", json!("ORDER"), d.clone()));
    assert!(
        leaf_ic("data.m", "matches", json!("ORDER"), true, d.clone()),
        "case-insensitive regex"
    );
    assert!(
        !leaf("data.n", "matches", json!("1234"), d),
        "numbers are not strings"
    );
}

#[test]
fn exists_and_null() {
    let d = json!({"nul": null, "x": 0, "nested": {"a": 1}});
    assert!(
        leaf("data.nul", "exists", json!(true), d.clone()),
        "null is present"
    );
    assert!(!leaf("data.nul", "exists", json!(false), d.clone()));
    assert!(
        leaf("data.missing", "exists", json!(false), d.clone()),
        "exists:false holds for missing"
    );
    assert!(!leaf("data.missing", "exists", json!(true), d.clone()));
    assert!(
        !leaf("data.x.y", "exists", json!(true), d.clone()),
        "a path through a scalar is missing"
    );
    assert!(leaf("data.nested.a", "exists", json!(true), d));
}

#[test]
fn ignore_case_uses_unicode_folding() {
    let d = json!({"name": "STRASSE", "greek": "ΣΊΣΥΦΟΣ", "k": "\u{212A}elvin"});
    assert!(
        leaf_ic("data.name", "eq", json!("straße"), true, d.clone()),
        "ß folds to ss"
    );
    assert!(
        leaf_ic("data.greek", "eq", json!("σίσυφος"), true, d.clone()),
        "final sigma folds"
    );
    assert!(
        leaf_ic("data.k", "starts_with", json!("kel"), true, d.clone()),
        "Kelvin sign folds to k"
    );
    assert!(leaf_ic(
        "data.name",
        "ne",
        json!("strasse!"),
        true,
        d.clone()
    ));
    assert!(!leaf_ic(
        "data.name",
        "ne",
        json!("Strasse"),
        true,
        d.clone()
    ));
    assert!(!leaf("data.name", "eq", json!("strasse"), d.clone()));
    // `matches` folds one character to one (README, "ignore_case"): the simple
    // foldings agree with `eq`, the one-to-many ones must be spelt out.
    let greek = leaf_ic("data.greek", "matches", json!("^σίσυφος$"), true, d.clone());
    assert!(greek, "sigma and final sigma fold to one another");
    assert!(leaf_ic(
        "data.k",
        "matches",
        json!("^kelvin$"),
        true,
        d.clone()
    ));
    assert!(!leaf_ic(
        "data.name",
        "matches",
        json!("^straße$"),
        true,
        d.clone()
    ));
    assert!(leaf_ic(
        "data.name",
        "matches",
        json!("^stra(ß|ss)e$"),
        true,
        d
    ));
}

#[test]
fn array_index_paths() {
    let d = json!({"items": [{"sku": "a"}, {"sku": "b"}], "obj": {"0": "key"}});
    assert!(leaf("data.items.1.sku", "eq", json!("b"), d.clone()));
    assert!(!leaf("data.items.2.sku", "exists", json!(true), d.clone()));
    assert!(
        leaf("data.obj.0", "eq", json!("key"), d.clone()),
        "a numeric segment is a key on an object"
    );
    assert!(!leaf("data.items.first", "exists", json!(true), d));
}

#[test]
fn envelope_fields_are_paths() {
    let rule = rule_with(
        json!(["t"]),
        Some(json!({"all": [
            {"field": "type", "op": "eq", "value": "t"},
            {"field": "livestream_id", "op": "eq", "value": LS},
            {"field": "occurred_at", "op": "starts_with", "value": "20"},
            {"field": "id", "op": "exists", "value": true}
        ]})),
    );
    assert!(rule.matches(&event("t", json!({}))));
}

#[test]
fn nested_not_all_any() {
    let cond = json!({"all": [
        {"field": "data.amount", "op": "gte", "value": 10},
        {"not": {"not": {"any": [
            {"field": "data.currency", "op": "in", "value": ["USD", "EUR"]},
            {"field": "data.message", "op": "contains", "value": "hype", "ignore_case": true}
        ]}}},
        {"not": {"field": "data.user.banned", "op": "eq", "value": true}}
    ]});
    let rule = rule_with(json!(["donation.received"]), Some(cond));
    let m = |data: Value| rule.matches(&event("donation.received", data));
    assert!(m(json!({"amount": 25.5, "currency": "USD"})));
    assert!(m(
        json!({"amount": 10, "currency": "GBP", "message": "HYPE!"})
    ));
    assert!(!m(
        json!({"amount": 10, "currency": "GBP", "message": "gg"})
    ));
    assert!(!m(json!({"amount": 9.99, "currency": "USD"})));
    assert!(!m(
        json!({"amount": 50, "currency": "USD", "user": {"banned": true}})
    ));
    assert!(
        m(json!({"amount": 50, "currency": "USD", "user": {"banned": false}})),
        "not of a false leaf"
    );
}

#[test]
fn event_types_and_wildcard() {
    let specific = rule_with(json!(["follow", "raid"]), None);
    let wildcard = rule_with(json!(["*"]), None);
    assert!(specific.matches(&event("raid", json!({}))));
    assert!(!specific.matches(&event("chat.message", json!({}))));
    assert!(wildcard.matches(&event("anything.at.all", json!({}))));
    let e = event("other", json!({}));
    let eval = specific.evaluate_traced(&e);
    assert!(!eval.event_type_matched && eval.condition_matched && !eval.matched);
}

#[test]
fn trace_reports_every_node() {
    let rule = rule_with(
        json!(["t"]),
        Some(json!({"any": [
            {"field": "data.a", "op": "eq", "value": 1},
            {"not": {"field": "data.b", "op": "exists", "value": true}}
        ]})),
    );
    let eval = rule.evaluate_traced(&event("t", json!({"a": 1, "b": 2})));
    assert!(eval.matched);
    let paths: Vec<(&str, &str, bool)> = eval
        .trace
        .iter()
        .map(|n| (n.path.as_str(), n.node, n.result))
        .collect();
    assert_eq!(
        paths,
        vec![
            ("trigger_config.condition", "any", true),
            ("trigger_config.condition.any[0]", "leaf", true),
            ("trigger_config.condition.any[1]", "not", false),
            ("trigger_config.condition.any[1].not", "leaf", true),
        ]
    );
    assert_eq!(eval.trace[1].actual, Some(json!(1)));
    let eval = rule.evaluate_traced(&event("t", json!({})));
    assert_eq!(eval.trace[1].found, Some(false));
    assert_eq!(eval.trace[1].actual, None);
}

#[test]
fn index_finds_candidates_by_livestream_and_type() {
    let a = Arc::new(rule_with(json!(["follow"]), None));
    let b = Arc::new(rule_with(json!(["follow", "raid"]), None));
    let star = Arc::new(rule_with(json!(["*", "follow"]), None));
    let other_ls = {
        let body = json!({"livestream_id": Uuid::new_v4(), "name": "x",
            "trigger_config": {"event_types": ["follow"]}, "actions": [{"type": "log", "message": "m"}]});
        Arc::new(CompiledRule::from_json(Uuid::new_v4(), 1, &body).expect("valid"))
    };
    let mut index = RuleIndex::from_rules([a.clone(), b.clone(), star.clone(), other_ls]);
    assert_eq!(index.len(), 4);
    let ids = |index: &RuleIndex, t: &str| {
        let mut ids: Vec<Uuid> = index
            .candidates(&event(t, json!({})))
            .map(|r| r.id())
            .collect();
        ids.sort();
        ids
    };
    let mut expected = vec![a.id(), b.id(), star.id()];
    expected.sort();
    assert_eq!(ids(&index, "follow"), expected, "a `*` rule appears once");
    let mut expected = vec![b.id(), star.id()];
    expected.sort();
    assert_eq!(ids(&index, "raid"), expected);
    assert_eq!(ids(&index, "chat.message"), vec![star.id()]);

    // Replace b so it listens to chat only; remove a; disable star.
    let b2 = {
        let mut body = serde_json::to_value(b.rule().spec.clone()).expect("serializes");
        body["trigger_config"]["event_types"] = json!(["chat.message"]);
        Arc::new(CompiledRule::from_json(b.id(), 2, &body).expect("valid"))
    };
    index.upsert(b2);
    assert!(index.remove(a.id()).is_some());
    assert!(index.remove(a.id()).is_none());
    let mut disabled = serde_json::to_value(star.rule().spec.clone()).expect("serializes");
    disabled["enabled"] = json!(false);
    index.upsert(Arc::new(
        CompiledRule::from_json(star.id(), 2, &disabled).expect("valid"),
    ));
    assert_eq!(ids(&index, "follow"), Vec::<Uuid>::new());
    assert_eq!(ids(&index, "chat.message"), vec![b.id()]);
    assert_eq!(index.len(), 2);
    assert_eq!(index.get(b.id()).map(|r| r.rule().version), Some(2));
}

#[test]
fn renders_actions_and_defaults() {
    let body = json!({
        "livestream_id": LS, "name": "Big donation",
        "trigger_config": {"event_types": ["donation.received"]},
        "actions": [
            {"type": "publish", "stream": "overlay:alerts",
             "payload": {"text": "{{ event.data.user.name }} donated {{ event.data.amount }}!", "amount": "{{ event.data.amount }}"}},
            {"type": "webhook", "url": "https://bot.example.com/hook", "headers": {"X-User": "{{ event.data.user.name }}"}, "max_age_seconds": 60},
            {"type": "log", "message": "rule {{ rule.name }} fired", "level": "warn"}
        ]
    });
    let rule = CompiledRule::from_json(Uuid::new_v4(), 3, &body).expect("valid");
    let e = event(
        "donation.received",
        json!({"amount": 25.5, "user": {"name": "alice"}}),
    );
    let rendered: Vec<Value> = rule
        .render_actions(&e)
        .into_iter()
        .map(|r| serde_json::to_value(r.expect("renders")).expect("serializes"))
        .collect();
    assert_eq!(
        rendered[0],
        json!({"type": "publish", "stream": "overlay:alerts",
        "payload": {"text": "alice donated 25.5!", "amount": 25.5}})
    );
    assert_eq!(rendered[1]["headers"], json!({"X-User": "alice"}));
    assert_eq!(rendered[1]["method"], json!("POST"));
    assert_eq!(rendered[1]["timeout_ms"], json!(5000));
    assert_eq!(rendered[1]["max_age_seconds"], json!(60));
    assert_eq!(
        rendered[1]["body"]["rule"],
        json!({"id": rule.id(), "name": "Big donation"})
    );
    assert_eq!(
        rendered[1]["body"]["event"],
        serde_json::to_value(&e).expect("serializes")
    );
    assert_eq!(
        rendered[2],
        json!({"type": "log", "message": "rule Big donation fired", "level": "warn"})
    );
}

#[test]
fn cooldown_and_threshold_keys() {
    let body = json!({
        "livestream_id": LS, "name": "k", "cooldown_seconds": 30, "cooldown_key": "data.user.id",
        "trigger_config": {"event_types": ["t"], "threshold": {"count": 3, "window_seconds": 60, "group_by": "data.user.tier"}},
        "actions": [{"type": "log", "message": "m"}]
    });
    let rule = CompiledRule::from_json(Uuid::new_v4(), 1, &body).expect("valid");
    let e = event("t", json!({"user": {"id": "u-42", "tier": 2}}));
    assert_eq!(rule.cooldown_scope(&e), Scope::Text("u-42".into()));
    assert_eq!(rule.threshold_group(&e), Scope::Json("2".into()));
    // Keys follow the matching's equality: 2.0 is 2, "2" is not.
    let float = event("t", json!({"user": {"tier": 2.0}}));
    assert_eq!(rule.threshold_group(&float), Scope::Json("2".into()));
    let text = event("t", json!({"user": {"tier": "2"}}));
    assert_eq!(rule.threshold_group(&text), Scope::Text("2".into()));
    let nested = event("t", json!({"user": {"tier": {"a": [1.0, "x"]}}}));
    assert_eq!(
        rule.threshold_group(&nested),
        Scope::Json(r#"{"a":[1,"x"]}"#.into())
    );
    assert_eq!(rule.cooldown_scope(&event("t", json!({}))), Scope::Missing);
    let plain = rule_with(json!(["t"]), None);
    assert_eq!(plain.cooldown_scope(&e), Scope::WholeRule);
    assert_eq!(plain.threshold_group(&e), Scope::WholeRule);
}

#[test]
fn unequal_arrays_and_objects_of_one_size_differ() {
    let d = json!({"arr": [1, 2], "obj": {"a": 1}});
    assert!(leaf("data.arr", "eq", json!([1, 2]), d.clone()));
    assert!(!leaf("data.arr", "eq", json!([1, 3]), d.clone()));
    assert!(
        !leaf("data.arr", "eq", json!([2, 1]), d.clone()),
        "order matters"
    );
    assert!(leaf("data.obj", "eq", json!({"a": 1}), d.clone()));
    assert!(!leaf("data.obj", "eq", json!({"a": 2}), d.clone()));
    assert!(!leaf("data.obj", "eq", json!({"b": 1}), d.clone()));
    assert!(leaf("data.obj", "ne", json!({"b": 1}), d));
}

#[test]
fn the_trace_names_each_leafs_field() {
    let rule = rule_with(
        json!(["t"]),
        Some(json!({"all": [
            {"field": "data.amount", "op": "gte", "value": 10},
            {"field": "data.user.name", "op": "exists", "value": true}
        ]})),
    );
    let trace = rule.evaluate_traced(&event("t", json!({"amount": 50})));
    let fields: Vec<Value> = trace
        .trace
        .iter()
        .map(|node| serde_json::to_value(node).expect("json")["field"].clone())
        .collect();
    assert_eq!(
        fields,
        vec![Value::Null, json!("data.amount"), json!("data.user.name")]
    );
}
