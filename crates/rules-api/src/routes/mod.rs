//! The `/api` routes.

pub mod dry_run;
pub mod history;
pub mod rules;
