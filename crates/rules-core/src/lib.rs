//! rules-core: the rule model, validation, matching and templates of the rule engine.
//!
//! Everything here is pure: no network, no database, no clock on the matching path.
//! That keeps the matcher testable and measurable alone (`cargo bench -p rules-core`)
//! and lets the API's dry run, the worker and the load tool share one implementation.
//!
//! The flow: client JSON → [`parse_rule_spec`] (every problem, with its path) →
//! [`Rule`] → [`CompiledRule::compile`] → [`RuleIndex`]; a stream entry →
//! [`Event::from_stream_fields`] → [`RuleIndex::matching`] → [`CompiledRule::render_actions`].

pub mod address;
pub mod clock;
mod compiled;
mod condition;
mod decision;
pub mod event;
mod identity;
mod index;
pub mod json;
pub mod model;
pub mod path;
mod problems;
mod publish;
pub mod shard;
pub mod simulate;
mod status;
mod strict_json;
mod template;
mod template_lookup;
mod template_view;
pub mod validate;
#[cfg(feature = "workload")]
pub mod workload;

pub use compiled::{CompiledRule, Evaluation, RenderedAction, RenderedActionKind, Scope};
pub use condition::TraceNode;
pub use decision::{Decision, NotNow, Outcome};
pub use event::{EnvelopeError, Event};
pub use identity::execution_id;
pub use index::RuleIndex;
pub use model::*;
pub use path::FieldPath;
pub use problems::truncated;
pub use publish::{PublishPolicy, SERVICE_KEY_PREFIX};
pub use status::Status;
pub use strict_json::Strict;
pub use template::RenderError;
pub use validate::{limits, parse_rule_spec, FieldError, ValidationErrors};
