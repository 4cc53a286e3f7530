//! What every part of the worker shares.

use rules_store::config::{RetentionSettings, WorkerSettings};
use rules_store::db::PgPool;
use rules_store::redis::{OwnConnection, RedisPool, SharedConnection};
use std::sync::Arc;

use crate::actions::Executor;
use crate::pipeline::{InFlight, Lanes};
use crate::rules::Rules;

pub struct Context {
    pub settings: WorkerSettings,
    /// The decision log's days (`retention.*`).
    pub retention: RetentionSettings,
    pub db: PgPool,
    pub redis: RedisPool,
    /// The gate's connection of its own, kept between batches (`OwnConnection::run`).
    pub gate_link: OwnConnection,
    /// The acknowledgements' connection, kept between commits.
    pub ack_link: SharedConnection,
    pub rules: Arc<Rules>,
    pub executor: Executor,
    /// This replica's name in the consumer groups.
    pub consumer: String,
    /// Entries read and not yet acknowledged (`worker.max_in_flight`).
    pub in_flight: InFlight,
    /// Entries in flight per webhook destination (`worker.max_in_flight_per_destination`).
    pub lanes: Lanes,
    /// The first essential task that stopped while it should have run.
    pub failed: std::sync::OnceLock<&'static str>,
}

impl Context {
    /// Records that essential task `name` stopped: readiness fails from now on.
    pub fn fail(&self, name: &'static str) {
        let _ = self.failed.set(name);
    }

    pub fn failed_task(&self) -> Option<&'static str> {
        self.failed.get().copied()
    }
}

/// `worker.consumer`, else `POD_NAME`, else `<hostname>-<pid>`.
pub fn consumer_name(configured: Option<&str>) -> String {
    if let Some(name) = configured.filter(|n| !n.is_empty()) {
        return name.to_owned();
    }
    if let Ok(pod) = std::env::var("POD_NAME") {
        if !pod.is_empty() {
            return pod;
        }
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into());
    format!("{host}-{}", std::process::id())
}
