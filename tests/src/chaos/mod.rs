//! `make chaos`: the fault suite. One PostgreSQL cluster and one `redis-server` of the
//! run's own (never the machine's), two local webhook receivers (the destination the
//! faults hit, and the probe of an unaffected livestream), and per scenario a fresh
//! database, the release `rules-api`, the workers and a producer. Each scenario
//! injects its fault during a drain, waits until nothing is pending, and compares
//! what was recorded and called with a reference of the rules
//! ([`rules_core::simulate::Simulation`] over the events that reached the stream).
//!
//! Run with `make chaos` (every scenario at full size) or `make chaos-ci` (the subset
//! CI runs); `rules-chaos --help` lists the knobs.

mod probe;
pub mod report;
pub mod scenarios;
mod stage;
mod verdict;

use std::path::PathBuf;
use std::time::Duration;

use crate::receiver::Receiver;
use crate::services::{OwnPostgres, OwnRedis};

pub use report::Row;
pub use stage::Stage;

/// How big the scenarios are.
#[derive(Debug, Clone)]
pub struct Scale {
    /// Events queued for a drain scenario.
    pub backlog: usize,
    /// Events queued before the workers start in the burst scenario.
    pub burst: usize,
    /// How long PostgreSQL stays stopped.
    pub pg_outage: Duration,
    /// How long a receiver misbehaves.
    pub receiver_fault: Duration,
}

/// What every scenario shares: the servers and the receivers.
pub struct Cluster {
    pub pg: OwnPostgres,
    pub redis: OwnRedis,
    /// The destination faults are injected into (behind a front that can reset).
    pub target: Receiver,
    /// The unaffected livestream's destination; never faulted.
    pub probe: Receiver,
    /// Logs of every process and the Redis snapshots.
    pub dir: PathBuf,
    pub scale: Scale,
}

impl Cluster {
    pub fn start(dir: PathBuf, scale: Scale) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            pg: OwnPostgres::start()?,
            redis: OwnRedis::start()?,
            target: Receiver::start_with_faults()?,
            probe: Receiver::start(&[])?,
            dir,
            scale,
        })
    }
}
