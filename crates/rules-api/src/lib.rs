//! rules-api: routes, state and server set-up, as a library so tests can mount the app.

pub mod health;

use actix_web::{web, App, HttpServer};
use anyhow::Context;
use rules_store::db::PgPool;
use rules_store::redis::RedisPool;
use rules_store::Settings;
use std::time::Duration;

/// What every handler may reach.
#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub redis: RedisPool,
}

impl AppState {
    /// Builds the pools and checks both services answer, so a wrong URL fails at start.
    pub async fn connect(settings: &Settings) -> anyhow::Result<Self> {
        let db = rules_store::db::build_pool(&settings.database)?;
        let redis = rules_store::redis::build_pool(&settings.redis)?;
        rules_store::db::ping(&db)
            .await
            .context("PostgreSQL at database.url is not reachable")?;
        rules_store::redis::ping(&redis)
            .await
            .context("Redis at redis.url is not reachable")?;
        Ok(Self { db, redis })
    }
}

/// Registers every route; shared by the server and the tests.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(health::live).service(health::ready);
}

/// Runs the server until SIGTERM/SIGINT, then drains in-flight requests.
pub async fn serve(settings: Settings, state: AppState) -> anyhow::Result<()> {
    if settings.api.keys.is_empty() && !settings.api.auth_disabled {
        anyhow::bail!(
            "api.keys: no API key configured; set RULES_API_KEYS (or api.auth_disabled = true for a closed development setup)"
        );
    }
    let bind = settings.api.bind;
    let data = web::Data::new(state);
    let server = HttpServer::new(move || App::new().app_data(data.clone()).configure(configure))
        .shutdown_timeout(settings.api.shutdown_timeout_seconds)
        .client_request_timeout(Duration::from_secs(30))
        .bind(bind)
        .with_context(|| format!("cannot listen on api.bind {bind}"))?;
    tracing::info!(%bind, "rules-api listening");
    server.run().await?;
    tracing::info!("rules-api stopped");
    Ok(())
}
