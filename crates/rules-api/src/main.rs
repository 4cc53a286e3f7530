//! rules-api: the HTTP API of the rule engine (docs/contract.md §3).

use anyhow::Context;
use rules_store::telemetry::exit_status;
use rules_store::Settings;
use std::process::ExitCode;

/// As in the worker: an answer allocates per row it reads and per value it writes
/// (a 90-day analytics answer: ~400 rows, ~90 buckets); with glibc's malloc that was
/// the API's largest cost after the kernel's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    exit_status("rules-api", actix_web::rt::System::new().block_on(run()))
}

async fn run() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    rules_store::telemetry::init_logging(&settings.log);
    settings.log_warnings();
    let pools = rules_store::Pools::build(&settings).context("start-up")?;
    let state = rules_api::AppState::over(pools, &settings);
    rules_api::serve(settings, state).await
}
