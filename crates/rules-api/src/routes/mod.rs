//! The `/api` routes.

pub mod backtest;
pub mod cooldowns;
pub mod dry_run;
pub mod events;
pub mod history;
pub mod rules;
