//! The gate in memory, for backtests and for the model test of the gate script: the
//! same decisions `rules-store/src/gate/gate.lua` takes in Redis, step for step, on
//! event times (see [`crate::clock`]). The two are held equal by the property test
//! `crates/rules-store/tests/gate_model.rs`, which runs both on the same schedules.
//!
//! The decision for a (rule, event) pair is taken once: the stream entry that first
//! brings it (`token`) gets the same answer however often it is redelivered; another
//! entry with the same event id is a duplicate.
//!
//! - Threshold (per rule, [`CompiledRule::threshold_generation`] and group): an event
//!   of time `t` counts the distinct events in `(t − window, t]`, itself included;
//!   reaching `count` fires and clears every counted event of time `≤ t`. Events
//!   older than a window before the newest counted time are forgotten, and an event
//!   older than the group's last firing counts toward nothing (`count` 0).
//! - Cooldown (per rule and scope): the execution of an event of time `t` starts it,
//!   `[t, t + cooldown_seconds)`, measured with the rule's current `cooldown_seconds`.
//!   A match inside it is suppressed, and so is an older match (before the start):
//!   out-of-order events never put two executions inside one cooldown.
//! - Stale: a pair outside any cooldown whose every action would be skipped
//!   (`max_age_seconds`) is `Skip`: it takes no cooldown.

use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::BTreeSet;
use uuid::Uuid;

use crate::compiled::{CompiledRule, Scope};
use crate::decision::Decision;
use crate::event::Event;

/// The threshold state of one group.
#[derive(Default)]
struct Count {
    members: BTreeSet<(i64, Uuid)>,
    ids: FxHashSet<Uuid>,
    /// The newest event time counted.
    latest: Option<i64>,
    /// The time of the last firing.
    reset: Option<i64>,
}

/// A running cooldown: who started it, when.
struct Cooldown {
    start: i64,
    holder: Uuid,
}

/// What was decided for a pair, and for which entry.
struct Memo {
    token: Box<str>,
    decision: Decision,
}

/// One pair to decide: the entry that brings it (`token`), the event's time (ms) and
/// whether every action would be skipped as stale.
pub struct Pending<'a> {
    pub rule: &'a CompiledRule,
    pub event: &'a Event,
    pub token: &'a str,
    pub at_ms: i64,
    pub stale: bool,
}

impl<'a> Pending<'a> {
    /// A pair decided at `at_ms`, with actions that are not stale.
    pub fn new(rule: &'a CompiledRule, event: &'a Event, token: &'a str, at_ms: i64) -> Self {
        Self {
            rule,
            event,
            token,
            at_ms,
            stale: false,
        }
    }
}

/// The state of one simulation: decisions, thresholds and cooldowns.
#[derive(Default)]
pub struct Simulation {
    decided: FxHashMap<(Uuid, Uuid), Memo>,
    counts: FxHashMap<(Uuid, Box<str>, Scope), Count>,
    cooldowns: FxHashMap<(Uuid, Scope), Cooldown>,
}

impl Simulation {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decides one pair, in the gate's order: decision memory, threshold, cooldown,
    /// staleness.
    pub fn decide(&mut self, pair: &Pending<'_>) -> Decision {
        let key = (pair.rule.id(), pair.event.id);
        if let Some(memo) = self.decided.get(&key) {
            return if *memo.token == *pair.token {
                memo.decision
            } else {
                Decision::Duplicate
            };
        }
        let decision = self.decide_afresh(pair);
        self.decided.insert(
            key,
            Memo {
                token: pair.token.into(),
                decision,
            },
        );
        decision
    }

    fn decide_afresh(&mut self, pair: &Pending<'_>) -> Decision {
        let (rule, event, at) = (pair.rule, pair.event, pair.at_ms);
        let id = rule.id();
        if let Some(threshold) = &rule.rule().spec.trigger_config.threshold {
            let key = (
                id,
                rule.threshold_generation().into(),
                rule.threshold_group(event),
            );
            let window = i64::from(threshold.window_seconds) * 1000;
            let state = self.counts.entry(key).or_default();
            if state.reset.is_some_and(|reset| at < reset) {
                return Decision::BelowThreshold { count: 0 };
            }
            let latest = state.latest.map_or(at, |l| l.max(at));
            let floor = latest - window;
            // Counted in (floor, at]: empty when the event is itself a window behind.
            let mut count = if floor < at {
                state
                    .members
                    .range((floor + 1, Uuid::nil())..=(at, Uuid::max()))
                    .count() as i64
            } else {
                0
            };
            if !state.ids.contains(&event.id) {
                count += 1;
            }
            state.members.insert((at, event.id));
            state.ids.insert(event.id);
            state.latest = Some(latest);
            forget_up_to(state, floor);
            if count < i64::from(threshold.count) {
                return Decision::BelowThreshold { count };
            }
            state.reset = Some(state.reset.map_or(at, |r| r.max(at)));
            forget_up_to(state, at);
        }
        let cooldown = i64::from(rule.rule().spec.cooldown_seconds) * 1000;
        if cooldown > 0 {
            let mut take = true;
            let scope = (id, rule.cooldown_scope(event));
            if let Some(running) = self.cooldowns.get(&scope) {
                let end = running.start + cooldown;
                if running.holder == event.id {
                    take = false;
                } else if at < end {
                    return Decision::Suppressed {
                        remaining_ms: end - at,
                    };
                }
            }
            if take && !pair.stale {
                self.cooldowns.insert(
                    scope,
                    Cooldown {
                        start: at,
                        holder: event.id,
                    },
                );
            }
        }
        if pair.stale {
            Decision::Skip
        } else {
            Decision::Execute
        }
    }
}

/// Drops the counted events of time `≤ up_to`.
fn forget_up_to(state: &mut Count, up_to: i64) {
    let kept = state.members.split_off(&(up_to + 1, Uuid::nil()));
    for (_, gone) in std::mem::replace(&mut state.members, kept) {
        state.ids.remove(&gone);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(extra: serde_json::Value) -> CompiledRule {
        let mut body = json!({"livestream_id": Uuid::nil(), "name": "s", "trigger_config": {"event_types": ["t"]},
            "actions": [{"type": "log", "message": "m"}]});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        CompiledRule::from_json(Uuid::new_v4(), 1, &body).expect("valid")
    }

    fn event(user: serde_json::Value) -> Event {
        Event::new(
            Uuid::new_v4(),
            "t",
            Uuid::nil(),
            chrono::Utc::now(),
            json!({ "user": user }),
        )
    }

    fn at<'a>(rule: &'a CompiledRule, event: &'a Event, token: &'a str, at_ms: i64) -> Pending<'a> {
        Pending::new(rule, event, token, at_ms)
    }

    #[test]
    fn cooldown_per_key_expires() {
        let r = rule(json!({"cooldown_seconds": 10, "cooldown_key": "data.user"}));
        let mut sim = Simulation::new();
        let (a1, a2, b, a3) = (
            event(json!("a")),
            event(json!("a")),
            event(json!("b")),
            event(json!("a")),
        );
        assert_eq!(sim.decide(&at(&r, &a1, "1", 0)), Decision::Execute);
        assert_eq!(
            sim.decide(&at(&r, &a2, "2", 4_000)),
            Decision::Suppressed {
                remaining_ms: 6_000
            }
        );
        assert_eq!(sim.decide(&at(&r, &b, "3", 5_000)), Decision::Execute);
        assert_eq!(sim.decide(&at(&r, &a3, "4", 10_000)), Decision::Execute);
        // That execution started a new cooldown: 5 s later is inside it.
        let a4 = event(json!("a"));
        assert_eq!(
            sim.decide(&at(&r, &a4, "5", 15_000)),
            Decision::Suppressed {
                remaining_ms: 5_000
            }
        );
        // Its own redelivery gets its decision again; another entry is a duplicate.
        assert_eq!(sim.decide(&at(&r, &a1, "1", 0)), Decision::Execute);
        assert_eq!(
            sim.decide(&at(&r, &a2, "2", 4_000)),
            Decision::Suppressed {
                remaining_ms: 6_000
            }
        );
        assert_eq!(sim.decide(&at(&r, &a1, "9", 0)), Decision::Duplicate);
    }

    #[test]
    fn keys_follow_the_matching_equality() {
        let r = rule(json!({"cooldown_seconds": 10, "cooldown_key": "data.user"}));
        let mut sim = Simulation::new();
        let (n, f, s) = (event(json!(10)), event(json!(10.0)), event(json!("10")));
        assert_eq!(sim.decide(&at(&r, &n, "1", 0)), Decision::Execute);
        assert!(matches!(
            sim.decide(&at(&r, &f, "2", 1)),
            Decision::Suppressed { .. }
        ));
        assert_eq!(sim.decide(&at(&r, &s, "3", 2)), Decision::Execute);
    }

    #[test]
    fn events_older_than_a_running_cooldown_are_suppressed() {
        let r = rule(json!({"cooldown_seconds": 10}));
        let mut sim = Simulation::new();
        let e: Vec<Event> = (0..4).map(|_| event(json!("a"))).collect();
        assert_eq!(sim.decide(&at(&r, &e[0], "1", 100_000)), Decision::Execute);
        for (i, t) in [(1, 95_000), (2, 20_000)] {
            assert!(matches!(
                sim.decide(&at(&r, &e[i], "t", t)),
                Decision::Suppressed { .. }
            ));
        }
        assert_eq!(sim.decide(&at(&r, &e[3], "4", 110_000)), Decision::Execute);
    }

    #[test]
    fn stale_pairs_take_no_cooldown() {
        let r = rule(json!({"cooldown_seconds": 600}));
        let mut sim = Simulation::new();
        let (old, fresh) = (event(json!("a")), event(json!("a")));
        let mut pair = at(&r, &old, "1", 0);
        pair.stale = true;
        assert_eq!(sim.decide(&pair), Decision::Skip);
        assert_eq!(sim.decide(&at(&r, &fresh, "2", 1_000)), Decision::Execute);
    }

    #[test]
    fn threshold_window_slides_and_restarts() {
        let r = rule(
            json!({"trigger_config": {"event_types": ["t"], "threshold": {"count": 3, "window_seconds": 10}}}),
        );
        let mut sim = Simulation::new();
        let events: Vec<Event> = (0..6).map(|_| event(json!("x"))).collect();
        let got: Vec<Decision> = [0, 1_000, 11_500, 12_000, 13_000, 14_000]
            .iter()
            .zip(&events)
            .map(|(t, e)| sim.decide(&at(&r, e, "t", *t)))
            .collect();
        assert_eq!(
            got,
            vec![
                Decision::BelowThreshold { count: 1 },
                Decision::BelowThreshold { count: 2 },
                // The first two left the window.
                Decision::BelowThreshold { count: 1 },
                Decision::BelowThreshold { count: 2 },
                Decision::Execute,
                Decision::BelowThreshold { count: 1 },
            ]
        );
        // An event from before the firing counts toward nothing.
        let early = event(json!("x"));
        assert_eq!(
            sim.decide(&at(&r, &early, "u", 12_999)),
            Decision::BelowThreshold { count: 0 }
        );
    }

    #[test]
    fn threshold_counts_on_event_time_not_arrival() {
        let r = rule(
            json!({"trigger_config": {"event_types": ["t"], "threshold": {"count": 3, "window_seconds": 10}}}),
        );
        let mut sim = Simulation::new();
        let events: Vec<Event> = (0..3).map(|_| event(json!("x"))).collect();
        // An event a window behind the newest counted counts alone.
        let (new, old) = (event(json!("y")), event(json!("y")));
        assert_eq!(
            sim.decide(&at(&r, &new, "n", 100_000)),
            Decision::BelowThreshold { count: 1 }
        );
        assert_eq!(
            sim.decide(&at(&r, &old, "o", 50_000)),
            Decision::BelowThreshold { count: 1 }
        );
        // Three events 20 s apart, decided in one burst: never three in one window.
        for (i, e) in events.iter().enumerate() {
            assert_eq!(
                sim.decide(&at(&r, e, "t", i as i64 * 20_000)),
                Decision::BelowThreshold { count: 1 }
            );
        }
    }

    #[test]
    fn window_and_firing_boundaries() {
        let r = rule(
            json!({"trigger_config": {"event_types": ["t"], "threshold": {"count": 2, "window_seconds": 10}}}),
        );
        let mut sim = Simulation::new();
        let e: Vec<Event> = (0..6).map(|_| event(json!("x"))).collect();
        // Exactly a window apart: the first is out of the second's window (t - w, t].
        assert_eq!(
            sim.decide(&at(&r, &e[0], "0", 0)),
            Decision::BelowThreshold { count: 1 }
        );
        assert_eq!(
            sim.decide(&at(&r, &e[1], "1", 10_000)),
            Decision::BelowThreshold { count: 1 }
        );
        assert_eq!(sim.decide(&at(&r, &e[2], "2", 15_000)), Decision::Execute);
        // At the firing's own time, after it: counts toward the next firing.
        assert_eq!(
            sim.decide(&at(&r, &e[3], "3", 15_000)),
            Decision::BelowThreshold { count: 1 }
        );
        // Exactly a window behind the newest: counts alone.
        assert_eq!(
            sim.decide(&at(&r, &e[4], "4", 25_000)),
            Decision::BelowThreshold { count: 1 }
        );
        assert_eq!(
            sim.decide(&at(&r, &e[5], "5", 15_000)),
            Decision::BelowThreshold { count: 1 }
        );
    }
}
