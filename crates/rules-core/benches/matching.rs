//! Matching throughput on the generated workload (10,000 rules over 1,000
//! livestreams): events already parsed, and including the parse of the stream entry.
//!
//! `make bench` (or `cargo bench -p rules-core --features workload --bench matching`).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rules_core::workload::{Workload, WorkloadSpec};
use rules_core::{CompiledRule, Event, RuleIndex};
use std::hint::black_box;
use std::sync::Arc;

fn index_of(workload: &Workload) -> RuleIndex {
    RuleIndex::from_rules(workload.rules.iter().map(|(id, body)| {
        Arc::new(CompiledRule::from_json(*id, 1, body).expect("generated rules are valid"))
    }))
}

fn matching(c: &mut Criterion) {
    // One worker batch of events: parsed events are matched right after parsing,
    // while they are still in cache, so the benchmark does the same.
    let workload = Workload::generate(WorkloadSpec {
        events: 1_000,
        ..WorkloadSpec::default()
    });
    let index = index_of(&workload);
    let json = workload.event_json();
    let matches: usize = workload
        .events
        .iter()
        .map(|e| index.matching(e).count())
        .sum();
    eprintln!(
        "workload: {} rules, {} events, {} matches ({:.1}% of events fire a rule)",
        index.len(),
        workload.events.len(),
        matches,
        100.0
            * workload
                .events
                .iter()
                .filter(|e| index.matching(e).next().is_some())
                .count() as f64
            / workload.events.len() as f64
    );

    let mut group = c.benchmark_group("matching");
    group.throughput(Throughput::Elements(workload.events.len() as u64));
    group.bench_function("parsed_events", |b| {
        b.iter(|| {
            let mut n = 0;
            for event in &workload.events {
                n += index.matching(black_box(event)).count();
            }
            n
        })
    });
    group.bench_function("with_entry_parsing", |b| {
        b.iter(|| {
            let mut n = 0;
            for text in &json {
                let fields = [("event", text.as_bytes())];
                if let Ok(event) = Event::from_stream_fields(black_box(&fields), None, 65_536) {
                    n += index.matching(&event).count();
                }
            }
            n
        })
    });
    group.finish();

    c.bench_function("index_upsert_one_rule", |b| {
        let mut index = index.clone();
        let (id, body) = &workload.rules[0];
        let rule = Arc::new(CompiledRule::from_json(*id, 2, body).expect("valid"));
        b.iter(|| index.upsert(Arc::clone(&rule)))
    });
}

criterion_group!(benches, matching);
criterion_main!(benches);
