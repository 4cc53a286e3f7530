//! What a scenario's run left behind, compared with the reference: the rules'
//! decisions simulated over the events that reached the stream
//! ([`rules_core::simulate::Simulation`], the gate's own algorithm on event time),
//! against what PostgreSQL recorded and what the receivers and the output stream got.

use diesel::QueryDsl;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use rules_core::simulate::{Pending, Simulation};
use rules_core::{Decision, Event};
use rules_store::streams::{self, Body};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

use super::stage::{Stage, GROUP};
use crate::receiver::Received;

/// How a pair ended up, recorded or expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Executed,
    Suppressed,
    Counted,
}

/// The counts the report shows (see `report::Row` for their meaning).
#[derive(Debug, Default, Clone)]
pub struct Counts {
    pub sent: usize,
    pub expected: usize,
    pub executed: usize,
    pub failed: usize,
    pub lost: usize,
    pub differ: usize,
    pub extra: usize,
    pub broker_lost: usize,
    pub repeated: usize,
    pub missing_effects: usize,
    pub foreign_effects: usize,
    pub pending: usize,
    pub dead_letters: usize,
}

/// Compares everything. `probe_sent` are the probe's events, `calls` the calls both
/// receivers got for this scenario.
pub async fn compare(
    stage: &mut Stage,
    probe_sent: &[(Uuid, i64)],
    calls: &[Received],
) -> anyhow::Result<Counts> {
    let (stream, out_stream, dead_letter) = (stage.stream(), stage.out(), stage.dead_letter());
    let (entries, out, dead, pending) = {
        let conn = stage.redis().await?;
        let entries = whole_stream(conn, &stream).await?;
        let out = whole_stream(conn, &out_stream).await?;
        let dead: usize = redis::cmd("XLEN")
            .arg(&dead_letter)
            .query_async(conn)
            .await?;
        let groups: redis::streams::StreamInfoGroupsReply = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&stream)
            .query_async(conn)
            .await?;
        let pending = groups
            .groups
            .iter()
            .find(|g| g.name == GROUP)
            .map_or(0, |g| g.pending);
        (entries, out, dead, pending)
    };
    let recorded = recorded(&stage.db_url).await?;
    let decided_events: HashSet<Uuid> = recorded.keys().map(|(_, e)| *e).collect();

    // The events that reached the stream, in its order, with their tokens; then those
    // decided but no longer there (a Redis that lost data after deciding them).
    let mut events: Vec<(String, i64, Event)> = Vec::new();
    let mut in_stream = HashSet::new();
    for entry in &entries {
        let Body::Fields(fields) = &entry.body else {
            continue;
        };
        let at = entry.id.time().unwrap_or_else(chrono::Utc::now);
        let Ok(event) = Event::from_stream_fields(fields, Some(at), usize::MAX) else {
            continue;
        };
        in_stream.insert(event.id);
        let at_ms = rules_core::clock::event_time_ms(event.occurred_at, at);
        events.push((streams::token(&stream, entry.id), at_ms, event));
    }
    let sent: Vec<Uuid> = stage
        .sent
        .iter()
        .copied()
        .chain(probe_sent.iter().map(|(id, _)| *id))
        .collect();
    let broker_lost = sent
        .iter()
        .filter(|id| !in_stream.contains(id) && !decided_events.contains(id))
        .count();

    let mut sim = Simulation::new();
    let mut expected: HashMap<(Uuid, Uuid), Class> = HashMap::new();
    for (token, at_ms, event) in &events {
        for rule in stage.rules.iter().filter(|r| r.matches(event)) {
            let class = match sim.decide(&Pending::new(rule, event, token, *at_ms)) {
                Decision::Execute | Decision::Skip => Class::Executed,
                Decision::Suppressed { .. } => Class::Suppressed,
                Decision::BelowThreshold { .. } => Class::Counted,
                Decision::Duplicate => continue,
            };
            expected.insert((rule.id(), event.id), class);
        }
    }
    // Decided, then lost by Redis: the reference cannot replay them in order; they
    // are expected as recorded when a rule of the scenario matches their livestream.
    for ((rule, event), (class, _)) in &recorded {
        if !in_stream.contains(event) && stage.rules.iter().any(|r| r.id() == *rule) {
            expected.entry((*rule, *event)).or_insert(*class);
        }
    }

    let mut counts = Counts {
        sent: sent.len(),
        broker_lost,
        pending,
        dead_letters: dead,
        ..Counts::default()
    };
    for (pair, class) in &expected {
        if *class == Class::Executed {
            counts.expected += 1;
        }
        match recorded.get(pair) {
            None => counts.lost += 1,
            Some((got, _)) if got != class => counts.differ += 1,
            Some(_) => {}
        }
    }
    counts.extra = recorded
        .keys()
        .filter(|p| !expected.contains_key(p))
        .count();

    // Side effects: webhooks by `Idempotency-Key`, published entries by `execution_id`.
    let executions: HashMap<Uuid, &Status> = recorded
        .iter()
        .filter(|(_, (class, _))| *class == Class::Executed)
        .map(|((rule, event), (_, status))| (rules_core::execution_id(*rule, *event), status))
        .collect();
    counts.executed = executions.len();
    counts.failed = executions
        .values()
        .filter(|s| ***s == Status::Failed)
        .count();
    let mut effects: HashMap<Uuid, usize> = HashMap::new();
    let keys = calls
        .iter()
        .filter_map(|c| c.header("idempotency-key").map(str::to_owned));
    let published = out.iter().filter_map(|e| match &e.body {
        Body::Fields(f) => f
            .iter()
            .find(|(k, _)| k.as_slice() == b"execution_id")
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned()),
        _ => None,
    });
    for key in keys.chain(published) {
        match key.parse::<Uuid>() {
            Ok(id) => *effects.entry(id).or_default() += 1,
            Err(_) => counts.foreign_effects += 1,
        }
    }
    for (id, n) in &effects {
        counts.repeated += n - 1;
        if !executions.contains_key(id) {
            counts.foreign_effects += 1;
        }
    }
    counts.missing_effects = executions
        .iter()
        .filter(|(id, status)| ***status == Status::Succeeded && !effects.contains_key(id))
        .count();
    Ok(counts)
}

/// Every entry of `stream`, read in pages.
async fn whole_stream(
    conn: &mut redis::aio::MultiplexedConnection,
    stream: &str,
) -> anyhow::Result<Vec<streams::StreamEntry>> {
    const PAGE: usize = 10_000;
    let mut all = Vec::new();
    let mut from = "-".to_owned();
    loop {
        let reply: redis::Value = redis::cmd("XRANGE")
            .arg(stream)
            .arg(&from)
            .arg("+")
            .arg("COUNT")
            .arg(PAGE)
            .query_async(conn)
            .await?;
        let page = streams::parse_entries("XRANGE", reply)?;
        let full = page.len() == PAGE;
        if let Some(last) = page.last() {
            from = format!("({}", last.id);
        }
        all.extend(page);
        if !full {
            return Ok(all);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Succeeded,
    Failed,
    Skipped,
    /// Suppressed or counted: no execution.
    None,
}

/// Every decided pair in the scenario's database.
async fn recorded(db_url: &str) -> anyhow::Result<HashMap<(Uuid, Uuid), (Class, Status)>> {
    use rules_store::db::schema::{
        rule_executions as e, rule_suppressions as s, rule_threshold_counts as t,
    };
    let mut conn = AsyncPgConnection::establish(db_url).await?;
    let mut all = HashMap::new();
    let executions: Vec<(Uuid, Uuid, String)> = e::table
        .select((e::rule_id, e::event_id, e::status))
        .load(&mut conn)
        .await?;
    for (rule, event, status) in executions {
        let status = match status.as_str() {
            "succeeded" => Status::Succeeded,
            "failed" => Status::Failed,
            _ => Status::Skipped,
        };
        all.insert((rule, event), (Class::Executed, status));
    }
    let suppressed: Vec<(Uuid, Uuid)> = s::table
        .select((s::rule_id, s::event_id))
        .load(&mut conn)
        .await?;
    for pair in suppressed {
        all.insert(pair, (Class::Suppressed, Status::None));
    }
    let counted: Vec<(Uuid, Uuid)> = t::table
        .select((t::rule_id, t::event_id))
        .load(&mut conn)
        .await?;
    for pair in counted {
        all.insert(pair, (Class::Counted, Status::None));
    }
    Ok(all)
}
