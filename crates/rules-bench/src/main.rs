//! rules-bench: measures the rule engine on a realistic workload or on your own.
//!
//! - `match`: the matcher alone (no I/O): events/s for parsed events and including
//!   the parse of the stream entry, and how many (event, rule) matches were found.
//! - `drain`: a backlog of events in a stream, then one worker started on it; the
//!   rate at which it reads, matches, acts (publish), records and acknowledges.
//! - `latency`: events produced at a steady rate into a running worker; the time
//!   from XADD to the published action, p50/p99.
//! - `rss`: a worker's peak resident memory with N rules loaded.
//!
//! Rules and events are generated (`rules_core::workload`: 10,000 rules over 1,000
//! livestreams, mostly chat messages, about one event in ten firing a rule) or read
//! from JSON-lines files: one rule per line in the API's format, one event envelope
//! per line.

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use rules_core::workload::{Workload, WorkloadSpec};
use rules_core::{CompiledRule, Event, RuleIndex};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

mod cpu;
mod run;
mod slow;

/// The worker's allocator, so the matcher is measured as the worker runs it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(version, about = "Benchmarks of the rule engine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
pub struct Source {
    /// Rules, one JSON object per line (the API's format); default: generated.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Events, one envelope per line; default: generated.
    #[arg(long)]
    events: Option<PathBuf>,
    /// Generated rules.
    #[arg(long, default_value_t = 10_000)]
    rule_count: usize,
    /// Generated livestreams.
    #[arg(long, default_value_t = 1_000)]
    livestreams: usize,
    /// Generated events.
    #[arg(long, default_value_t = 100_000)]
    event_count: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(Subcommand)]
enum Command {
    /// Matcher throughput, no I/O.
    Match {
        #[command(flatten)]
        source: Source,
        /// Events matched per round (a worker batch); rounds repeat over all events.
        #[arg(long, default_value_t = 1_000)]
        batch: usize,
        /// Writes, per event, the rules it matched: one line per event, the 0-based
        /// positions of the rules (in the rules file, or as generated) separated by
        /// spaces, ascending; for comparing results with another matcher's.
        #[arg(long)]
        write_matches: Option<PathBuf>,
    },
    /// Drain rate of a backlog through one worker (needs DATABASE_URL, REDIS_URL and a built rules-worker).
    Drain {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        worker: run::WorkerArgs,
        #[command(flatten)]
        shape: run::DrainShape,
    },
    /// Event-to-execution latency at a steady rate.
    Latency {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        worker: run::WorkerArgs,
        /// Events per second.
        #[arg(long, default_value_t = 5_000)]
        rate: u64,
        /// How long to produce.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// Add a livestream whose rule calls a webhook that answers after this many
        /// milliseconds (a slow but healthy destination); the latency printed stays
        /// that of the other livestreams' publish rules.
        #[arg(long)]
        slow_ms: Option<u64>,
        /// Percent of the events sent to that livestream.
        #[arg(long, default_value_t = 50)]
        slow_share: u64,
        /// Also write a backlog of this many events to a second stream the same
        /// worker reads, just before the paced events start: the latency printed is
        /// the paced events' while the backlog drains beside them.
        #[arg(long, default_value_t = 0)]
        drain_backlog: usize,
        /// The producer writes every this many milliseconds the events of that
        /// interval, in one pipeline, each stamped when the interval starts: 10
        /// writes bursts of a hundredth of a second's events; 1 is closer to many
        /// producers writing one event each.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1000))]
        tick_ms: u64,
    },
    /// Writes generated (or given) events to a stream, for a backtest or a manual test.
    Fill {
        #[command(flatten)]
        source: Source,
        #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379/0")]
        redis_url: String,
        #[arg(long)]
        stream: String,
    },
    /// Peak RSS of a worker with the rules loaded.
    Rss {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        worker: run::WorkerArgs,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Match {
            source,
            batch,
            write_matches,
        } => match_only(&source, batch, write_matches.as_deref()),
        Command::Drain {
            source,
            worker,
            shape,
        } => run::drain(&source, &worker, &shape).await,
        Command::Latency {
            source,
            worker,
            rate,
            seconds,
            slow_ms,
            slow_share,
            drain_backlog,
            tick_ms,
        } => {
            let slow = slow_ms.map(|ms| run::Slow {
                delay: std::time::Duration::from_millis(ms),
                share_percent: slow_share.min(100),
            });
            let load = run::Load {
                per_second: rate,
                seconds,
                slow,
                backlog: drain_backlog,
                tick: std::time::Duration::from_millis(tick_ms),
            };
            run::latency(&source, &worker, &load).await
        }
        Command::Rss { source, worker } => run::rss(&source, &worker).await,
        Command::Fill {
            source,
            redis_url,
            stream,
        } => run::fill(&source, &redis_url, &stream).await,
    }
}

/// Rules (id, API JSON) and events, from files or generated.
/// Rules with their ids, and events.
pub type Loaded = (Vec<(Uuid, Value)>, Vec<Event>);

pub fn load(source: &Source) -> anyhow::Result<Loaded> {
    let generated = (source.rules.is_none() || source.events.is_none()).then(|| {
        Workload::generate(WorkloadSpec {
            livestreams: source.livestreams,
            rules: source.rule_count,
            events: source.event_count,
            seed: source.seed,
        })
    });
    let rules = match &source.rules {
        Some(path) => read_lines(path)?
            .into_iter()
            .map(|v| {
                let id = v
                    .get("id")
                    .and_then(Value::as_str)
                    .and_then(|s| Uuid::parse_str(s).ok())
                    .unwrap_or_else(Uuid::now_v7);
                (id, v)
            })
            .collect(),
        None => generated
            .as_ref()
            .map(|w| w.rules.clone())
            .unwrap_or_default(),
    };
    let events = match &source.events {
        Some(path) => read_lines(path)?
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                Event::from_value(&v, None).with_context(|| format!("event on line {}", i + 1))
            })
            .collect::<anyhow::Result<_>>()?,
        // Fresh event ids per run, for the same reason as fresh rule ids.
        None => generated
            .map(|w| {
                w.events
                    .into_iter()
                    .map(|e| e.copy_as(Uuid::new_v4(), e.livestream_id, e.occurred_at))
                    .collect()
            })
            .unwrap_or_default(),
    };
    Ok((rules, events))
}

fn read_lines(path: &Path) -> anyhow::Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{}:{}", path.display(), i + 1))
        })
        .collect()
}

/// Compiles rules into an index; invalid ones are reported and counted.
pub fn index_of(rules: &[(Uuid, Value)]) -> anyhow::Result<RuleIndex> {
    let mut compiled = Vec::with_capacity(rules.len());
    let mut invalid = 0;
    for (id, body) in rules {
        match CompiledRule::from_json(*id, 1, body) {
            Ok(r) => compiled.push(Arc::new(r)),
            Err(e) => {
                invalid += 1;
                if invalid <= 5 {
                    eprintln!("rule {id} is invalid: {e}");
                }
            }
        }
    }
    if compiled.is_empty() {
        bail!("no valid rules");
    }
    if invalid > 0 {
        eprintln!("{invalid} invalid rules skipped");
    }
    Ok(RuleIndex::from_rules(compiled))
}

/// The events file's lines as read (not re-serialised), when one is given: what the
/// "including the parse" figure parses.
fn event_lines(source: &Source) -> anyhow::Result<Option<Vec<String>>> {
    let Some(path) = &source.events else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    Ok(Some(
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect(),
    ))
}

/// One line per event: the positions of the rules it matched, ascending.
fn write_matches(
    path: &Path,
    rules: &[(Uuid, Value)],
    index: &RuleIndex,
    events: &[Event],
) -> anyhow::Result<()> {
    use std::io::Write as _;
    let position: std::collections::HashMap<Uuid, usize> = rules
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (*id, i))
        .collect();
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?,
    );
    for event in events {
        let mut matched: Vec<usize> = index
            .matching(event)
            .filter_map(|r| position.get(&r.id()).copied())
            .collect();
        matched.sort_unstable();
        let line: Vec<String> = matched.iter().map(usize::to_string).collect();
        writeln!(out, "{}", line.join(" "))?;
    }
    out.flush()?;
    Ok(())
}

fn match_only(source: &Source, batch: usize, matches_to: Option<&Path>) -> anyhow::Result<()> {
    let (rules, events) = load(source)?;
    let before = rss_kb();
    let index = index_of(&rules)?;
    eprintln!(
        "index of {} rules: +{:.1} MB resident",
        index.len(),
        (rss_kb().saturating_sub(before)) as f64 / 1024.0
    );
    // The lines as read when a file is given; generated events as serialised once.
    let entries: Vec<String> = match event_lines(source)? {
        Some(lines) => lines,
        None => events
            .iter()
            .map(|e| serde_json::to_string(e).unwrap_or_default())
            .collect(),
    };
    let batch = batch.max(1);
    let rounds = (2_000_000 / events.len().max(1)).max(1);
    println!(
        "{} rules, {} events, matching in batches of {batch}",
        index.len(),
        events.len()
    );

    let start = Instant::now();
    let mut matches = 0usize;
    for _ in 0..rounds {
        for chunk in events.chunks(batch) {
            for event in chunk {
                matches += index.matching(event).count();
            }
        }
    }
    let parsed = rate(events.len() * rounds, start.elapsed());

    let start = Instant::now();
    let mut matches_parsing = 0usize;
    for _ in 0..rounds {
        for chunk in entries.chunks(batch) {
            for text in chunk {
                let fields = [("event", text.as_bytes())];
                if let Ok(event) = Event::from_stream_fields(&fields, None, 1 << 20) {
                    matches_parsing += index.matching(&event).count();
                }
            }
        }
    }
    let with_parsing = rate(entries.len() * rounds, start.elapsed());

    let start = Instant::now();
    let mut read = 0usize;
    for _ in 0..rounds {
        for text in &entries {
            let fields = [("event", text.as_bytes())];
            read += usize::from(Event::from_stream_fields(&fields, None, 1 << 20).is_ok());
        }
    }
    let parse_only = rate(read, start.elapsed());
    let firing = events
        .iter()
        .filter(|e| index.matching(e).next().is_some())
        .count();
    println!(
        "matches per pass: {} ({:.1}% of events fire a rule)",
        matches / rounds,
        100.0 * firing as f64 / events.len().max(1) as f64
    );
    println!("parsed events:          {parsed:>12.0} events/s (one core)");
    println!("including entry parse:  {with_parsing:>12.0} events/s (one core)");
    println!("entry parse alone:      {parse_only:>12.0} events/s (one core)");
    if let Some(path) = matches_to {
        write_matches(path, &rules, &index, &events)?;
        println!("matches per event written to {}", path.display());
    }
    if matches != matches_parsing {
        bail!("parsed and unparsed runs disagree: {matches} vs {matches_parsing}");
    }
    Ok(())
}

pub fn rate(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// Resident memory of this process, in KiB (Linux).
pub fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
