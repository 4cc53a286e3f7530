//! Templates that are only text and lookups: `{{ event.data.user.name }} donated`,
//! the kind nearly every action holds. They render by looking each path up in the
//! same context minijinja would read, and spelling the value as minijinja's
//! formatter does, without a run of minijinja's machine (which cost a drain where
//! every event fires a fifth of the worker's CPU). Anything else — a filter, an
//! index, whitespace control, a tag, a comment, a trailing newline (which minijinja
//! drops) — is left to minijinja. The model test in `template.rs` holds the two
//! equal on random templates and events.

use minijinja::Value;

/// A piece of a template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Piece {
    Text(String),
    /// `{{ event.data.user.name }}`: the names, from the context's own.
    Lookup(Vec<String>),
}

/// The names templates start a lookup from (the context's two).
const ROOTS: [&str; 2] = ["event", "rule"];

/// Words minijinja reads as something other than a name.
const KEYWORDS: [&str; 14] = [
    "true",
    "false",
    "none",
    "True",
    "False",
    "None",
    "and",
    "or",
    "not",
    "in",
    "is",
    "if",
    "else",
    "recursive",
];

/// The pieces of `source`, when it is only text and lookups.
pub(crate) fn pieces(source: &str) -> Option<Vec<Piece>> {
    if source.ends_with('\n') || source.contains("{%") || source.contains("{#") {
        return None;
    }
    let mut pieces = Vec::new();
    let mut rest = source;
    while let Some(open) = rest.find("{{") {
        let text = &rest[..open];
        if text.contains("}}") {
            return None;
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text.to_owned()));
        }
        let after = &rest[open + 2..];
        let close = after.find("}}")?;
        pieces.push(Piece::Lookup(lookup(&after[..close])?));
        rest = &after[close + 2..];
    }
    if rest.contains("}}") {
        return None;
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_owned()));
    }
    Some(pieces)
}

/// The names of `expr` when it is a plain lookup from `event` or `rule`
/// (`event.data.user.name`, spaces around it only).
pub(crate) fn lookup(expr: &str) -> Option<Vec<String>> {
    let expr = expr.trim_matches(' ');
    let names: Vec<String> = expr.split('.').map(str::to_owned).collect();
    let plain = |name: &String| {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !KEYWORDS.contains(&name.as_str())
    };
    (ROOTS.contains(&names.first()?.as_str()) && names.iter().all(plain)).then_some(names)
}

/// The value at `names` from `root`, as minijinja's attribute lookup with chainable
/// undefined values gives it: a name an object lacks, or a name of anything but an
/// object, is undefined, and so is every name after it.
pub(crate) fn resolve(root: &Value, names: &[String]) -> Value {
    let mut value = root.clone();
    for name in names {
        if value.is_undefined() {
            break;
        }
        value = value.get_attr(name).unwrap_or(Value::UNDEFINED);
    }
    value
}
