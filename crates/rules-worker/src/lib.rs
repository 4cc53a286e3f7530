//! rules-worker: a member of the consumer group on every input stream. Reads
//! batches, matches them against the rules in memory, gates thresholds and
//! cooldowns in Redis, runs the actions, records executions and counters in
//! PostgreSQL, and acknowledges only what is committed.
//!
//! Tasks: a reader (XREADGROUP), a claimer (entries of dead consumers), a processor
//! (parse → match → gate → spawn actions), action tasks (bounded by the in-flight
//! limit), a recorder (commit → XACK), the rule keeper (LISTEN + reconcile) and the
//! HTTP port. SIGTERM stops the reader and claimer; in-flight work finishes,
//! commits and acknowledges; then the process exits 0.

pub mod actions;
pub mod consume;
pub mod context;
pub mod dead_letter;
pub mod http;
pub mod maintenance;
pub mod pipeline;
pub mod process;
pub mod record;
pub mod rules;
pub mod shutdown;

use anyhow::Context as _;
use rules_store::redis::{OwnConnection, SharedConnection};
use rules_store::Settings;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use crate::actions::webhook::WebhookClient;
use crate::actions::Executor;
use crate::context::{consumer_name, Context};

/// Runs the worker until SIGTERM/SIGINT.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    // First, so a SIGTERM during start-up is a clean stop once started, not a kill.
    let token = shutdown::on_signal();
    // TLS for https webhooks, with the ring provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let worker = settings.worker.clone();
    // The health port first: during a wait for the services it answers 503.
    let started = Arc::new(http::Started::default());
    let http = http::start(worker.http_bind, Arc::clone(&started))?;
    let pools = rules_store::Pools::build(&settings)?;
    let database = rules_store::db::target(&settings.database)?;
    let limit = Duration::from_secs(worker.startup_timeout_seconds);
    let up = tokio::select! {
        _ = token.cancelled() => {
            http.stop(true).await;
            return Ok(());
        }
        up = pools.wait_until_up(limit) => up,
    };
    if let Err(e) = up {
        http.stop(true).await;
        return Err(anyhow::Error::new(e).context(format!(
            "not up within worker.startup_timeout_seconds ({} s)",
            limit.as_secs()
        )));
    }
    if let Err(e) = pools.require_supported().await {
        http.stop(true).await;
        return Err(e.into());
    }
    let rules_store::Pools { db, redis } = pools;

    let index = rules::load(&db, None).await.context("loading rules")?;
    tracing::info!(rules = index.len(), "rules loaded");
    let rules = Arc::new(rules::Rules::new(index));

    {
        let mut conn = redis.get().await.context("redis connection")?;
        for stream in &worker.streams {
            rules_store::streams::ensure_group(&mut conn, stream, &worker.group, "$").await?;
        }
    }
    let consumer = consumer_name(worker.consumer.as_deref());
    let executor = Executor {
        webhooks: WebhookClient::new(&settings.webhook, redis.clone())?,
        publisher: Arc::new(SharedConnection::new(redis.clone())),
        publish_maxlen: worker.publish_maxlen,
        publish_max_attempts: worker.publish_max_attempts,
        publish_policy: worker.publish_policy(),
    };
    let ctx = Arc::new(Context {
        in_flight: pipeline::InFlight::new(worker.max_in_flight, worker.max_in_flight_bytes),
        lanes: pipeline::Lanes::new(worker.max_in_flight_per_destination),
        settings: worker.clone(),
        retention: settings.retention,
        db: db.clone(),
        gate_link: OwnConnection::new(settings.redis.clone()),
        ack_link: SharedConnection::new(redis.clone()),
        redis,
        rules: Arc::clone(&rules),
        executor,
        consumer: consumer.clone(),
        failed: std::sync::OnceLock::new(),
    });

    started.set(Arc::clone(&ctx));
    let keeper = supervise(
        &ctx,
        "rule keeper",
        &token,
        rules::keep_current(
            rules,
            db.clone(),
            database,
            Duration::from_secs(worker.reconcile_seconds),
            token.clone(),
        ),
    );

    let maintainer = supervise(
        &ctx,
        "database maintainer",
        &token,
        maintenance::keep_maintained(db, settings.retention, token.clone()),
    );

    let mut inlets = pipeline::Inlets::new(worker.batch_size);
    let reading = consume::read_loops(
        Arc::clone(&ctx),
        settings.redis.clone(),
        &mut inlets,
        token.clone(),
    );
    let claiming = consume::claim_loop(Arc::clone(&ctx), inlets.sender(), token.clone());
    let (done_tx, done_rx) = mpsc::channel(worker.max_in_flight.max(1));
    let tracker = TaskTracker::new();
    // Work already read is finished even after SIGTERM; only reading stops.
    let work_token = tokio_util::sync::CancellationToken::new();
    let processor = supervise(
        &ctx,
        "processor",
        &token,
        process::process_batches(
            Arc::clone(&ctx),
            inlets,
            done_tx,
            tracker.clone(),
            work_token.clone(),
        ),
    );
    let recorder = supervise(
        &ctx,
        "recorder",
        &token,
        record::record_loop(Arc::clone(&ctx), done_rx, work_token.clone()),
    );
    let reader = supervise(&ctx, "reader", &token, reading);
    let claimer = supervise(&ctx, "claimer", &token, claiming);
    let heartbeat = supervise(
        &ctx,
        "heartbeat",
        &token,
        consume::heartbeat_loop(Arc::clone(&ctx), work_token.clone()),
    );
    tracing::info!(%consumer, streams = ?worker.streams, group = %worker.group, "rules-worker running");

    token.cancelled().await;
    tracing::info!("stopping: finishing in-flight work");
    let _ = tokio::join!(reader, claimer);
    let drain = async {
        let _ = processor.await;
        tracker.close();
        tracker.wait().await;
        let _ = recorder.await;
    };
    if tokio::time::timeout(Duration::from_secs(worker.shutdown_timeout_seconds), drain)
        .await
        .is_err()
    {
        tracing::warn!("shutdown timeout: unfinished entries stay pending and will be redelivered");
        work_token.cancel();
    }
    work_token.cancel();
    let _ = tokio::join!(keeper, heartbeat, maintainer);
    http.stop(true).await;
    if let Some(task) = ctx.failed_task() {
        anyhow::bail!("essential task '{task}' stopped; exiting so the worker is restarted");
    }
    tracing::info!("rules-worker stopped");
    Ok(())
}

/// Spawns an essential task. If it ends (returns or panics) while the worker is
/// meant to run, that is logged as an error, readiness fails from then on, and the
/// worker stops (finishing what it can) and exits non-zero, so the orchestrator
/// restarts it: no task dies silently.
fn supervise<F>(
    ctx: &Arc<Context>,
    name: &'static str,
    running: &tokio_util::sync::CancellationToken,
    task: F,
) -> tokio::task::JoinHandle<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let inner = tokio::spawn(task);
    let (ctx, running) = (Arc::clone(ctx), running.clone());
    tokio::spawn(async move {
        let ended = inner.await;
        if running.is_cancelled() {
            return;
        }
        match ended {
            Ok(()) => tracing::error!(task = name, "essential task ended unexpectedly"),
            Err(e) => tracing::error!(task = name, error = %e, "essential task failed"),
        }
        ctx.fail(name);
        running.cancel();
    })
}
