//! The compiled condition tree and its evaluation: the hot path of matching.
//!
//! Compilation does everything that does not depend on the event once: paths are
//! pre-split, regexes built, `ignore_case` operands case-folded, `in` lists turned
//! into hash sets. Evaluation short-circuits; the traced evaluation used by the dry
//! run visits every node so the author sees each result.

use compact_str::CompactString;
use regex::{Regex, RegexBuilder};
use rustc_hash::FxHashSet;
use serde::Serialize;
use serde_json::{Number, Value};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, OnceLock};

use crate::event::Event;
use crate::json::Json;
use crate::model::{Condition, Leaf, Op};
use crate::path::FieldPath;
use crate::problems::limits::MAX_REGEX_COMPILED_BYTES;

/// Builds a regex as both validation and compilation do (linear time, size-bounded).
pub(crate) fn build_regex(pattern: &str, ignore_case: bool) -> Result<Regex, regex::Error> {
    #[cfg(test)]
    tests::COMPILED.with(|n| n.set(n.get() + 1));
    RegexBuilder::new(pattern)
        .case_insensitive(ignore_case)
        .size_limit(MAX_REGEX_COMPILED_BYTES)
        .dfa_size_limit(MAX_REGEX_COMPILED_BYTES)
        .build()
}

/// Patterns (with their case flag) that validation has seen compile in this process.
/// A pattern compiles or not whatever the rule around it, so a rule set loaded at
/// start-up (10,000 rules sharing a few patterns) checks each pattern once instead of
/// once a rule: the check was half of a worker's start-up. Only the text is kept
/// (at most [`VALID_PATTERNS_LIMIT`] of 1 KiB each), never a compiled program.
static VALID_PATTERNS: LazyLock<Mutex<[FxHashSet<Box<str>>; 2]>> = LazyLock::new(Default::default);
const VALID_PATTERNS_LIMIT: usize = 10_000;

/// Whether `pattern` compiles as [`build_regex`] compiles it: validation's check.
pub(crate) fn check_regex(pattern: &str, ignore_case: bool) -> Result<(), regex::Error> {
    let flag = usize::from(ignore_case);
    if VALID_PATTERNS
        .lock()
        .is_ok_and(|patterns| patterns[flag].contains(pattern))
    {
        return Ok(());
    }
    build_regex(pattern, ignore_case)?;
    if let Ok(mut patterns) = VALID_PATTERNS.lock() {
        if patterns[flag].len() >= VALID_PATTERNS_LIMIT {
            patterns[flag].clear();
        }
        patterns[flag].insert(pattern.into());
    }
    Ok(())
}

/// Compiled regexes shared between rules: a compiled Unicode regex can take tens of
/// kilobytes, and many rules use the same pattern. `Regex` clones share their
/// program. The cache only ever holds extra references, so clearing it when it
/// grows large frees only patterns no rule uses any more.
static REGEX_CACHE: LazyLock<Mutex<HashMap<(String, bool), Regex>>> =
    LazyLock::new(Default::default);
const REGEX_CACHE_LIMIT: usize = 10_000;

fn shared_regex(pattern: &str, ignore_case: bool) -> Result<Regex, regex::Error> {
    let key = (pattern.to_owned(), ignore_case);
    if let Ok(cache) = REGEX_CACHE.lock() {
        if let Some(re) = cache.get(&key) {
            return Ok(re.clone());
        }
    }
    let re = build_regex(pattern, ignore_case)?;
    if let Ok(mut cache) = REGEX_CACHE.lock() {
        if cache.len() >= REGEX_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, re.clone());
    }
    Ok(re)
}

/// A regex compiled on first use: rules of livestreams that never see a matching
/// event type never pay for their automaton. Validation has already compiled it
/// once, so a later failure cannot happen; if it did, the leaf would be false.
#[derive(Debug)]
struct LazyRegex {
    pattern: Box<str>,
    ignore_case: bool,
    compiled: OnceLock<Option<Regex>>,
}

impl Clone for LazyRegex {
    fn clone(&self) -> Self {
        Self {
            pattern: self.pattern.clone(),
            ignore_case: self.ignore_case,
            compiled: self.compiled.clone(),
        }
    }
}

impl LazyRegex {
    fn is_match(&self, haystack: &str) -> bool {
        self.compiled
            .get_or_init(|| shared_regex(&self.pattern, self.ignore_case).ok())
            .as_ref()
            .is_some_and(|re| re.is_match(haystack))
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    All(Box<[Node]>),
    Any(Box<[Node]>),
    Not(Box<Node>),
    /// Held in place: a rule's single-leaf condition and the leaves of an `all` or
    /// `any` are read without another pointer to follow.
    Leaf(LeafTest),
}

#[derive(Debug, Clone)]
pub(crate) struct LeafTest {
    path: FieldPath,
    op: Op,
    /// The operand as the author wrote it, for the trace.
    operand: Value,
    test: Test,
}

#[derive(Debug, Clone)]
enum Test {
    /// `folded`: the case-folded operand with `ignore_case`; otherwise the operand is used.
    /// `text`: a string operand (folded with `ignore_case`), held in place.
    Equals {
        folded: Option<Value>,
        text: Option<CompactString>,
        ignore_case: bool,
        negate: bool,
    },
    Compare {
        op: Op,
        rhs: Number,
    },
    In {
        set: ValueSet,
        ignore_case: bool,
        negate: bool,
    },
    Contains {
        folded: Option<Value>,
        text: Option<CompactString>,
        ignore_case: bool,
    },
    StartsWith {
        needle: CompactString,
        ignore_case: bool,
    },
    EndsWith {
        needle: CompactString,
        ignore_case: bool,
    },
    Matches(LazyRegex),
    Exists(bool),
}

/// The elements of an `in` list: strings hashed, everything else compared in turn.
#[derive(Debug, Clone, Default)]
struct ValueSet {
    strings: FxHashSet<Box<str>>,
    others: Vec<Value>,
}

impl ValueSet {
    fn contains(&self, value: Json<'_>, ignore_case: bool) -> bool {
        match value {
            Json::String(s) if ignore_case => self.strings.contains(&*fold(s)),
            Json::String(s) => self.strings.contains(s),
            other => self.others.iter().any(|o| json_eq(other, o, ignore_case)),
        }
    }
}

impl Node {
    /// Compiles a validated condition. Regexes compile on first use (see `LazyRegex`),
    /// so nothing here can fail.
    pub fn compile(condition: &Condition) -> Node {
        match condition {
            Condition::All { all } => Node::All(all.iter().map(Node::compile).collect()),
            Condition::Any { any } => Node::Any(any.iter().map(Node::compile).collect()),
            Condition::Not { not } => Node::Not(Box::new(Node::compile(not))),
            Condition::Leaf(leaf) => Node::Leaf(LeafTest::compile(leaf)),
        }
    }

    /// Whether the condition holds for an event envelope. `all` of nothing holds and
    /// `any` of nothing does not (validation never produces either).
    #[inline]
    pub fn eval(&self, event: &Event) -> bool {
        match self {
            Node::All(children) => children.iter().all(|c| c.eval(event)),
            Node::Any(children) => children.iter().any(|c| c.eval(event)),
            Node::Not(child) => !child.eval(event),
            Node::Leaf(leaf) => leaf.eval(event),
        }
    }

    /// Like [`Node::eval`] but visits every node and records each result, in pre-order.
    pub fn eval_traced(&self, event: &Event, path: String, out: &mut Vec<TraceNode>) -> bool {
        let at = out.len();
        let (kind, result) = match self {
            Node::All(children) | Node::Any(children) => {
                let is_all = matches!(self, Node::All(_));
                let name = if is_all { "all" } else { "any" };
                out.push(TraceNode::placeholder(path.clone(), name));
                let results: Vec<bool> = children
                    .iter()
                    .enumerate()
                    .map(|(i, c)| c.eval_traced(event, format!("{path}.{name}[{i}]"), out))
                    .collect();
                let result = if is_all {
                    results.iter().all(|r| *r)
                } else {
                    results.iter().any(|r| *r)
                };
                (name, result)
            }
            Node::Not(child) => {
                out.push(TraceNode::placeholder(path.clone(), "not"));
                ("not", !child.eval_traced(event, format!("{path}.not"), out))
            }
            Node::Leaf(leaf) => {
                let actual = leaf.path.lookup(event);
                let result = leaf.eval(event);
                out.push(TraceNode {
                    path,
                    node: "leaf",
                    field: Some(leaf.path.as_str().to_owned()),
                    op: Some(leaf.op),
                    value: Some(leaf.operand.clone()),
                    found: Some(actual.is_some()),
                    actual: actual.map(|a| a.to_value()),
                    result,
                });
                return result;
            }
        };
        out[at].node = kind;
        out[at].result = result;
        result
    }
}

/// One node's result in a dry run.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceNode {
    /// Where the node sits in the rule, e.g. `trigger_config.condition.all[1].any[0]`.
    pub path: String,
    /// `all`, `any`, `not` or `leaf`.
    pub node: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub op: Option<Op>,
    /// The operand the rule compares with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// Whether the field is present in the event (leaves only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<bool>,
    /// The field's value in the event, when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<Value>,
    pub result: bool,
}

impl TraceNode {
    fn placeholder(path: String, node: &'static str) -> Self {
        Self {
            path,
            node,
            field: None,
            op: None,
            value: None,
            found: None,
            actual: None,
            result: false,
        }
    }
}

impl LeafTest {
    fn compile(leaf: &Leaf) -> LeafTest {
        let ic = leaf.ignore_case;
        let folded = || ic.then(|| fold_value(&leaf.value));
        let string = || {
            let s = leaf.value.as_str().unwrap_or_default();
            CompactString::from(if ic { fold(s) } else { Cow::Borrowed(s) })
        };
        let text = || leaf.value.is_string().then(string);
        let test = match leaf.op {
            Op::Eq | Op::Ne => Test::Equals {
                folded: folded(),
                text: text(),
                ignore_case: ic,
                negate: leaf.op == Op::Ne,
            },
            Op::Gt | Op::Gte | Op::Lt | Op::Lte => Test::Compare {
                op: leaf.op,
                rhs: match &leaf.value {
                    Value::Number(n) => n.clone(),
                    // Validation guarantees a number; a non-number can never compare true.
                    _ => Number::from(0),
                },
            },
            Op::In | Op::NotIn => {
                let mut set = ValueSet::default();
                if let Value::Array(items) = folded().unwrap_or_else(|| leaf.value.clone()) {
                    for item in items {
                        match item {
                            Value::String(s) => {
                                set.strings.insert(s.into_boxed_str());
                            }
                            other => set.others.push(other),
                        }
                    }
                }
                Test::In {
                    set,
                    ignore_case: ic,
                    negate: leaf.op == Op::NotIn,
                }
            }
            Op::Contains => Test::Contains {
                folded: folded(),
                text: text(),
                ignore_case: ic,
            },
            Op::StartsWith => Test::StartsWith {
                needle: string(),
                ignore_case: ic,
            },
            Op::EndsWith => Test::EndsWith {
                needle: string(),
                ignore_case: ic,
            },
            Op::Matches => Test::Matches(LazyRegex {
                pattern: leaf.value.as_str().unwrap_or_default().into(),
                ignore_case: ic,
                compiled: OnceLock::new(),
            }),
            Op::Exists => Test::Exists(leaf.value.as_bool().unwrap_or(true)),
        };
        LeafTest {
            path: leaf.field.clone(),
            op: leaf.op,
            operand: leaf.value.clone(),
            test,
        }
    }

    /// A leaf whose field is missing is false, except `exists: false`.
    #[inline]
    fn eval(&self, event: &Event) -> bool {
        let found = self.path.lookup(event);
        match (&self.test, found) {
            (Test::Exists(want), found) => found.is_some() == *want,
            (_, None) => false,
            (test, Some(value)) => test.apply(value, &self.operand),
        }
    }
}

impl Test {
    #[inline]
    fn apply(&self, value: Json<'_>, operand: &Value) -> bool {
        match self {
            Test::Equals {
                folded,
                text,
                ignore_case,
                negate,
            } => {
                let equal = match (text, value) {
                    (Some(text), Json::String(s)) if *ignore_case => fold(s) == text.as_str(),
                    (Some(text), Json::String(s)) => s == text.as_str(),
                    // A string operand equals only a string.
                    (Some(_), _) => false,
                    (None, value) => {
                        json_eq(value, folded.as_ref().unwrap_or(operand), *ignore_case)
                    }
                };
                equal != *negate
            }
            Test::Compare { op, rhs } => {
                let Json::Number(lhs) = value else {
                    return false;
                };
                match (num_cmp(lhs, rhs), op) {
                    (None, _) => false,
                    (Some(ord), Op::Gt) => ord == Ordering::Greater,
                    (Some(ord), Op::Gte) => ord != Ordering::Less,
                    (Some(ord), Op::Lt) => ord == Ordering::Less,
                    (Some(ord), _) => ord != Ordering::Greater,
                }
            }
            Test::In {
                set,
                ignore_case,
                negate,
            } => set.contains(value, *ignore_case) != *negate,
            Test::Contains {
                folded,
                text,
                ignore_case,
            } => match (value, folded.as_ref().unwrap_or(operand)) {
                (Json::String(haystack), Value::String(_)) => {
                    let needle = text.as_deref().unwrap_or_default();
                    if *ignore_case {
                        fold(haystack).contains(needle)
                    } else {
                        haystack.contains(needle)
                    }
                }
                (Json::Array(items), needle) => {
                    items.iter().any(|item| json_eq(item, needle, *ignore_case))
                }
                _ => false,
            },
            Test::StartsWith {
                needle,
                ignore_case,
            } => match value {
                Json::String(s) if *ignore_case => fold(s).starts_with(needle.as_str()),
                Json::String(s) => s.starts_with(needle.as_str()),
                _ => false,
            },
            Test::EndsWith {
                needle,
                ignore_case,
            } => match value {
                Json::String(s) if *ignore_case => fold(s).ends_with(needle.as_str()),
                Json::String(s) => s.ends_with(needle.as_str()),
                _ => false,
            },
            Test::Matches(regex) => value.as_str().is_some_and(|s| regex.is_match(s)),
            Test::Exists(want) => *want,
        }
    }
}

/// Unicode full case folding, without allocating for ASCII text that is already folded.
pub(crate) fn fold(s: &str) -> Cow<'_, str> {
    if s.is_ascii() {
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(s.to_ascii_lowercase())
        } else {
            Cow::Borrowed(s)
        }
    } else {
        Cow::Owned(caseless::default_case_fold_str(s))
    }
}

/// Case-folds every string inside a value (operands of `ignore_case` leaves).
fn fold_value(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(fold(s).into_owned()),
        Value::Array(items) => Value::Array(items.iter().map(fold_value).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), fold_value(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// JSON equality with numbers compared numerically (10 == 10.0) and, with
/// `ignore_case`, strings compared case-folded. `operand` is already folded.
fn json_eq(value: Json<'_>, operand: &Value, ignore_case: bool) -> bool {
    match (value, operand) {
        (Json::Null, Value::Null) => true,
        (Json::Bool(a), Value::Bool(b)) => a == *b,
        (Json::Number(a), Value::Number(b)) => num_cmp(a, b) == Some(Ordering::Equal),
        (Json::String(a), Value::String(b)) => {
            if ignore_case {
                fold(a) == b.as_str()
            } else {
                a == b
            }
        }
        (Json::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| json_eq(x, y, ignore_case))
        }
        (Json::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, x)| b.get(k).is_some_and(|y| json_eq(x, y, ignore_case)))
        }
        _ => false,
    }
}

/// Numeric order, exact: integers against integers and against floats compare by
/// value (`9007199254740993 > 9007199254740992.0`, which a conversion to f64 would
/// call equal); floats against floats as IEEE does.
fn num_cmp(a: &Number, b: &Number) -> Option<Ordering> {
    match (integer(a), integer(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        (Some(x), None) => int_float_cmp(x, b.as_f64()?),
        (None, Some(y)) => int_float_cmp(y, a.as_f64()?).map(Ordering::reverse),
        (None, None) => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

fn integer(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

/// `i` against `f`, exactly.
fn int_float_cmp(i: i128, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    // Beyond ±2^127 every i128 is on one side.
    if f >= 1.7e38 {
        return Some(Ordering::Less);
    }
    if f <= -1.7e38 {
        return Some(Ordering::Greater);
    }
    let floor = f.floor();
    // `floor` is integral and in range: the conversion is exact.
    match i.cmp(&(floor as i128)) {
        Ordering::Equal if f > floor => Some(Ordering::Less),
        other => Some(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::cell::Cell;

    thread_local! {
        /// Regexes compiled on this thread (`build_regex`).
        pub(super) static COMPILED: Cell<usize> = const { Cell::new(0) };
    }

    fn rule_matching(pattern: &str, ignore_case: bool) -> Value {
        json!({
            "livestream_id": "0e2a9c1b-0000-4000-8000-00000000abcd",
            "name": "r",
            "trigger_config": {
                "event_types": ["chat.message"],
                "condition": {"field": "data.message", "op": "matches", "value": pattern,
                              "ignore_case": ignore_case}
            },
            "actions": [{"type": "log", "message": "m"}]
        })
    }

    #[test]
    fn validation_compiles_a_pattern_once_and_remembers_only_what_compiled() {
        let compiled = || COMPILED.with(Cell::get);
        let load = |pattern: &str, ignore_case: bool| {
            crate::CompiledRule::from_json(
                uuid::Uuid::nil(),
                1,
                &rule_matching(pattern, ignore_case),
            )
        };
        let before = compiled();
        let pattern = r"only in this test \d+";
        for _ in 0..3 {
            assert!(load(pattern, false).is_ok());
        }
        assert_eq!(compiled() - before, 1, "each rule compiled the pattern");
        assert!(load(pattern, true).is_ok());
        assert_eq!(
            compiled() - before,
            2,
            "the other case flag is another program"
        );
        for _ in 0..2 {
            assert!(load("(unclosed in this test", false).is_err());
        }
        assert_eq!(
            compiled() - before,
            4,
            "a pattern that failed is checked again"
        );
    }
}
