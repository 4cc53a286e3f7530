//! rules-chaos: the fault suite (`make chaos`). Starts its own PostgreSQL cluster and
//! Redis, runs every scenario against the release api and workers beside it, prints
//! one row per scenario and fails when any breaks a promise.

use anyhow::Context as _;
use clap::Parser;
use rules_e2e::chaos::{report, scenarios, Cluster, Scale};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "Fault scenarios against the real binaries, on servers of the run's own")]
struct Cli {
    /// Only the scenarios CI runs, at CI's size.
    #[arg(long)]
    ci: bool,
    /// Only these scenarios (comma-separated names; `--list` shows them).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
    /// Events queued for a drain scenario.
    #[arg(long)]
    backlog: Option<usize>,
    /// Events queued before the workers start in the burst scenario.
    #[arg(long, default_value_t = 200_000)]
    burst: usize,
    /// Seconds PostgreSQL stays stopped.
    #[arg(long, default_value_t = 20)]
    pg_outage_seconds: u64,
    /// Seconds a receiver misbehaves.
    #[arg(long)]
    receiver_fault_seconds: Option<u64>,
    /// Where logs, snapshots and the report go, kept (default: a new temporary
    /// directory, removed when every scenario passed).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let all = scenarios::all();
    if cli.list {
        for s in &all {
            println!("{}{}", s.name, if s.in_ci { "  (ci)" } else { "" });
        }
        return Ok(());
    }
    let chosen: Vec<_> = all
        .into_iter()
        .filter(|s| {
            (!cli.ci || s.in_ci) && (cli.only.is_empty() || cli.only.iter().any(|o| o == s.name))
        })
        .collect();
    anyhow::ensure!(!chosen.is_empty(), "no scenario chosen (--list shows them)");
    let scale = Scale {
        backlog: cli.backlog.unwrap_or(if cli.ci { 2_000 } else { 5_000 }),
        burst: cli.burst,
        pg_outage: Duration::from_secs(cli.pg_outage_seconds),
        receiver_fault: Duration::from_secs(cli.receiver_fault_seconds.unwrap_or(if cli.ci {
            4
        } else {
            10
        })),
    };
    let keep = cli.out.is_some();
    let dir = cli.out.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("rules-chaos-{}", std::process::id()))
    });
    let mut cluster = Cluster::start(dir.clone(), scale).context("start the run's servers")?;
    eprintln!(
        "rules-chaos: PostgreSQL on {}, Redis on {}, logs in {}",
        cluster.pg.port,
        cluster.redis.port,
        dir.display()
    );
    let mut rows = Vec::new();
    for scenario in chosen {
        eprintln!("── {}", scenario.name);
        let started = std::time::Instant::now();
        match (scenario.run)(&mut cluster).await {
            Ok(row) => {
                eprintln!(
                    "   {} in {:.0} s{}",
                    if row.passed() { "pass" } else { "FAIL" },
                    started.elapsed().as_secs_f64(),
                    row.failures
                        .iter()
                        .map(|f| format!("\n   - {f}"))
                        .collect::<String>()
                );
                rows.push(row);
            }
            Err(e) => {
                eprintln!("   FAIL: {e:#}");
                rows.push(report::Row::broken(scenario.name, format!("{e:#}")));
            }
        }
    }
    let table = report::markdown(&rows);
    println!("{table}");
    std::fs::write(dir.join("report.md"), &table)?;
    let lines: String = rows.iter().map(|r| format!("{}\n", r.to_json())).collect();
    std::fs::write(dir.join("report.jsonl"), lines)?;
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| !r.passed())
        .map(|r| r.scenario.as_str())
        .collect();
    // Servers and receivers stopped before their logs are removed.
    drop(cluster);
    if failed.is_empty() {
        if keep {
            eprintln!(
                "rules-chaos: {} scenarios passed; report in {}",
                rows.len(),
                dir.display()
            );
        } else {
            std::fs::remove_dir_all(&dir)?;
            eprintln!("rules-chaos: {} scenarios passed", rows.len());
        }
        Ok(())
    } else {
        anyhow::bail!(
            "{} of {} scenarios failed: {}; logs and report in {}",
            failed.len(),
            rows.len(),
            failed.join(", "),
            dir.display()
        )
    }
}
