//! Property tests: evaluation laws hold for arbitrary conditions and events, and
//! validation never panics on arbitrary JSON.

use proptest::prelude::*;
use rules_core::{parse_rule_spec, CompiledRule, Event};
use serde_json::{json, Value};
use uuid::Uuid;

const LS: &str = "0e2a9c1b-0000-4000-8000-00000000abcd";

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-20i64..20).prop_map(|n| json!(n)),
        (-20.0f64..20.0).prop_map(|f| json!(f)),
        "[a-cA-C]{0,3}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-c]", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_leaf() -> impl Strategy<Value = Value> {
    let field = prop_oneof![
        Just("data.a"),
        Just("data.b"),
        Just("data.a.b"),
        Just("data.c.0"),
        Just("type")
    ];
    let op_value = prop_oneof![
        arb_json().prop_map(|v| ("eq", v)),
        arb_json().prop_map(|v| ("ne", v)),
        (-20i64..20).prop_map(|n| ("gt", json!(n))),
        (-20.0f64..20.0).prop_map(|n| ("lte", json!(n))),
        prop::collection::vec(arb_json(), 0..4).prop_map(|v| ("in", Value::Array(v))),
        prop::collection::vec(arb_json(), 0..4).prop_map(|v| ("not_in", Value::Array(v))),
        arb_json().prop_map(|v| ("contains", v)),
        "[a-cA-C]{0,2}".prop_map(|s| ("starts_with", json!(s))),
        "[a-c]{1,2}".prop_map(|s| ("matches", json!(s))),
        any::<bool>().prop_map(|b| ("exists", json!(b))),
    ];
    (field, op_value, any::<bool>()).prop_map(|(field, (op, value), ic)| {
        json!({"field": field, "op": op, "value": value, "ignore_case": ic})
    })
}

fn arb_condition() -> impl Strategy<Value = Value> {
    arb_leaf().prop_recursive(4, 16, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(|c| json!({"all": c})),
            prop::collection::vec(inner.clone(), 1..4).prop_map(|c| json!({"any": c})),
            inner.prop_map(|c| json!({"not": c})),
        ]
    })
}

fn arb_event() -> impl Strategy<Value = Event> {
    prop::collection::btree_map("[a-c]", arb_json(), 0..4).prop_map(|data| {
        Event::new(
            Uuid::new_v4(),
            "t",
            Uuid::parse_str(LS).expect("uuid"),
            chrono::Utc::now(),
            Value::Object(data.into_iter().collect()),
        )
    })
}

fn eval(condition: Value, event: &Event) -> bool {
    let body = json!({"livestream_id": LS, "name": "p", "trigger_config": {"event_types": ["t"], "condition": condition},
        "actions": [{"type": "log", "message": "m"}]});
    let rule =
        CompiledRule::from_json(Uuid::new_v4(), 1, &body).expect("generated conditions are valid");
    let fast = rule.matches(event);
    assert_eq!(fast, rule.evaluate_traced(event).matched);
    fast
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn double_negation(c in arb_condition(), e in arb_event()) {
        prop_assert_eq!(eval(json!({"not": {"not": c.clone()}}), &e), eval(c, &e));
    }

    #[test]
    fn not_inverts(c in arb_condition(), e in arb_event()) {
        prop_assert_eq!(eval(json!({"not": c.clone()}), &e), !eval(c, &e));
    }

    #[test]
    fn de_morgan(a in arb_condition(), b in arb_condition(), e in arb_event()) {
        prop_assert_eq!(
            eval(json!({"not": {"all": [a.clone(), b.clone()]}}), &e),
            eval(json!({"any": [{"not": a.clone()}, {"not": b.clone()}]}), &e)
        );
        prop_assert_eq!(
            eval(json!({"not": {"any": [a.clone(), b.clone()]}}), &e),
            eval(json!({"all": [{"not": a}, {"not": b}]}), &e)
        );
    }

    #[test]
    fn single_child_combinators_are_identity(c in arb_condition(), e in arb_event()) {
        let v = eval(c.clone(), &e);
        prop_assert_eq!(eval(json!({"all": [c.clone()]}), &e), v);
        prop_assert_eq!(eval(json!({"any": [c]}), &e), v);
    }

    #[test]
    fn all_and_any_agree_with_their_children(a in arb_condition(), b in arb_condition(), e in arb_event()) {
        let (x, y) = (eval(a.clone(), &e), eval(b.clone(), &e));
        prop_assert_eq!(eval(json!({"all": [a.clone(), b.clone()]}), &e), x && y);
        prop_assert_eq!(eval(json!({"any": [a, b]}), &e), x || y);
    }

    #[test]
    fn eq_and_ne_are_complements_when_present(v in arb_json(), e in arb_event()) {
        let present = e.data().get("a").is_some();
        let eq = eval(json!({"field": "data.a", "op": "eq", "value": v.clone()}), &e);
        let ne = eval(json!({"field": "data.a", "op": "ne", "value": v}), &e);
        if present { prop_assert_ne!(eq, ne); } else { prop_assert!(!eq && !ne); }
    }

    #[test]
    fn validation_never_panics(v in arb_json()) {
        let _ = parse_rule_spec(&v);
    }

    #[test]
    fn validation_never_panics_on_near_valid_rules(c in arb_json(), t in arb_json(), a in arb_json()) {
        let body = json!({"livestream_id": LS, "name": "n",
            "trigger_config": {"event_types": t, "condition": c, "threshold": a.clone()},
            "actions": [a.clone(), {"type": "webhook", "url": "https://x.example", "body": a}]});
        let _ = parse_rule_spec(&body);
    }
}
