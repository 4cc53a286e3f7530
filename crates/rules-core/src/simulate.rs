//! Thresholds and cooldowns simulated in memory, for backtests: the same decisions
//! the worker's gate script (`rules-store/src/gate/gate.lua`) takes in Redis, on a
//! clock given by the caller (the stream entries' times). Kept next to the script's
//! semantics by the backtest tests, which replay what the worker did.

use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::VecDeque;
use uuid::Uuid;

use crate::compiled::{CompiledRule, Scope};
use crate::decision::Decision;
use crate::event::Event;

#[derive(Default)]
struct Window {
    arrivals: VecDeque<(i64, Uuid)>,
    members: FxHashSet<Uuid>,
}

/// The state of one backtest: thresholds, cooldowns and seen events, per rule.
#[derive(Default)]
pub struct Simulation {
    windows: FxHashMap<(Uuid, Scope), Window>,
    fired: FxHashMap<(Uuid, Scope), (Uuid, i64)>,
    cooldowns: FxHashMap<(Uuid, Scope), (Uuid, i64)>,
    seen: FxHashSet<(Uuid, Uuid)>,
}

impl Simulation {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decides a matching event at `now_ms`, in the gate's order: claim, threshold,
    /// cooldown.
    pub fn decide(&mut self, rule: &CompiledRule, event: &Event, now_ms: i64) -> Decision {
        let id = rule.id();
        if !self.seen.insert((id, event.id)) {
            return Decision::Duplicate;
        }
        if let Some(threshold) = &rule.rule().spec.trigger_config.threshold {
            let group = (id, rule.threshold_group(event));
            let window_ms = i64::from(threshold.window_seconds) * 1000;
            let refired = self
                .fired
                .get(&group)
                .is_some_and(|(holder, until)| *holder == event.id && *until > now_ms);
            if !refired {
                let window = self.windows.entry(group.clone()).or_default();
                while window
                    .arrivals
                    .front()
                    .is_some_and(|(t, _)| *t <= now_ms - window_ms)
                {
                    if let Some((_, old)) = window.arrivals.pop_front() {
                        window.members.remove(&old);
                    }
                }
                if window.members.insert(event.id) {
                    window.arrivals.push_back((now_ms, event.id));
                }
                let n = window.arrivals.len() as i64;
                if n < i64::from(threshold.count) {
                    return Decision::BelowThreshold { count: n };
                }
                self.windows.remove(&group);
                self.fired.insert(group, (event.id, now_ms + window_ms));
            }
        }
        let cooldown_ms = i64::from(rule.rule().spec.cooldown_seconds) * 1000;
        if cooldown_ms > 0 {
            let scope = (id, rule.cooldown_scope(event));
            match self.cooldowns.get(&scope) {
                Some((holder, until)) if *until > now_ms && *holder != event.id => {
                    return Decision::Suppressed {
                        remaining_ms: until - now_ms,
                    };
                }
                Some((holder, until)) if *until > now_ms && *holder == event.id => {}
                _ => {
                    self.cooldowns
                        .insert(scope, (event.id, now_ms + cooldown_ms));
                }
            }
        }
        Decision::Execute
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

    fn event(user: &str) -> Event {
        Event::new(
            Uuid::new_v4(),
            "t",
            Uuid::nil(),
            chrono::Utc::now(),
            json!({"user": user}),
        )
    }

    #[test]
    fn cooldown_per_key_expires() {
        let r = rule(json!({"cooldown_seconds": 10, "cooldown_key": "data.user"}));
        let mut sim = Simulation::new();
        assert_eq!(sim.decide(&r, &event("a"), 0), Decision::Execute);
        assert_eq!(
            sim.decide(&r, &event("a"), 4_000),
            Decision::Suppressed {
                remaining_ms: 6_000
            }
        );
        assert_eq!(sim.decide(&r, &event("b"), 5_000), Decision::Execute);
        assert_eq!(sim.decide(&r, &event("a"), 10_000), Decision::Execute);
        let e = event("c");
        assert_eq!(sim.decide(&r, &e, 11_000), Decision::Execute);
        assert_eq!(sim.decide(&r, &e, 11_001), Decision::Duplicate);
    }

    #[test]
    fn threshold_window_slides_and_restarts() {
        let r = rule(
            json!({"trigger_config": {"event_types": ["t"], "threshold": {"count": 3, "window_seconds": 10}}}),
        );
        let mut sim = Simulation::new();
        let got: Vec<Decision> = [0, 1_000, 11_500, 12_000, 13_000, 14_000]
            .iter()
            .map(|t| sim.decide(&r, &event("x"), *t))
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
    }
}
