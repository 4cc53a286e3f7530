//! rules-api: routes, state and server set-up, as a library so tests mount the
//! same app the binary serves.

pub mod analytics;
pub mod auth;
pub mod body_deadline;
pub mod console;
pub mod content_type;
pub mod draft;
pub mod error;
pub mod health;
pub mod input;
pub mod metrics;
pub mod offload;
pub mod openapi;
pub mod pagination;
pub mod query_guard;
pub mod request;
pub mod routes;
pub mod state;
pub mod unmatched;

pub use state::AppState;

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use rules_store::Settings;
use std::time::Duration;
use utoipa::OpenApi;
use utoipa_actix_web::{scope, AppExt};
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::ApiKeys;
use crate::error::{json_error, path_error, query_error};

/// Content types a JSON body may have; PATCH also takes a merge patch.
fn json_config(limit: usize, merge_patch: bool) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .content_type(move |mime| {
            let essence = mime.essence_str();
            essence == "application/json"
                || (merge_patch && essence == "application/merge-patch+json")
        })
        .error_handler(json_error)
}

/// The whole application: `/api` behind bearer keys, probes, metrics, OpenAPI, docs,
/// the console.
pub fn app(
    state: AppState,
    settings: &Settings,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let api = &settings.api;
    let keys = web::Data::new(ApiKeys::new(&api.keys, api.auth_disabled));
    let limit = api.body_limit_bytes;
    let mut cors = Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers(["authorization", "content-type", "if-match"])
        .expose_headers(["etag", "location"])
        .max_age(3600);
    for origin in &api.cors_origins {
        cors = cors.allowed_origin(origin);
    }
    let (app, mut openapi) = App::new()
        .into_utoipa_app()
        .openapi(openapi::ApiDoc::openapi())
        .app_data(web::Data::new(state))
        .app_data(web::Data::new(metrics::install()))
        .app_data(keys)
        .app_data(web::Data::new(body_deadline::BodyTimeout(
            Duration::from_secs(api.body_timeout_seconds),
        )))
        .app_data(json_config(limit, false))
        .app_data(web::QueryConfig::default().error_handler(query_error))
        .app_data(web::PathConfig::default().error_handler(path_error))
        .service(health::live)
        .service(health::ready)
        .service(
            scope("/api")
                .wrap(from_fn(content_type::require_known))
                .wrap(from_fn(query_guard::refuse_nul))
                .wrap(from_fn(auth::require_key))
                .service(routes::rules::create_rule)
                .service(routes::rules::list_rules)
                .service(routes::dry_run::dry_run)
                .service(routes::backtest::backtest)
                .service(routes::rules::get_rule)
                .service(routes::rules::replace_rule)
                .service(routes::rules::delete_rule)
                .service(routes::history::list_executions)
                .service(routes::history::analytics)
                .service(routes::cooldowns::list_cooldowns)
                .service(routes::cooldowns::clear_cooldowns)
                .service(routes::events::recent_events)
                // Last: an empty-prefix scope matches every path, so it must not hide
                // the resources above; it only gives PATCH its merge-patch body config.
                .service(
                    scope("")
                        .app_data(json_config(limit, true))
                        .service(routes::rules::patch_rule),
                ),
        )
        .split_for_parts();
    utoipa::Modify::modify(&openapi::CommonErrors, &mut openapi);
    utoipa::Modify::modify(&openapi::RuleLinks, &mut openapi);
    let known = web::Data::new(unmatched::KnownRoutes::of(&openapi));
    app.app_data(known)
        .service(metrics::scrape)
        .app_data(web::Data::new(openapi::Document(web::Bytes::from(
            openapi::served(&openapi),
        ))))
        .route("/openapi.json", web::get().to(openapi::document))
        .service(console::root)
        .service(console::file)
        .service(
            SwaggerUi::new("/docs/{_:.*}").config(utoipa_swagger_ui::Config::from("/openapi.json")),
        )
        .default_service(web::to(unmatched::unmatched))
        .wrap(from_fn(body_deadline::enforce))
        .wrap(from_fn(metrics::record))
        .wrap(cors)
        .wrap(tracing_actix_web::TracingLogger::default())
}

/// Runs the server until SIGTERM/SIGINT, then drains in-flight requests.
pub async fn serve(settings: Settings, state: AppState) -> anyhow::Result<()> {
    let pools = rules_store::Pools {
        db: state.db.clone(),
        redis: state.redis.clone(),
    };
    let startup_limit = Duration::from_secs(settings.api.startup_timeout_seconds);
    if settings.api.keys.is_empty() && !settings.api.auth_disabled {
        anyhow::bail!(
            "api.keys: no API key configured; set RULES_API_KEYS (or api.auth_disabled = true for a closed development setup)"
        );
    }
    if settings.api.auth_disabled {
        tracing::warn!("api.auth_disabled is set: /api is served without authentication");
    }
    let bind = settings.api.bind;
    let shutdown = settings.api.shutdown_timeout_seconds;
    let server = HttpServer::new(move || app(state.clone(), &settings))
        .shutdown_timeout(shutdown)
        .client_request_timeout(Duration::from_secs(30))
        .bind(bind)
        .with_context(|| format!("cannot listen on api.bind {bind}"))?;
    tracing::info!(%bind, "rules-api listening");
    let server = server.run();
    let handle = server.handle();
    let mut server = std::pin::pin!(server);
    // Serving (readiness 503) while the services are not up yet; giving up after
    // api.startup_timeout_seconds stops the server and exits 1.
    let waited = tokio::select! {
        done = &mut server => return finished(done),
        waited = pools.wait_until_up(startup_limit) => waited,
    };
    if let Err(e) = waited {
        // Nothing was served but probes: no need to drain. The server future runs
        // its own stop, so it is polled until it has.
        let _ = tokio::join!(handle.stop(false), &mut server);
        return Err(anyhow::Error::new(e).context(format!(
            "not up within api.startup_timeout_seconds ({} s)",
            startup_limit.as_secs()
        )));
    }
    if let Err(e) = pools.require_supported().await {
        let _ = tokio::join!(handle.stop(false), &mut server);
        return Err(e.into());
    }
    finished(server.await)
}

fn finished(done: std::io::Result<()>) -> anyhow::Result<()> {
    done?;
    tracing::info!("rules-api stopped");
    Ok(())
}
