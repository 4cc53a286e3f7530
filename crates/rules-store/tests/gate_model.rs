//! The gate's model test: random schedules of deliveries (out-of-order event times,
//! duplicates in other entries, crashes between the gate and the record followed by
//! redeliveries, a replay of the stream from `0`) run through a model of the
//! worker's stages (recorded? → gate → record) twice: once with the real gate script
//! on a real Redis, once with the Rust simulation the backtest uses. Both must give
//! the same answer to every delivery, and what they record must equal a reference
//! model written from the contract's words (docs/contract.md §1, §2) with plain
//! lists, and keep its promises: every pair decided exactly once, nothing lost,
//! never two executions inside one cooldown, no suppression without a cooldown
//! that covers it, each event counted once.

use proptest::prelude::*;
use rules_core::simulate::{Pending, Simulation};
use rules_core::{CompiledRule, Decision, Event};
use rules_store::gate;
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use uuid::Uuid;

const LS: &str = "0e2a9c1b-0000-4000-8000-00000000abcd";
/// Event times are offsets (seconds) from here.
const BASE_MS: i64 = 1_764_000_000_000;

/// One event of a schedule: its time (s from `BASE_MS`), its key, and whether its
/// actions are stale for the rules that have `max_age_seconds` ([`STALE_RULES`]).
#[derive(Debug, Clone)]
struct Ev {
    time_s: i64,
    key: u8,
    stale: bool,
}

/// One delivery: event `event` in entry `copy` (0: its own entry; others carry the
/// same event id), and whether the worker dies after the gate, before the record.
#[derive(Debug, Clone)]
struct Delivery {
    event: usize,
    copy: u8,
    crash: bool,
}

#[derive(Debug, Clone)]
struct Schedule {
    events: Vec<Ev>,
    deliveries: Vec<Delivery>,
    replay: bool,
}

fn schedule() -> impl Strategy<Value = Schedule> {
    prop::collection::vec(
        (0i64..60, 0u8..2, prop::bool::weighted(0.15)).prop_map(|(time_s, key, stale)| Ev {
            time_s,
            key,
            stale,
        }),
        1..14,
    )
    .prop_flat_map(|events| {
        let n = events.len();
        let delivery = (0..n, prop::bool::weighted(0.2), prop::bool::weighted(0.25)).prop_map(
            |(event, dup, crash)| Delivery {
                event,
                copy: u8::from(dup),
                crash,
            },
        );
        (
            Just(events),
            prop::collection::vec(delivery, 1..30),
            any::<bool>(),
        )
    })
    .prop_map(|(events, mut deliveries, replay)| {
        // Every event is delivered in its own entry at least once, in stream order.
        let mut all: Vec<Delivery> = (0..events.len())
            .map(|event| Delivery {
                event,
                copy: 0,
                crash: false,
            })
            .collect();
        for (i, d) in deliveries.drain(..).enumerate() {
            let at = (i * 7) % (all.len() + 1);
            all.insert(at, d);
        }
        Schedule {
            events,
            deliveries: all,
            replay,
        }
    })
}

/// The rules of [`rules`] whose actions have `max_age_seconds`: an event marked
/// stale is stale for them.
const STALE_RULES: [usize; 2] = [3, 4];

/// The rules of every schedule (fresh ids per case, so cases share no state).
fn rules() -> Vec<CompiledRule> {
    let specs = [
        json!({"cooldown_seconds": 10, "cooldown_key": "data.k"}),
        json!({"trigger_config": {"event_types": ["t"], "threshold": {"count": 3, "window_seconds": 10}}}),
        json!({"cooldown_seconds": 4, "trigger_config": {"event_types": ["t"],
            "threshold": {"count": 2, "window_seconds": 5, "group_by": "data.k"}}}),
        json!({"cooldown_seconds": 6, "actions": [{"type": "log", "message": "m", "max_age_seconds": 60}]}),
        // Neither threshold nor cooldown: the script's short form.
        json!({"actions": [{"type": "log", "message": "m", "max_age_seconds": 60}]}),
    ];
    specs
        .into_iter()
        .map(|extra| {
            let mut body = json!({"livestream_id": LS, "name": "model", "trigger_config": {"event_types": ["t"]},
                "actions": [{"type": "log", "message": "m"}]});
            if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
                for (k, v) in e {
                    b.insert(k.clone(), v.clone());
                }
            }
            CompiledRule::from_json(Uuid::new_v4(), 1, &body).expect("valid rule")
        })
        .collect()
}

fn events(schedule: &Schedule) -> Vec<Event> {
    schedule
        .events
        .iter()
        .map(|e| {
            Event::new(
                Uuid::new_v4(),
                "t",
                Uuid::parse_str(LS).expect("uuid"),
                rules_core::clock::from_ms(BASE_MS + e.time_s * 1000),
                json!({ "k": format!("k{}", e.key) }),
            )
        })
        .collect()
}

/// What a run of the worker model produced.
#[derive(Debug, PartialEq)]
struct Run {
    /// The gate's answer to every pair it was asked, in order.
    answers: Vec<Decision>,
    /// The recorded decision of each (rule, event) pair.
    recorded: HashMap<(usize, usize), Decision>,
    /// Pairs in the order their decision was taken (first answered, not as a duplicate).
    order: Vec<(usize, usize)>,
}

/// What decides: the gate script on Redis, or the simulation.
enum Gate<'s> {
    Redis(redis::aio::MultiplexedConnection),
    Memory(&'s mut Simulation),
}

impl Gate<'_> {
    async fn decide(&mut self, pairs: &[Pending<'_>]) -> Vec<Decision> {
        match self {
            Gate::Redis(conn) => gate::decide(conn, pairs, 60_000)
                .await
                .expect("gate round trip")
                .into_iter()
                .map(|d| d.expect("pair decided"))
                .collect(),
            Gate::Memory(sim) => pairs.iter().map(|p| sim.decide(p)).collect(),
        }
    }
}

/// The worker's stages for one schedule, with `gate` deciding each entry's pairs.
async fn drive(
    schedule: &Schedule,
    rules: &[CompiledRule],
    events: &[Event],
    mut gate: Gate<'_>,
) -> Run {
    let mut queue: VecDeque<Delivery> = schedule.deliveries.iter().cloned().collect();
    if schedule.replay {
        // The group recreated from `0`: every entry again, in stream order.
        queue.extend((0..events.len()).map(|event| Delivery {
            event,
            copy: 0,
            crash: false,
        }));
    }
    let mut run = Run {
        answers: Vec::new(),
        recorded: HashMap::new(),
        order: Vec::new(),
    };
    while let Some(delivery) = queue.pop_front() {
        let token = format!("events/{}-{}", delivery.event, delivery.copy);
        let e = delivery.event;
        // Recorded pairs are skipped before the gate (the PostgreSQL lookup).
        let open: Vec<usize> = (0..rules.len())
            .filter(|r| !run.recorded.contains_key(&(*r, e)))
            .collect();
        let pairs: Vec<Pending<'_>> = open
            .iter()
            .map(|r| Pending {
                rule: &rules[*r],
                event: &events[e],
                token: &token,
                at_ms: BASE_MS + schedule.events[e].time_s * 1000,
                stale: STALE_RULES.contains(r) && schedule.events[e].stale,
            })
            .collect();
        let decisions = gate.decide(&pairs).await;
        run.answers.extend(decisions.iter().copied());
        for (r, decision) in open.iter().zip(&decisions) {
            if *decision != Decision::Duplicate && !run.order.contains(&(*r, e)) {
                run.order.push((*r, e));
            }
        }
        if delivery.crash {
            // Killed before the record: the entry stays pending and comes back later.
            queue.push_back(Delivery {
                crash: false,
                ..delivery
            });
            continue;
        }
        for (r, decision) in open.into_iter().zip(decisions) {
            if decision == Decision::Duplicate {
                continue;
            }
            assert!(
                run.recorded.insert((r, e), decision).is_none(),
                "recorded twice"
            );
        }
    }
    run
}

/// The contract's words as plain lists, applied to pairs in the order they were
/// decided: what each decision must have been.
fn reference(
    schedule: &Schedule,
    rules: &[CompiledRule],
    order: &[(usize, usize)],
) -> HashMap<(usize, usize), Decision> {
    #[derive(Default)]
    struct Group {
        counted: Vec<i64>,
        latest: Option<i64>,
        last_firing: Option<i64>,
    }
    let mut groups: HashMap<(usize, u8), Group> = HashMap::new();
    let mut cooldown_start: HashMap<(usize, u8), i64> = HashMap::new();
    let mut expected = HashMap::new();
    for &(r, e) in order {
        let ev = &schedule.events[e];
        let t = ev.time_s * 1000;
        let spec = &rules[r].rule().spec;
        let decision = 'decide: {
            if let Some(th) = &spec.trigger_config.threshold {
                let key = if th.group_by.is_some() { ev.key } else { 0 };
                let g = groups.entry((r, key)).or_default();
                // Older than the group's last firing: counts toward nothing.
                if g.last_firing.is_some_and(|f| t < f) {
                    break 'decide Decision::BelowThreshold { count: 0 };
                }
                let window = i64::from(th.window_seconds) * 1000;
                let latest = g.latest.map_or(t, |l| l.max(t));
                g.latest = Some(latest);
                // Forgotten: a window before the newest counted time.
                g.counted.retain(|c| *c > latest - window);
                let n = g
                    .counted
                    .iter()
                    .filter(|c| **c > t - window && **c <= t)
                    .count() as i64
                    + 1;
                if t > latest - window {
                    g.counted.push(t);
                }
                if n < i64::from(th.count) {
                    break 'decide Decision::BelowThreshold { count: n };
                }
                // It fires; the count starts again after it.
                g.last_firing = Some(g.last_firing.map_or(t, |f| f.max(t)));
                g.counted.retain(|c| *c > t);
            }
            let stale = STALE_RULES.contains(&r) && ev.stale;
            if spec.cooldown_seconds > 0 {
                let key = if spec.cooldown_key.is_some() {
                    ev.key
                } else {
                    0
                };
                let cd = i64::from(spec.cooldown_seconds) * 1000;
                if let Some(start) = cooldown_start.get(&(r, key)) {
                    if t < start + cd {
                        break 'decide Decision::Suppressed {
                            remaining_ms: start + cd - t,
                        };
                    }
                }
                if !stale {
                    cooldown_start.insert((r, key), t);
                }
            }
            if stale {
                Decision::Skip
            } else {
                Decision::Execute
            }
        };
        expected.insert((r, e), decision);
    }
    expected
}

/// The promises, checked on what was recorded.
fn check_promises(schedule: &Schedule, rules: &[CompiledRule], run: &Run) {
    // Nothing lost: every pair of every event is decided and recorded, once.
    assert_eq!(run.recorded.len(), rules.len() * schedule.events.len());
    assert_eq!(run.order.len(), run.recorded.len());
    for (r, rule) in rules.iter().enumerate() {
        let spec = &rule.rule().spec;
        let cd = i64::from(spec.cooldown_seconds) * 1000;
        if cd == 0 {
            continue;
        }
        // Never two executions inside one cooldown of one key.
        for key in 0..2u8 {
            let mut times: Vec<i64> = (0..schedule.events.len())
                .filter(|e| spec.cooldown_key.is_none() || schedule.events[*e].key == key)
                .filter(|e| run.recorded.get(&(r, *e)) == Some(&Decision::Execute))
                .map(|e| schedule.events[e].time_s * 1000)
                .collect();
            times.sort_unstable();
            assert!(
                times.windows(2).all(|w| w[1] - w[0] >= cd),
                "rule {r}: executions {times:?} inside one cooldown of {cd} ms"
            );
        }
    }
}

async fn redis() -> redis::aio::MultiplexedConnection {
    let url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    redis::Client::open(url)
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("redis")
}

async fn forget(conn: &mut redis::aio::MultiplexedConnection, rules: &[CompiledRule]) {
    for rule in rules {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("re:{{{}}}:*", rule.id()))
            .query_async(conn)
            .await
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query_async(conn).await;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn script_simulation_and_reference_agree(schedule in schedule()) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let rules = rules();
            let events = events(&schedule);
            let mut conn = redis().await;
            let in_redis = drive(&schedule, &rules, &events, Gate::Redis(conn.clone())).await;
            forget(&mut conn, &rules).await;
            let mut sim = Simulation::new();
            let in_memory = drive(&schedule, &rules, &events, Gate::Memory(&mut sim)).await;

            assert_eq!(in_redis.answers, in_memory.answers, "script and simulation answer alike");
            assert_eq!(in_redis.recorded, in_memory.recorded);
            let expected = reference(&schedule, &rules, &in_redis.order);
            assert_eq!(in_redis.recorded, expected, "the contract's reference");
            check_promises(&schedule, &rules, &in_redis);
        });
    }
}

#[test]
fn the_model_sees_a_crash_redelivery_and_a_late_duplicate() {
    // A fixed schedule through the simulation alone: e0 executes and the worker dies
    // before recording; e1 (same key) comes inside the cooldown; e0 comes back and
    // is still the execution, never suppressed by its own cooldown.
    let schedule = Schedule {
        events: vec![
            Ev {
                time_s: 0,
                key: 0,
                stale: false,
            },
            Ev {
                time_s: 3,
                key: 0,
                stale: false,
            },
        ],
        deliveries: vec![
            Delivery {
                event: 0,
                copy: 0,
                crash: true,
            },
            Delivery {
                event: 1,
                copy: 0,
                crash: false,
            },
            Delivery {
                event: 0,
                copy: 1,
                crash: false,
            },
        ],
        replay: true,
    };
    let rules = rules();
    let events = events(&schedule);
    let mut sim = Simulation::new();
    let run = futures_lite(drive(&schedule, &rules, &events, Gate::Memory(&mut sim)));
    assert_eq!(run.recorded[&(0, 0)], Decision::Execute);
    assert!(matches!(run.recorded[&(0, 1)], Decision::Suppressed { .. }));
    assert_eq!(run.recorded, reference(&schedule, &rules, &run.order));
    check_promises(&schedule, &rules, &run);
}

fn futures_lite<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}
