//! The rule index: what `matching` returns, and that changing one rule leaves its
//! neighbours (same livestream, same type) in place.

use rules_core::{CompiledRule, Event, RuleIndex};
use serde_json::{json, Value};
use std::sync::Arc;
use uuid::Uuid;

const LS: &str = "0e2a9c1b-0000-4000-8000-00000000abcd";
const OTHER: &str = "0e2a9c1b-0000-4000-8000-00000000ffff";

fn rule(livestream: &str, types: Value, condition: Option<Value>) -> Arc<CompiledRule> {
    let mut trigger = json!({ "event_types": types });
    if let Some(c) = condition {
        trigger["condition"] = c;
    }
    let body = json!({"livestream_id": livestream, "name": "i", "trigger_config": trigger,
        "actions": [{"type": "log", "message": "m"}]});
    Arc::new(CompiledRule::from_json(Uuid::new_v4(), 1, &body).expect("valid"))
}

fn event(livestream: &str, event_type: &str, data: Value) -> Event {
    Event::new(
        Uuid::new_v4(),
        event_type,
        Uuid::parse_str(livestream).expect("uuid"),
        chrono::Utc::now(),
        data,
    )
}

fn ids<'a>(found: impl Iterator<Item = &'a Arc<CompiledRule>>) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = found.map(|r| r.id()).collect();
    ids.sort();
    ids
}

fn sorted(mut v: Vec<Uuid>) -> Vec<Uuid> {
    v.sort();
    v
}

#[test]
fn matching_is_livestream_type_and_condition() {
    let big = Some(json!({"field": "data.amount", "op": "gte", "value": 10}));
    let typed = rule(LS, json!(["donation.received"]), None);
    let conditional = rule(LS, json!(["donation.received"]), big);
    let any = rule(LS, json!(["*"]), None);
    let elsewhere = rule(OTHER, json!(["donation.received"]), None);
    let follow = rule(LS, json!(["follow"]), None);
    let index =
        RuleIndex::from_rules([&typed, &conditional, &any, &elsewhere, &follow].map(Arc::clone));
    let small = event(LS, "donation.received", json!({"amount": 1}));
    assert_eq!(
        ids(index.matching(&small)),
        sorted(vec![typed.id(), any.id()])
    );
    let large = event(LS, "donation.received", json!({"amount": 50}));
    assert_eq!(
        ids(index.matching(&large)),
        sorted(vec![typed.id(), conditional.id(), any.id()])
    );
    let raid = event(LS, "raid", json!({}));
    assert_eq!(ids(index.matching(&raid)), vec![any.id()]);
    let there = event(OTHER, "donation.received", json!({}));
    assert_eq!(ids(index.matching(&there)), vec![elsewhere.id()]);
}

#[test]
fn changing_one_rule_keeps_its_neighbours() {
    let rules: Vec<Arc<CompiledRule>> = (0..4)
        .map(|_| rule(LS, json!(["donation.received", "cheer"]), None))
        .collect();
    let anys: Vec<Arc<CompiledRule>> = (0..3).map(|_| rule(LS, json!(["*"]), None)).collect();
    assert!(RuleIndex::new().is_empty());
    let mut index = RuleIndex::from_rules(rules.iter().chain(&anys).cloned());
    assert!(!index.is_empty());
    assert_eq!(ids(index.iter()).len(), 7, "iter holds every rule");
    let e = event(LS, "cheer", json!({}));
    assert_eq!(ids(index.matching(&e)).len(), 7);

    // Remove one typed and one "*" rule: every other one still matches.
    assert!(index.remove(rules[1].id()).is_some());
    assert!(index.remove(anys[0].id()).is_some());
    assert!(index.remove(rules[1].id()).is_none(), "already gone");
    let expected = sorted(vec![
        rules[0].id(),
        rules[2].id(),
        rules[3].id(),
        anys[1].id(),
        anys[2].id(),
    ]);
    assert_eq!(ids(index.matching(&e)), expected);
    assert_eq!(index.len(), 5);

    // Replace one with a version listening to another type only.
    let mut moved = rules[2].rule().clone();
    moved.spec.trigger_config.event_types = vec!["raid".into()];
    index.upsert(Arc::new(CompiledRule::compile(moved)));
    let expected = sorted(vec![
        rules[0].id(),
        rules[3].id(),
        anys[1].id(),
        anys[2].id(),
    ]);
    assert_eq!(ids(index.matching(&e)), expected);
    let raid = event(LS, "raid", json!({}));
    assert!(ids(index.matching(&raid)).contains(&rules[2].id()));

    // Disabling removes it; the others stay.
    let mut disabled = rules[0].rule().clone();
    disabled.spec.enabled = false;
    index.upsert(Arc::new(CompiledRule::compile(disabled)));
    assert!(index.get(rules[0].id()).is_none());
    assert_eq!(
        ids(index.matching(&e)),
        sorted(vec![rules[3].id(), anys[1].id(), anys[2].id()])
    );
}

mod against_a_scan {
    //! Any sequence of upserts and removals leaves the index finding exactly the rules a
    //! scan of every held rule finds, each once.
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const LIVESTREAMS: [&str; 3] = [LS, OTHER, "0e2a9c1b-0000-4000-8000-000000000001"];
    const TYPES: [&str; 3] = ["donation.received", "cheer", "*"];

    #[derive(Debug, Clone)]
    enum Change {
        Upsert {
            slot: usize,
            livestream: usize,
            types: Vec<usize>,
            enabled: bool,
        },
        Remove {
            slot: usize,
        },
    }

    fn change() -> impl Strategy<Value = Change> {
        prop_oneof![
            3 => (0..6usize, 0..3usize, prop::collection::vec(0..3usize, 1..4), any::<bool>())
                .prop_map(|(slot, livestream, types, enabled)| Change::Upsert {
                    slot,
                    livestream,
                    types,
                    enabled
                }),
            1 => (0..6usize).prop_map(|slot| Change::Remove { slot }),
        ]
    }

    proptest! {
        #[test]
        fn the_index_finds_what_a_scan_finds(changes in prop::collection::vec(change(), 1..30)) {
            let slots: Vec<Uuid> = (0..6).map(|_| Uuid::new_v4()).collect();
            let mut index = RuleIndex::new();
            let mut held: BTreeMap<Uuid, Arc<CompiledRule>> = BTreeMap::new();
            for change in changes {
                match change {
                    Change::Upsert { slot, livestream, types, enabled } => {
                        let types: Vec<&str> = types.iter().map(|t| TYPES[*t]).collect();
                        let body = json!({"livestream_id": LIVESTREAMS[livestream], "name": "i",
                            "enabled": enabled, "trigger_config": {"event_types": types},
                            "actions": [{"type": "log", "message": "m"}]});
                        let Ok(rule) = CompiledRule::from_json(slots[slot], 1, &body) else {
                            continue;
                        };
                        let rule = Arc::new(rule);
                        if enabled {
                            held.insert(rule.id(), Arc::clone(&rule));
                        } else {
                            held.remove(&rule.id());
                        }
                        index.upsert(rule);
                    }
                    Change::Remove { slot } => {
                        prop_assert_eq!(index.remove(slots[slot]).is_some(), held.remove(&slots[slot]).is_some());
                    }
                }
                prop_assert_eq!(index.len(), held.len());
                for livestream in LIVESTREAMS {
                    for event_type in ["donation.received", "cheer", "raid"] {
                        let e = event(livestream, event_type, json!({}));
                        let scanned: Vec<Uuid> = held.values().filter(|r| r.matches(&e)).map(|r| r.id()).collect();
                        prop_assert_eq!(ids(index.matching(&e)), sorted(scanned), "{} {}", livestream, event_type);
                    }
                }
            }
        }
    }
}
