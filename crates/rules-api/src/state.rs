//! What every handler may reach: the pools, the settings handlers need, and the
//! lookups every route shares.

use rules_store::db::rules::RuleRow;
use rules_store::db::PgPool;
use rules_store::redis::RedisPool;
use rules_store::Settings;
use uuid::Uuid;

use crate::error::ApiError;

/// What every handler may reach.
#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub redis: RedisPool,
    /// The workers' input streams (`worker.streams`), which backtests replay.
    pub input_streams: std::sync::Arc<Vec<String>>,
    pub max_event_bytes: usize,
    /// Where `publish` actions may write (checked at save).
    pub publish_policy: std::sync::Arc<rules_core::PublishPolicy>,
    /// `webhook.allow_private`: whether an IP-literal webhook URL may be non-global.
    pub allow_private_webhooks: bool,
    /// `retention.stats_minutes_days`: how far back minute buckets can be asked for.
    pub stats_minutes_days: u32,
    /// `retention.stats_days`: how far back the counters remember every execution
    /// (a page of failures is found through them).
    pub stats_days: u32,
}

impl AppState {
    /// Builds the pools and checks both services answer, so a wrong URL fails at start.
    pub async fn connect(settings: &Settings) -> Result<Self, rules_store::ConnectError> {
        let pools = rules_store::Pools::connect(settings).await?;
        Ok(Self::over(pools, settings))
    }

    /// The state over pools that may not answer yet (readiness says so).
    pub fn over(pools: rules_store::Pools, settings: &Settings) -> Self {
        Self {
            db: pools.db,
            redis: pools.redis,
            input_streams: std::sync::Arc::new(settings.worker.streams.clone()),
            max_event_bytes: settings.worker.max_event_bytes,
            publish_policy: std::sync::Arc::new(settings.worker.publish_policy()),
            allow_private_webhooks: settings.webhook.allow_private,
            stats_minutes_days: settings.retention.stats_minutes_days,
            stats_days: settings.retention.stats_days,
        }
    }
}

impl AppState {
    /// A pooled database connection; a pool that cannot give one in time is a 503.
    pub async fn db(&self) -> Result<rules_store::db::PgConn, ApiError> {
        Ok(self
            .db
            .get()
            .await
            .map_err(rules_store::db::DbError::from)?)
    }
}

impl AppState {
    /// What this deployment refuses in a valid rule: publish targets outside the
    /// policy, webhook URLs whose IP literal can never be called.
    pub fn refusals(&self, spec: &rules_core::RuleSpec) -> Vec<rules_core::FieldError> {
        let mut refused = self.publish_policy.check(spec);
        refused.extend(rules_core::address::refused_webhooks(
            spec,
            self.allow_private_webhooks,
        ));
        refused
    }

    /// A pooled Redis connection; Redis unreachable is a 503 (the cause is logged).
    pub async fn redis(&self) -> Result<rules_store::redis::RedisConnection, ApiError> {
        Ok(self.redis.get().await?)
    }

    /// The stored rule, or 404.
    pub async fn find_rule(&self, id: Uuid) -> Result<RuleRow, ApiError> {
        let mut conn = self.db().await?;
        rules_store::db::rules::find(&mut conn, id)
            .await?
            .ok_or_else(|| ApiError::rule_not_found(id))
    }
}
