//! Configuration shared by every binary (docs/contract.md §4).
//!
//! Layers, each overriding the one before: built-in defaults; a TOML file (the path
//! in `RULES_CONFIG`, else `rules.toml` in the working directory when it exists); the
//! conventional `DATABASE_URL` and `REDIS_URL`; then `RULES__SECTION__KEY` variables
//! (double underscores, since keys contain single ones). Unknown keys are errors, so
//! a misspelt setting stops the binary instead of being silently ignored. Every error
//! names the setting.

use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The defaults, as a TOML document: also the reference for the README.
pub const DEFAULTS_TOML: &str = include_str!("../defaults.toml");

/// A setting that is missing, malformed or out of range.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(String);

impl ConfigError {
    fn setting(name: &str, message: impl std::fmt::Display) -> Self {
        Self::new(format!("{name}: {message}"))
    }

    /// Every configuration error goes through here: secrets are redacted.
    fn new(message: String) -> Self {
        Self(redact(&message))
    }
}

/// Settings whose values are secret (and the variables that set them).
const SECRET_SETTINGS: [&str; 8] = [
    "database.url",
    "redis.url",
    "api.keys",
    "webhook.signing_secret",
    "worker.webhook_signing_secret",
    "DATABASE_URL",
    "REDIS_URL",
    "RULES_API_KEYS",
];

/// A configuration error as it may be printed: without the source lines a TOML
/// parse error quotes (they may hold a password), without the password of any URL,
/// and, when it names a secret setting, without any quoted value.
fn redact(message: &str) -> String {
    let lines: Vec<&str> = message
        .lines()
        .filter(|line| {
            let t = line.trim_start();
            let gutter = t
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .trim_start();
            !(t.starts_with('|') || (gutter.starts_with('|') && gutter.len() < t.len()))
        })
        .collect();
    let mut text = lines.join(" ");
    text = redact_url_passwords(&text);
    if SECRET_SETTINGS.iter().any(|name| text.contains(name)) {
        text = redact_quoted(&text);
    }
    text
}

/// `scheme://user:password@host` → `scheme://user:<redacted>@host`.
fn redact_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '`')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match (authority.find(':'), authority.rfind('@')) {
            (Some(colon), Some(at)) if colon < at => {
                out.push_str(&authority[..=colon]);
                out.push_str("<redacted>");
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Every `"..."` → `"<redacted>"`.
fn redact_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut inside = false;
    for c in text.chars() {
        if c == '"' {
            if inside {
                out.push_str("<redacted>\"");
            } else {
                out.push('"');
            }
            inside = !inside;
        } else if !inside {
            out.push(c);
        }
    }
    out
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub log: LogSettings,
    pub api: ApiSettings,
    pub worker: WorkerSettings,
    pub webhook: WebhookSettings,
    pub retention: RetentionSettings,
    /// What loading found worth a warning (deprecated names); binaries log these
    /// once logging is set up.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `postgres://user@host:port/rules_db`
    pub url: String,
    /// Most connections one process holds.
    pub pool_size: usize,
    /// How long a request waits for a free connection before failing.
    pub acquire_timeout_ms: u64,
    /// How long opening a new connection may take.
    pub connect_timeout_ms: u64,
    /// PEM file of the CA certificates that sign the server's certificate, for
    /// `sslmode=verify-ca` / `verify-full` (or `require`, which then checks the chain).
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
}

/// How long the decision log keeps a day, how far ahead its days are made, and how
/// long analytics counters are kept per minute and in all.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    /// Days of executions, suppressions and threshold counts kept (whole UTC days
    /// before today); a redelivery or replay is recognised as long as its day is kept.
    pub executions_days: u32,
    /// Days ahead whose partitions exist before they are written to.
    pub partitions_ahead_days: u32,
    /// Days analytics counters are kept per minute; older minutes are rolled up into
    /// quarter hours (minute buckets can be asked for this far back).
    pub stats_minutes_days: u32,
    /// Days analytics counters are kept in all (as quarter hours past
    /// `stats_minutes_days`); more than `stats_minutes_days`.
    pub stats_days: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://host:port/db`; with `cluster`, the seed nodes, comma-separated.
    pub url: String,
    /// The servers are a Redis Cluster: the cluster client, routing by slot.
    pub cluster: bool,
    pub pool_size: usize,
    pub acquire_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    /// How long a reply may take before its command fails.
    pub response_timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, for development.
    Pretty,
    /// One JSON object per line, for production log pipelines.
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `info,rules_worker=debug`; `RUST_LOG` overrides it.
    pub filter: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    /// Address the HTTP API listens on.
    pub bind: SocketAddr,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_timeout_seconds: u64,
    /// Accepted bearer keys; also `RULES_API_KEYS`, comma-separated.
    pub keys: Vec<String>,
    /// Serve `/api` without authentication (only for a closed development setup).
    pub auth_disabled: bool,
    /// Largest accepted request body; larger is 413.
    pub body_limit_bytes: usize,
    /// Origins allowed by CORS (the dashboard's); empty: no CORS headers.
    pub cors_origins: Vec<String>,
    /// How long a request body may take to arrive; slower is answered 408.
    pub body_timeout_seconds: u64,
    /// How long an API starting during an outage waits for PostgreSQL and Redis
    /// (readiness answers 503 meanwhile) before it gives up and exits 1.
    pub startup_timeout_seconds: u64,
}

/// How the worker calls webhooks (`[webhook]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Standard Webhooks signing secret (`whsec_<base64>`); unset: requests are not signed.
    pub signing_secret: Option<String>,
    /// Allow webhooks to private, loopback, link-local and other non-global addresses.
    pub allow_private: bool,
    /// Attempts per webhook action (1 = no retry).
    pub max_attempts: u32,
    /// Follow up to this many redirects (each target checked like the first); 0: none.
    pub max_redirects: usize,
    /// Consecutive transient failures of one destination (host) that open its
    /// circuit breaker: calls then fail fast until the cool-off ends.
    pub breaker_failures: u32,
    /// How long an open breaker stays open before one probe call decides.
    pub breaker_cooloff_seconds: u64,
    /// Calls per second to one destination, across all workers; 0: unlimited.
    pub rate_limit_per_second: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    /// Input streams (shards) this worker reads.
    pub streams: Vec<String>,
    /// Consumer group shared by every worker replica.
    pub group: String,
    /// Where unreadable entries go.
    pub dead_letter_stream: String,
    /// This replica's consumer name; default `POD_NAME`, else the host name.
    pub consumer: Option<String>,
    /// Address of the worker's health and metrics port.
    pub http_bind: SocketAddr,
    /// Largest accepted stream entry, in bytes.
    pub max_event_bytes: usize,
    /// Entries read per XREADGROUP.
    pub batch_size: usize,
    /// How long one XREADGROUP waits for entries (keep it short: 1–5 s).
    pub block_ms: u64,
    /// Most entries read but not yet acknowledged; reading pauses beyond it.
    pub max_in_flight: usize,
    /// Most bytes of entries read but not yet acknowledged (their fields as read,
    /// and 128 per entry); reading pauses beyond it. What bounds the worker's
    /// memory when entries are large; `max_in_flight` does when they are small.
    pub max_in_flight_bytes: usize,
    /// Entries in flight that call one webhook destination (host:port), at most: a
    /// slow destination fills its own lane, never the whole in-flight budget.
    pub max_in_flight_per_destination: usize,
    /// How long an entry may sit unacknowledged with another consumer before this
    /// one claims it (that consumer is presumed dead).
    pub claim_idle_ms: u64,
    /// How often pending entries of dead consumers are looked for.
    pub claim_interval_ms: u64,
    /// An entry delivered this many times goes to the dead-letter stream.
    pub max_deliveries: u64,
    /// How long Redis remembers each (rule, event) decision: a redelivery of an entry
    /// whose decision was taken but not yet recorded in PostgreSQL (a crash between
    /// the gate and the record) gets the same decision within it. Once recorded, the
    /// decision is PostgreSQL's and holds for as long as the log is kept. At least
    /// twice `claim_idle_ms × max_deliveries`, the longest redelivery the settings allow.
    pub dedupe_seconds: u64,
    /// How often the rule index is reconciled with the database (the backstop to
    /// change notifications).
    pub reconcile_seconds: u64,
    /// Approximate MAXLEN of streams written by `publish` actions.
    pub publish_maxlen: u64,
    /// Approximate MAXLEN of the dead-letter stream.
    pub dead_letter_maxlen: u64,
    /// How long a worker starting during an outage waits for PostgreSQL and Redis
    /// (readiness answers 503 meanwhile) before it gives up and exits 1.
    pub startup_timeout_seconds: u64,
    /// Attempts of one `publish` on transient Redis errors (backoff from 100 ms to 2 s).
    pub publish_max_attempts: u32,
    /// When not empty, `publish` actions may only write streams starting with one
    /// of these (never the service's own keys, input or dead-letter streams).
    pub publish_allowed_prefixes: Vec<String>,
    /// How long to wait for in-flight actions on SIGTERM before stopping anyway
    /// (their entries stay pending and are redelivered).
    pub shutdown_timeout_seconds: u64,
    /// Deprecated spellings of the `[webhook]` settings (`worker.webhook_<name>`),
    /// honoured for one release with a warning.
    #[serde(default)]
    pub webhook_signing_secret: Option<String>,
    #[serde(default)]
    pub webhook_allow_private: Option<bool>,
    #[serde(default)]
    pub webhook_max_attempts: Option<u32>,
    #[serde(default)]
    pub webhook_max_redirects: Option<usize>,
    #[serde(default)]
    pub webhook_breaker_failures: Option<u32>,
    #[serde(default)]
    pub webhook_breaker_cooloff_seconds: Option<u64>,
    #[serde(default)]
    pub webhook_rate_limit_per_second: Option<u32>,
}

impl WorkerSettings {
    /// Where this deployment's `publish` actions may write.
    pub fn publish_policy(&self) -> rules_core::PublishPolicy {
        let mut reserved = self.streams.clone();
        reserved.push(self.dead_letter_stream.clone());
        rules_core::PublishPolicy {
            reserved,
            allowed_prefixes: self.publish_allowed_prefixes.clone(),
        }
    }
}

impl Settings {
    /// Loads from the process environment and the config file it points to.
    pub fn load() -> Result<Self, ConfigError> {
        let vars: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(&vars)
    }

    /// Loads from the given environment variables (tests pass their own).
    pub fn load_from(vars: &[(String, String)]) -> Result<Self, ConfigError> {
        let var = |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            DEFAULTS_TOML,
            config::FileFormat::Toml,
        ));
        match var("RULES_CONFIG") {
            Some(path) => {
                let path = PathBuf::from(path);
                if !path.is_file() {
                    return Err(ConfigError::setting(
                        "RULES_CONFIG",
                        format!("no file at {}", path.display()),
                    ));
                }
                builder =
                    builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
            }
            None => {
                builder = builder.add_source(config::File::with_name("rules.toml").required(false));
            }
        }
        // The conventional variables, then RULES__SECTION__KEY above them; both
        // read by config's own Environment source (lists comma-separated).
        let conventional: HashMap<String, String> = [
            ("DATABASE__URL", var("DATABASE_URL")),
            ("REDIS__URL", var("REDIS_URL")),
            ("API__KEYS", var("RULES_API_KEYS")),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
        .collect();
        let prefixed: HashMap<String, String> = vars
            .iter()
            .filter(|(k, _)| k.starts_with("RULES__"))
            .cloned()
            .collect();
        let (conventional, empty_a) = tidy_lists(conventional, "");
        let (prefixed, empty_b) = tidy_lists(prefixed, "RULES__");
        let mut builder = builder
            .add_source(environment(None).source(Some(conventional)))
            .add_source(environment(Some("RULES")).source(Some(prefixed)));
        // An empty list variable means an empty list (config would read one "").
        for name in empty_a.into_iter().chain(empty_b) {
            builder = builder
                .set_override(name.as_str(), Vec::<String>::new())
                .map_err(|e| ConfigError::setting(&name, e))?;
        }
        let mut settings: Settings = builder
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(|e| ConfigError::new(e.to_string()))?;
        settings.apply_deprecated_names();
        settings.validate()?;
        Ok(settings)
    }

    /// `worker.webhook_<name>` (the old spelling) sets `webhook.<name>`, with a warning.
    fn apply_deprecated_names(&mut self) {
        let (w, hook) = (&mut self.worker, &mut self.webhook);
        let mut used = Vec::new();
        if let Some(v) = w.webhook_signing_secret.take() {
            hook.signing_secret = Some(v);
            used.push("signing_secret");
        }
        macro_rules! moved {
            ($old:ident, $new:ident) => {
                if let Some(v) = w.$old.take() {
                    hook.$new = v;
                    used.push(stringify!($new));
                }
            };
        }
        moved!(webhook_allow_private, allow_private);
        moved!(webhook_max_attempts, max_attempts);
        moved!(webhook_max_redirects, max_redirects);
        moved!(webhook_breaker_failures, breaker_failures);
        moved!(webhook_breaker_cooloff_seconds, breaker_cooloff_seconds);
        moved!(webhook_rate_limit_per_second, rate_limit_per_second);
        for name in used {
            self.warnings.push(format!(
                "worker.webhook_{name} is deprecated: use webhook.{name} (RULES__WEBHOOK__{}); the old name goes in the next release",
                name.to_ascii_uppercase()
            ));
        }
    }

    /// Logs what loading found worth a warning; call once logging is set up.
    pub fn log_warnings(&self) {
        for warning in &self.warnings {
            tracing::warn!("{warning}");
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        check_url(
            "database.url",
            &self.database.url,
            &["postgres", "postgresql"],
        )?;
        let redis_urls = if self.redis.cluster {
            crate::redis::cluster_seeds(&self.redis.url)
        } else {
            vec![self.redis.url.as_str()]
        };
        if redis_urls.is_empty() {
            return Err(ConfigError::setting(
                "redis.url",
                "names no cluster node (seed URLs, comma-separated)",
            ));
        }
        for url in redis_urls {
            check_url("redis.url", url, &["redis", "rediss", "redis+unix", "unix"])?;
        }
        crate::db::target(&self.database).map_err(|e| ConfigError::setting("database.url", e))?;
        check_positive("database.pool_size", self.database.pool_size)?;
        check_positive("retention.executions_days", self.retention.executions_days)?;
        check_positive(
            "retention.partitions_ahead_days",
            self.retention.partitions_ahead_days,
        )?;
        check_positive(
            "retention.stats_minutes_days",
            self.retention.stats_minutes_days,
        )?;
        if self.retention.stats_days <= self.retention.stats_minutes_days {
            return Err(ConfigError::setting(
                "retention.stats_days",
                format!(
                    "must be more than retention.stats_minutes_days ({})",
                    self.retention.stats_minutes_days
                ),
            ));
        }
        check_positive("redis.pool_size", self.redis.pool_size)?;
        check_positive(
            "database.acquire_timeout_ms",
            self.database.acquire_timeout_ms,
        )?;
        check_positive(
            "database.connect_timeout_ms",
            self.database.connect_timeout_ms,
        )?;
        check_positive("redis.acquire_timeout_ms", self.redis.acquire_timeout_ms)?;
        check_positive("redis.connect_timeout_ms", self.redis.connect_timeout_ms)?;
        check_positive("redis.response_timeout_ms", self.redis.response_timeout_ms)?;
        check_positive("worker.max_event_bytes", self.worker.max_event_bytes)?;
        check_positive("api.body_limit_bytes", self.api.body_limit_bytes)?;
        for origin in &self.api.cors_origins {
            check_url("api.cors_origins", origin, &["http", "https"])?;
        }
        if self.worker.streams.is_empty() || self.worker.streams.iter().any(String::is_empty) {
            return Err(ConfigError::setting(
                "worker.streams",
                "needs at least one non-empty stream name",
            ));
        }
        check_positive("worker.batch_size", self.worker.batch_size)?;
        check_positive("worker.block_ms", self.worker.block_ms)?;
        check_positive("worker.max_in_flight", self.worker.max_in_flight)?;
        if self.worker.max_in_flight_bytes < self.worker.max_event_bytes
            || self.worker.max_in_flight_bytes > u32::MAX as usize
        {
            return Err(ConfigError::setting(
                "worker.max_in_flight_bytes",
                format!(
                    "must be at least worker.max_event_bytes ({}) and at most 4 GiB",
                    self.worker.max_event_bytes
                ),
            ));
        }
        check_positive(
            "worker.max_in_flight_per_destination",
            self.worker.max_in_flight_per_destination,
        )?;
        if self.worker.max_in_flight < self.worker.batch_size {
            return Err(ConfigError::setting(
                "worker.max_in_flight",
                format!(
                    "must be at least worker.batch_size ({})",
                    self.worker.batch_size
                ),
            ));
        }
        check_positive("worker.claim_idle_ms", self.worker.claim_idle_ms)?;
        check_positive("worker.claim_interval_ms", self.worker.claim_interval_ms)?;
        check_positive("worker.max_deliveries", self.worker.max_deliveries)?;
        check_positive("worker.dedupe_seconds", self.worker.dedupe_seconds)?;
        let redelivery_ms = self
            .worker
            .claim_idle_ms
            .saturating_mul(self.worker.max_deliveries)
            .saturating_mul(2);
        if self.worker.dedupe_seconds.saturating_mul(1000) < redelivery_ms {
            return Err(ConfigError::setting(
                "worker.dedupe_seconds",
                format!(
                    "is {} s, less than twice worker.claim_idle_ms × worker.max_deliveries ({} s): \
                     a redelivery could come back after its decision is forgotten",
                    self.worker.dedupe_seconds,
                    redelivery_ms.div_ceil(1000)
                ),
            ));
        }
        check_positive("worker.reconcile_seconds", self.worker.reconcile_seconds)?;
        check_positive("webhook.max_attempts", self.webhook.max_attempts)?;
        if let Some(secret) = &self.webhook.signing_secret {
            let key = secret.strip_prefix("whsec_").unwrap_or(secret);
            if key.is_empty() {
                return Err(ConfigError::setting(
                    "webhook.signing_secret",
                    "must not be empty",
                ));
            }
        }
        if self.worker.group.is_empty() {
            return Err(ConfigError::setting("worker.group", "must not be empty"));
        }
        if self.worker.dead_letter_stream.is_empty() {
            return Err(ConfigError::setting(
                "worker.dead_letter_stream",
                "must not be empty",
            ));
        }
        if self
            .worker
            .streams
            .contains(&self.worker.dead_letter_stream)
        {
            return Err(ConfigError::setting(
                "worker.dead_letter_stream",
                "must not be one of worker.streams",
            ));
        }
        check_positive(
            "worker.publish_max_attempts",
            self.worker.publish_max_attempts,
        )?;
        if self
            .worker
            .publish_allowed_prefixes
            .iter()
            .any(String::is_empty)
        {
            return Err(ConfigError::setting(
                "worker.publish_allowed_prefixes",
                "a prefix must not be empty",
            ));
        }
        if self.api.keys.iter().any(|k| k.len() < 16) {
            return Err(ConfigError::setting(
                "api.keys",
                "every key needs at least 16 characters",
            ));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.filter)
            .map_err(|e| ConfigError::setting("log.filter", e))?;
        Ok(())
    }
}

/// Settings that take a comma-separated list in an environment variable.
const LIST_SETTINGS: [&str; 4] = [
    "worker.streams",
    "api.keys",
    "api.cors_origins",
    "worker.publish_allowed_prefixes",
];

fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// List settings given as variables, as config's Environment reads them: items
/// trimmed, empty ones dropped; an empty list is returned apart (by setting name).
fn tidy_lists(
    mut vars: HashMap<String, String>,
    prefix: &str,
) -> (HashMap<String, String>, Vec<String>) {
    let mut empty = Vec::new();
    vars.retain(|key, value| {
        let name = key
            .strip_prefix(prefix)
            .unwrap_or(key)
            .to_ascii_lowercase()
            .replace("__", ".");
        if !LIST_SETTINGS.contains(&name.as_str()) {
            return true;
        }
        let items = split_list(value);
        if items.is_empty() {
            empty.push(name);
            return false;
        }
        *value = items.join(",");
        true
    });
    (vars, empty)
}

/// Variables `[PREFIX__]SECTION__KEY` as settings `section.key`; the list settings
/// comma-separated.
fn environment(prefix: Option<&str>) -> config::Environment {
    let env = match prefix {
        Some(p) => config::Environment::with_prefix(p).prefix_separator("__"),
        None => config::Environment::default(),
    };
    LIST_SETTINGS.iter().fold(
        env.separator("__").list_separator(",").try_parsing(true),
        |env, key| env.with_list_parse_key(key),
    )
}

fn check_url(name: &str, value: &str, schemes: &[&str]) -> Result<(), ConfigError> {
    let url = url::Url::parse(value)
        .map_err(|e| ConfigError::setting(name, format!("not a URL ({e})")))?;
    if !schemes.contains(&url.scheme()) {
        return Err(ConfigError::setting(
            name,
            format!(
                "scheme must be one of {}, not {}",
                schemes.join(", "),
                url.scheme()
            ),
        ));
    }
    Ok(())
}

fn check_positive<T: PartialOrd + Default>(name: &str, value: T) -> Result<(), ConfigError> {
    if value > T::default() {
        Ok(())
    } else {
        Err(ConfigError::setting(name, "must be greater than 0"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::load_from(&vars)
    }

    #[test]
    fn defaults_are_valid() {
        let s = load(&[]).expect("defaults load");
        assert_eq!(s.api.bind.port(), 8003);
        assert_eq!(s.worker.streams, vec!["events".to_string()]);
        assert_eq!(s.worker.group, "rule-engine");
        assert_eq!(s.worker.dead_letter_stream, "rule-engine:dead-letter");
        assert_eq!(s.log.format, LogFormat::Pretty);
    }

    #[test]
    fn conventional_variables_and_prefixed_ones() {
        let s = load(&[
            ("DATABASE_URL", "postgres://a@h/db1"),
            ("REDIS_URL", "redis://h:1/2"),
        ])
        .expect("loads");
        assert_eq!(s.database.url, "postgres://a@h/db1");
        assert_eq!(s.redis.url, "redis://h:1/2");
        let s = load(&[
            ("DATABASE_URL", "postgres://a@h/db1"),
            ("RULES__DATABASE__URL", "postgres://b@h/db2"),
            ("RULES__DATABASE__POOL_SIZE", "3"),
            ("RULES__LOG__FORMAT", "json"),
            ("RULES__WORKER__STREAMS", "events:0, events:1"),
        ])
        .expect("loads");
        assert_eq!(s.database.url, "postgres://b@h/db2");
        assert_eq!(s.database.pool_size, 3);
        assert_eq!(s.log.format, LogFormat::Json);
        assert_eq!(
            s.worker.streams,
            vec!["events:0".to_string(), "events:1".to_string()]
        );
    }

    #[test]
    fn errors_name_the_setting() {
        let cases = [
            (("RULES__DATABASE__POOL_SIZE", "many"), "database.pool_size"),
            (("RULES__DATABASE__POOL_SIZE", "0"), "database.pool_size"),
            (("RULES__DATABASE__URL", "mysql://x/y"), "database.url"),
            (("REDIS_URL", "not a url"), "redis.url"),
            (("RULES__LOG__FORMAT", "xml"), "format"),
            (("RULES__API__BIND", "nowhere"), "api.bind"),
            (("RULES__DATABASE__POOL_SZIE", "3"), "pool_szie"),
            (
                ("RULES__WORKER__DEAD_LETTER_STREAM", "events"),
                "worker.dead_letter_stream",
            ),
            (("RULES_CONFIG", "/nonexistent/rules.toml"), "RULES_CONFIG"),
            (("RULES_API_KEYS", "short"), "api.keys"),
            (
                ("RULES__WORKER__MAX_IN_FLIGHT", "10"),
                "worker.max_in_flight",
            ),
            (
                ("RULES__WORKER__MAX_IN_FLIGHT_BYTES", "1000"),
                "worker.max_in_flight_bytes: must be at least worker.max_event_bytes",
            ),
            (
                ("RULES__WORKER__DEDUPE_SECONDS", "200"),
                "worker.claim_idle_ms × worker.max_deliveries",
            ),
            (
                ("RULES__RETENTION__STATS_DAYS", "7"),
                "retention.stats_days: must be more than retention.stats_minutes_days (7)",
            ),
            (
                ("RULES__RETENTION__STATS_MINUTES_DAYS", "0"),
                "retention.stats_minutes_days",
            ),
        ];
        for ((key, value), expected) in cases {
            let err = load(&[(key, value)]).expect_err("must fail").to_string();
            assert!(
                err.contains(expected),
                "{key}={value}: `{err}` does not name {expected}"
            );
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn reads_a_toml_file() {
        let dir = std::env::temp_dir().join(format!("rules-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("rules.toml");
        std::fs::write(
            &path,
            "[database]\npool_size = 7\n[worker]\ngroup = \"g2\"\n",
        )
        .expect("write");
        let s = load(&[("RULES_CONFIG", path.to_str().expect("utf-8"))]).expect("loads");
        assert_eq!(s.database.pool_size, 7);
        assert_eq!(s.worker.group, "g2");
        std::fs::write(&path, "[database]\npool_size = \"x\"\n").expect("write");
        let err = load(&[("RULES_CONFIG", path.to_str().expect("utf-8"))])
            .expect_err("bad type")
            .to_string();
        assert!(err.contains("pool_size"), "{err}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn errors_never_print_secrets() {
        let dir = std::env::temp_dir().join(format!("rules-config-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("rules.toml");
        let path_text = path.to_str().expect("utf-8").to_owned();
        // A TOML syntax error on the line holding the password.
        std::fs::write(
            &path,
            "[database]\nurl = \"postgres://app:hunter2-secret@db/rules_db\" oops\n",
        )
        .expect("write");
        let err = load(&[("RULES_CONFIG", &path_text)])
            .expect_err("syntax")
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains("line"), "still says where: {err}");
        // api.keys given as a string: the key is not echoed.
        std::fs::write(&path, "[api]\nkeys = \"sk-live-0123456789abcdef\"\n").expect("write");
        let err = load(&[("RULES_CONFIG", &path_text)])
            .expect_err("type")
            .to_string();
        assert!(!err.contains("sk-live"), "{err}");
        assert!(err.contains("api.keys"), "still names the setting: {err}");
        // A URL that is no URL, with a password in it.
        let err = load(&[("DATABASE_URL", "mysql://u:pw-secret@h/db")])
            .expect_err("scheme")
            .to_string();
        assert!(!err.contains("pw-secret"), "{err}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
        assert_eq!(
            redact_url_passwords("see redis://:p@h:1/0 and postgres://u@h/db"),
            "see redis://:<redacted>@h:1/0 and postgres://u@h/db"
        );
    }

    #[test]
    fn webhook_settings_have_a_section_and_the_old_names_still_work() {
        let s = load(&[("RULES__WEBHOOK__MAX_ATTEMPTS", "4")]).expect("loads");
        assert_eq!(s.webhook.max_attempts, 4);
        assert!(s.warnings.is_empty());
        let s = load(&[
            ("RULES__WORKER__WEBHOOK_MAX_ATTEMPTS", "7"),
            ("RULES__WORKER__WEBHOOK_ALLOW_PRIVATE", "true"),
        ])
        .expect("loads");
        assert_eq!(s.webhook.max_attempts, 7);
        assert!(s.webhook.allow_private);
        assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
        assert!(
            s.warnings[0].contains("webhook.allow_private"),
            "{:?}",
            s.warnings
        );
        let err = load(&[("RULES__WEBHOOK__MAX_ATTEMPTS", "0")])
            .expect_err("zero")
            .to_string();
        assert!(err.contains("webhook.max_attempts"), "{err}");
    }
}
