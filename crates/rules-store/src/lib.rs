//! rules-store: what the API and the worker share beyond matching.
//!
//! Configuration and logging set-up, the PostgreSQL schema, pool and migrations, and
//! the Redis pool live here once, so the binaries stay thin and never hold two
//! copies of the same query or key scheme.

pub mod config;
pub mod db;
pub mod redis;
pub mod streams;
pub mod telemetry;

pub use config::Settings;
