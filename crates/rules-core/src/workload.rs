//! A generator of realistic rules and events (feature `workload`), shared by the
//! criterion benchmarks and the load tool so both measure the same thing.
//!
//! The shape follows a livestreaming platform: rules spread over livestreams, most
//! events chat messages, then follows, cheers, donations, subscriptions and raids.
//! Rule conditions are tuned so about one event in ten fires a rule. Everything is
//! seeded, so two runs generate the same workload.

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::event::Event;

#[derive(Debug, Clone, Copy)]
pub struct WorkloadSpec {
    pub livestreams: usize,
    pub rules: usize,
    pub events: usize,
    pub seed: u64,
}

impl Default for WorkloadSpec {
    fn default() -> Self {
        Self {
            livestreams: 1_000,
            rules: 10_000,
            events: 100_000,
            seed: 42,
        }
    }
}

/// Rules in the API's JSON format (with an `id`) and events, ready to use.
pub struct Workload {
    pub livestreams: Vec<Uuid>,
    pub rules: Vec<(Uuid, Value)>,
    pub events: Vec<Event>,
}

/// Event types with their share of traffic, in percent.
const MIX: [(&str, u32); 6] = [
    ("chat.message", 70),
    ("follow", 10),
    ("cheer", 7),
    ("donation.received", 5),
    ("subscription.created", 5),
    ("raid", 3),
];

const WORDS: [&str; 12] = [
    "gg", "hype", "lol", "nice", "pog", "wow", "hello", "clip", "again", "what", "love", "team",
];

impl Workload {
    pub fn generate(spec: WorkloadSpec) -> Self {
        let mut rng = fastrand::Rng::with_seed(spec.seed);
        let livestreams: Vec<Uuid> = (0..spec.livestreams.max(1))
            .map(|_| Uuid::from_u128(rng.u128(..)))
            .collect();
        let rules = (0..spec.rules)
            .map(|i| {
                // Each livestream gets one rule of each kind before a second of any.
                let ls = livestreams[i % livestreams.len()];
                let kind = i / livestreams.len();
                (
                    Uuid::from_u128(rng.u128(..)),
                    rule_json(&mut rng, i, kind, ls),
                )
            })
            .collect();
        let base = Utc
            .timestamp_opt(1_764_000_000, 0)
            .single()
            .unwrap_or_else(Utc::now);
        let events = (0..spec.events)
            .map(|i| {
                let ls = livestreams[rng.usize(..livestreams.len())];
                let at = base + chrono::Duration::milliseconds(i as i64);
                let (event_type, data) = event_data(&mut rng);
                Event::new(Uuid::from_u128(rng.u128(..)), event_type, ls, at, data)
            })
            .collect();
        Self {
            livestreams,
            rules,
            events,
        }
    }

    /// Each event as the JSON a producer writes in the `event` field.
    pub fn event_json(&self) -> Vec<String> {
        self.events
            .iter()
            .map(|e| serde_json::to_string(e).unwrap_or_default())
            .collect()
    }
}

fn rule_json(rng: &mut fastrand::Rng, i: usize, kind: usize, livestream: Uuid) -> Value {
    let (types, condition): (Value, Value) = match kind % 10 {
        // Chat commands and keywords: most rules, each rarely true.
        0 => (
            json!(["chat.message"]),
            json!({"field": "data.message", "op": "starts_with", "value": format!("!{}", WORDS[rng.usize(..WORDS.len())])}),
        ),
        1 => (
            json!(["chat.message"]),
            json!({"all": [
            {"field": "data.message", "op": "contains", "value": "hype train", "ignore_case": true},
            {"field": "data.user.badges", "op": "contains", "value": "subscriber"}]}),
        ),
        2 => (
            json!(["chat.message"]),
            json!({"field": "data.message", "op": "matches", "value": r"(?i)\b(giveaway|raffle)\s+#\d+"}),
        ),
        3 => (
            json!(["follow"]),
            json!({"all": [
            {"not": {"field": "data.user.name", "op": "in", "value": ["bot1", "bot2", "spam"]}},
            {"field": "data.user.tier", "op": "gte", "value": 3}]}),
        ),
        4 => (
            json!(["donation.received"]),
            json!({"all": [
            {"field": "data.amount", "op": "gte", "value": 10},
            {"any": [{"field": "data.currency", "op": "in", "value": ["USD", "EUR"]},
                     {"field": "data.message", "op": "contains", "value": "hype", "ignore_case": true}]}]}),
        ),
        5 => (
            json!(["subscription.created"]),
            json!({"field": "data.tier", "op": "gte", "value": 3}),
        ),
        6 => (
            json!(["cheer"]),
            json!({"field": "data.bits", "op": "gte", "value": 5000}),
        ),
        7 => (
            json!(["raid"]),
            json!({"field": "data.viewers", "op": "gte", "value": 100}),
        ),
        8 => (
            json!(["donation.received", "raid"]),
            json!({"field": "data.user.tier", "op": "eq", "value": 3}),
        ),
        _ => (
            json!(["chat.message"]),
            json!({"all": [
            {"field": "data.user.id", "op": "eq", "value": format!("u-{}", rng.u32(..1000))},
            {"field": "data.message", "op": "ends_with", "value": "?"}]}),
        ),
    };
    json!({
        "livestream_id": livestream,
        "name": format!("rule {i}"),
        "trigger_config": {"event_types": types, "condition": condition},
        "actions": [{"type": "publish", "stream": "overlay:alerts",
                     "payload": {"text": "{{ event.data.user.name }} triggered {{ rule.name }}"}}],
        "cooldown_seconds": if i.is_multiple_of(3) { 0 } else { 10 },
        "cooldown_key": if i % 3 == 1 { Value::from("data.user.id") } else { Value::Null },
    })
}

fn event_data(rng: &mut fastrand::Rng) -> (&'static str, Value) {
    let mut roll = rng.u32(..100);
    let mut kind = MIX[0].0;
    for (name, share) in MIX {
        if roll < share {
            kind = name;
            break;
        }
        roll -= share;
    }
    let user = json!({
        "id": format!("u-{}", rng.u32(..100_000)),
        "name": format!("viewer{}", rng.u32(..100_000)),
        "tier": rng.u32(..4),
        "badges": if rng.u32(..4) == 0 { json!(["subscriber"]) } else { json!([]) },
    });
    let data = match kind {
        "chat.message" => {
            let mut words: Vec<&str> = (0..rng.usize(1..8))
                .map(|_| WORDS[rng.usize(..WORDS.len())])
                .collect();
            if rng.u32(..100) < 10 {
                words.insert(0, ["!gg", "!hype", "!clip", "!love"][rng.usize(..4)]);
            }
            if rng.u32(..100) < 2 {
                words.extend(["hype", "train"]);
            }
            json!({"message": words.join(" "), "user": user})
        }
        "donation.received" => json!({"amount": rng.u32(1..100) as f64 + 0.5,
            "currency": (["USD", "EUR", "GBP", "JPY"])[rng.usize(..4)], "user": user, "message": "gg"}),
        "subscription.created" => {
            json!({"tier": rng.u32(1..4), "months": rng.u32(1..24), "user": user})
        }
        "cheer" => json!({"bits": ([100, 500, 1000, 5000])[rng.usize(..4)], "user": user}),
        "raid" => json!({"viewers": rng.u32(1..200), "from": user}),
        _ => json!({"user": user}),
    };
    (kind, data)
}
