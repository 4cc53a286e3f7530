//! The worker's small HTTP port: liveness, readiness and Prometheus metrics,
//! including each input stream's consumer-group lag and pending count (what KEDA
//! scales on and what an operator alerts on).

use actix_web::{get, web, App, HttpResponse, HttpServer};
use metrics_exporter_prometheus::PrometheusHandle;
use redis::AsyncCommands;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::context::Context;

/// The worker once it has started; until then readiness answers 503 `starting`.
#[derive(Default)]
pub struct Started(std::sync::OnceLock<Arc<Context>>);

impl Started {
    pub fn set(&self, ctx: Arc<Context>) {
        let _ = self.0.set(ctx);
    }
}

struct State {
    started: Arc<Started>,
    metrics: PrometheusHandle,
}

#[get("/health/live")]
async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

#[get("/health/ready")]
async fn ready(state: web::Data<State>) -> HttpResponse {
    let Some(ctx) = state.started.0.get() else {
        return HttpResponse::ServiceUnavailable()
            .json(json!({"status": "starting", "checks": {}}));
    };
    let (mut ok, mut body) = rules_store::readiness(&ctx.db, &ctx.redis).await;
    if let Some(task) = ctx.failed_task() {
        ok = false;
        body["status"] = json!("failing");
        body["checks"]["tasks"] = json!({"status": "failing", "error": format!("{task} stopped")});
    }
    body["rules_loaded"] = json!(ctx.rules.snapshot().len());
    body["streams"] = json!(ctx.settings.streams);
    body["group"] = json!(ctx.settings.group);
    if ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

#[get("/metrics")]
async fn scrape(state: web::Data<State>) -> HttpResponse {
    if let Some(ctx) = state.started.0.get() {
        record_gauges(ctx).await;
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

/// The gauges read at scrape time: consumer-group lag and pending, pools, in flight.
async fn record_gauges(ctx: &Context) {
    if let Ok(mut conn) = ctx.redis.get().await {
        for stream in &ctx.settings.streams {
            let groups: redis::RedisResult<redis::streams::StreamInfoGroupsReply> =
                conn.xinfo_groups(stream).await;
            if let Ok(groups) = groups {
                for g in groups
                    .groups
                    .iter()
                    .filter(|g| g.name == ctx.settings.group)
                {
                    let labels = [("stream", stream.clone())];
                    metrics::gauge!("consumer_group_pending", &labels).set(g.pending as f64);
                    if let Some(lag) = g.lag {
                        metrics::gauge!("consumer_group_lag", &labels).set(lag as f64);
                    }
                }
            }
        }
    }
    rules_store::telemetry::record_pool_gauges(&ctx.db, &ctx.redis);
    metrics::gauge!("entries_in_flight").set(ctx.in_flight.in_use() as f64);
    metrics::gauge!("entries_in_flight_bytes").set(ctx.in_flight.bytes_in_use() as f64);
}

/// Serves on its own thread (actix runs its own single-threaded runtime) until the
/// returned handle is stopped.
pub fn start(
    bind: SocketAddr,
    started: Arc<Started>,
) -> anyhow::Result<actix_web::dev::ServerHandle> {
    let metrics = rules_store::telemetry::install_metrics();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("worker-http".into())
        .spawn(move || {
            let system = actix_web::rt::System::new();
            let result = system.block_on(async move {
                let state = web::Data::new(State { started, metrics });
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(state.clone())
                        .service(live)
                        .service(ready)
                        .service(scrape)
                })
                .workers(1)
                .disable_signals()
                .bind(bind);
                let server = match server {
                    Ok(s) => s.run(),
                    Err(e) => {
                        let _ = tx.send(Err(anyhow::anyhow!(
                            "cannot listen on worker.http_bind {bind}: {e}"
                        )));
                        return Ok(());
                    }
                };
                let _ = tx.send(Ok(server.handle()));
                server.await
            });
            if let Err(e) = result {
                tracing::error!(error = %e, "worker HTTP server stopped");
            }
        })?;
    match rx.recv() {
        Ok(Ok(handle)) => Ok(handle),
        Ok(Err(e)) => Err(e),
        Err(_) => anyhow::bail!("cannot listen on worker.http_bind {bind}"),
    }
}
