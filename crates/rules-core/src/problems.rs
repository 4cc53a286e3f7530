//! The leaf every other module may use: the limits of a rule and the shape of a
//! validation problem. It depends on nothing else in the crate, so validation,
//! conditions and templates share them without importing each other.

use serde::Serialize;
use std::fmt;

/// The limits of docs/contract.md §2 and the bounds this service adds where the contract is silent.
pub mod limits {
    pub const MAX_RULE_BYTES: usize = 64 * 1024;
    pub const MAX_DEPTH: usize = 10;
    pub const MAX_LEAVES: usize = 100;
    pub const MAX_CHILDREN: usize = 64;
    pub const MAX_REGEX_BYTES: usize = 1024;
    /// Compiled size a regex may grow to (the `regex` crate's `size_limit`).
    pub const MAX_REGEX_COMPILED_BYTES: usize = 1 << 20;
    pub const MAX_EVENT_TYPES: usize = 32;
    pub const MAX_ACTIONS: usize = 10;
    pub const MAX_COOLDOWN_SECONDS: u32 = 604_800;
    pub const MAX_TIMEOUT_MS: u32 = 30_000;
    pub const DEFAULT_TIMEOUT_MS: u32 = 5_000;
    pub const MAX_AGE_SECONDS: u32 = 86_400;
    pub const MAX_NAME_CHARS: usize = 200;
    pub const MAX_DESCRIPTION_CHARS: usize = 2_000;
    pub const MAX_THRESHOLD_COUNT: u32 = 10_000;
    pub const MAX_THRESHOLD_WINDOW_SECONDS: u32 = 604_800;
    pub const MAX_URL_BYTES: usize = 2_048;
    pub const MAX_HEADERS: usize = 32;
    pub const MAX_STREAM_NAME_BYTES: usize = 256;
}

/// One validation problem: where (a JSON path such as `actions[0].url`) and what.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

/// Every problem found in one rule; never empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            if e.path.is_empty() {
                write!(f, "{}", e.message)?;
            } else {
                write!(f, "{}: {}", e.path, e.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

impl FieldError {
    /// `errors` of a nested document, their paths put under `prefix` (the document's
    /// own path for one without a path).
    pub fn under(prefix: &str, errors: Vec<FieldError>) -> Vec<FieldError> {
        errors
            .into_iter()
            .map(|e| FieldError {
                path: if e.path.is_empty() {
                    prefix.to_owned()
                } else {
                    format!("{prefix}.{}", e.path)
                },
                message: e.message,
            })
            .collect()
    }
}

/// The longest prefix of `text` within `max_bytes`, cut at a character boundary:
/// messages and causes kept in records, keys and logs stay bounded.
pub fn truncated(text: &str, max_bytes: usize) -> &str {
    let mut end = text.len().min(max_bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
