//! Logging set-up shared by the binaries: pretty for people, JSON for pipelines.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `log.filter`.
pub fn init_logging(settings: &LogSettings) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| EnvFilter::try_new(&settings.filter).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    // A second init (tests) is harmless: the first subscriber stays.
    let _ = match settings.format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
    log_panics();
}

/// Panics become one structured error line (message, location, thread) instead
/// of free text on stderr; what the task or process does next is its owner's.
fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        let message: String = message.chars().take(1_000).collect();
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let thread = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_owned();
        tracing::error!(panic = %message, %location, %thread, "panicked");
    }));
}

/// The exit of a binary: success, or one line on stderr naming the binary and the
/// whole error chain (`{:#}` of an `anyhow::Error`), and a failing status.
pub fn exit_status<E: std::fmt::Display>(
    binary: &str,
    result: Result<(), E>,
) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let line = format!("{e:#}");
            let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
            tracing::error!(error = %line, "{binary} stopped");
            eprintln!("{binary}: {line}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Buckets of every latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

static METRICS: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
    std::sync::OnceLock::new();

/// Installs the process-wide Prometheus recorder once (the `metrics` recorder is
/// global); later calls return the same handle, whose `render()` is `/metrics`.
pub fn install_metrics() -> metrics_exporter_prometheus::PrometheusHandle {
    METRICS
        .get_or_init(|| {
            let builder = metrics_exporter_prometheus::PrometheusBuilder::new();
            let recorder = match builder.set_buckets(&LATENCY_BUCKETS) {
                Ok(b) => b.build_recorder(),
                // Only an empty bucket list fails; ours is a constant.
                Err(_) => metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder(),
            };
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed");
            }
            handle
        })
        .clone()
}

/// Connection-pool gauges, set at scrape time by each binary's `/metrics`.
pub fn record_pool_gauges(db: &crate::db::PgPool, redis: &crate::redis::RedisPool) {
    let db = db.status();
    metrics::gauge!("db_pool_connections").set(db.size as f64);
    metrics::gauge!("db_pool_available").set(db.available as f64);
    metrics::gauge!("db_pool_waiting").set(db.waiting as f64);
    let redis = redis.status();
    metrics::gauge!("redis_pool_connections").set(redis.size as f64);
    metrics::gauge!("redis_pool_available").set(redis.available as f64);
    metrics::gauge!("redis_pool_waiting").set(redis.waiting as f64);
}
