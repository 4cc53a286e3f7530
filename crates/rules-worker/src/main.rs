//! rules-worker: the stream consumer and action executor.

use rules_store::telemetry::exit_status;
use rules_store::Settings;
use std::process::ExitCode;

/// The worker allocates per event (parsed JSON, batches, records); with glibc's
/// malloc a fifth of its time went to the allocator, mimalloc makes that cheap.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let huge_pages = without_transparent_huge_pages();
    exit_status("rules-worker", run(huge_pages).await)
}

async fn run(huge_pages: nix::Result<()>) -> anyhow::Result<()> {
    let settings = Settings::load()?;
    rules_store::telemetry::init_logging(&settings.log);
    settings.log_warnings();
    if let Err(e) = huge_pages {
        tracing::warn!(error = %e, "transparent huge pages stay on for this process");
    }
    rules_worker::run(settings).await
}

/// Turns transparent huge pages off for this process (`PR_SET_THP_DISABLE`), as
/// `MIMALLOC_ALLOW_THP=0` would. mimalloc asks for them on its memory, and the
/// kernel then zeroes a whole 2 MiB page in the fault of its first touch, inside
/// whatever stage of a batch touched it. Events paced at 20,000 a second waited
/// 12–13 ms at p99 in the worker with them and 7–8 ms without; a drain runs as
/// fast either way (README, "Paced latency without transparent huge pages").
fn without_transparent_huge_pages() -> nix::Result<()> {
    #[cfg(target_os = "linux")]
    return nix::sys::prctl::set_thp_disable(true);
    #[cfg(not(target_os = "linux"))]
    Ok(())
}
