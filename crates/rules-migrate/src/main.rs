//! rules-migrate: applies the embedded migrations to `database.url`.
//!
//! `rules-migrate` applies what is pending; `rules-migrate status` (or `--status`)
//! lists applied and pending migrations; `rules-migrate maintain` makes the decision
//! log's partitions ahead and drops the expired ones, and rolls the analytics
//! minutes up into quarter hours (`retention.*`; a CronJob, and the workers do it
//! hourly too). Safe to run from several places at once.
//! Exits non-zero with one line on stderr when the database is unreachable or a
//! migration fails.

use clap::{Parser, Subcommand};
use rules_store::db::migrations;
use rules_store::Settings;
use std::process::ExitCode;

#[derive(Parser)]
#[command(version, about = "Applies the rule engine's database migrations")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// List applied and pending migrations instead of applying them.
    #[arg(long)]
    status: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations (the default).
    Run,
    /// List applied and pending migrations.
    Status,
    /// Make the decision log's partitions ahead and drop the expired ones; roll the
    /// analytics minutes up into quarter hours and delete the expired ones.
    Maintain,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    rules_store::telemetry::exit_status("rules-migrate", run(cli).await)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load()?;
    let target = rules_store::db::target(&settings.database)?;
    let status = cli.status || matches!(cli.command, Some(Command::Status));
    if matches!(cli.command, Some(Command::Maintain)) {
        use rules_store::db::retention::{maintain, roll_up_stats, PartitionChange};
        let mut conn = target.connect().await?;
        let changes = maintain(&mut conn, settings.retention, None).await?;
        for change in &changes {
            match change {
                PartitionChange::Created(name) => println!("created  {name}"),
                PartitionChange::Dropped(name) => println!("dropped  {name}"),
            }
        }
        println!(
            "decision log: {} partition(s) changed; {} day(s) kept, {} ahead",
            changes.len(),
            settings.retention.executions_days,
            settings.retention.partitions_ahead_days
        );
        let rolled = roll_up_stats(&mut conn, settings.retention, None).await?;
        println!(
            "analytics: {} minute row(s) rolled up into quarter hours, {} quarter hour(s) expired, \
             {} minute row(s) of an ended day sorted by rule; minutes kept {} day(s), counters {}",
            rolled.minutes_rolled_up,
            rolled.quarters_expired,
            rolled.minutes_sorted,
            settings.retention.stats_minutes_days,
            settings.retention.stats_days
        );
    } else if status {
        let status = migrations::status(&target).await?;
        for name in &status.applied {
            println!("applied  {name}");
        }
        for name in &status.pending {
            println!("pending  {name}");
        }
        println!(
            "{} applied, {} pending",
            status.applied.len(),
            status.pending.len()
        );
    } else {
        let applied = migrations::run_pending(&target).await?;
        for name in &applied {
            println!("applied  {name}");
        }
        println!(
            "{} migration(s) applied; the schema is up to date",
            applied.len()
        );
    }
    Ok(())
}
