//! Turns client JSON into a [`RuleSpec`], reporting *every* problem with its JSON path.
//!
//! This is the only way to build a rule from JSON (the API's bodies, stored rows, the
//! load tool's files), so the limits of docs/contract.md §2 hold everywhere. Validation walks
//! the `serde_json::Value` by hand instead of deriving `Deserialize`, because serde
//! stops at the first error and a rule author wants the whole list at once.

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use uuid::Uuid;

use crate::model::*;
use crate::path::FieldPath;
use crate::template::TemplateSet;

pub use crate::problems::{limits, FieldError, ValidationErrors};
use limits::*;

/// Keys the server owns: accepted in a body (a client may send back what it read) and ignored.
const READ_ONLY_KEYS: [&str; 4] = ["id", "version", "created_at", "updated_at"];
const RULE_KEYS: [&str; 8] = [
    "livestream_id",
    "name",
    "description",
    "trigger_config",
    "actions",
    "cooldown_seconds",
    "cooldown_key",
    "enabled",
];
/// Headers the service sets itself; a rule may not override them.
const RESERVED_HEADERS: [&str; 8] = [
    "idempotency-key",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
];

/// Validates a whole rule body.
pub fn parse_rule_spec(value: &Value) -> Result<RuleSpec, ValidationErrors> {
    let mut c = Checker::default();
    // A cheap guard before parsing; the limit itself is on the normalised rule
    // (below), the one measure for what is saved, stored and loaded again. A body
    // may carry the read-only fields of a GET besides, hence the margin.
    let size = json_size(value);
    if size > 2 * MAX_RULE_BYTES {
        c.error(
            "",
            format!("rule is {size} bytes, over the limit of {MAX_RULE_BYTES}"),
        );
        return Err(c.finish_err());
    }
    // PostgreSQL cannot store U+0000 in text or JSON: refused here, at its path.
    nul_characters(&mut c, "", value);
    if !c.errors.is_empty() {
        return Err(c.finish_err());
    }
    let Some(map) = c.object("", value) else {
        return Err(c.finish_err());
    };
    c.unknown_keys("", map, &[&RULE_KEYS[..], &READ_ONLY_KEYS[..]].concat());

    let livestream_id = c
        .required(map, "", "livestream_id")
        .and_then(|v| c.uuid("livestream_id", v));
    let name = c
        .required(map, "", "name")
        .and_then(|v| c.text("name", v, 1, MAX_NAME_CHARS, true));
    let description = match c.optional(map, "description") {
        None => Some(None),
        Some(v) => c
            .text("description", v, 0, MAX_DESCRIPTION_CHARS, false)
            .map(Some),
    };
    let trigger_config = c
        .required(map, "", "trigger_config")
        .and_then(|v| parse_trigger(&mut c, "trigger_config", v));
    let actions = c
        .required(map, "", "actions")
        .and_then(|v| parse_actions(&mut c, "actions", v));
    let cooldown_seconds = match c.optional(map, "cooldown_seconds") {
        None => Some(0),
        Some(v) => c.uint("cooldown_seconds", v, 0, MAX_COOLDOWN_SECONDS),
    };
    let cooldown_key = match c.optional(map, "cooldown_key") {
        None => Some(None),
        Some(v) => c.path("cooldown_key", v).map(Some),
    };
    let enabled = match c.optional(map, "enabled") {
        None => Some(true),
        Some(v) => c.boolean("enabled", v),
    };

    match (
        livestream_id,
        name,
        description,
        trigger_config,
        actions,
        cooldown_seconds,
        cooldown_key,
        enabled,
    ) {
        (
            Some(livestream_id),
            Some(name),
            Some(description),
            Some(trigger_config),
            Some(actions),
            Some(cooldown_seconds),
            Some(cooldown_key),
            Some(enabled),
        ) if c.errors.is_empty() => {
            let spec = RuleSpec {
                livestream_id,
                name,
                description,
                trigger_config,
                actions,
                cooldown_seconds,
                cooldown_key,
                enabled,
            };
            let normalised = serde_json::to_value(&spec).map_or(usize::MAX, |v| json_size(&v));
            if normalised > MAX_RULE_BYTES {
                c.error(
                    "",
                    format!(
                        "rule is {normalised} bytes once normalised, over the limit of {MAX_RULE_BYTES}"
                    ),
                );
                return Err(c.finish_err());
            }
            Ok(spec)
        }
        _ => Err(c.finish_err()),
    }
}

fn parse_trigger(c: &mut Checker, path: &str, value: &Value) -> Option<TriggerConfig> {
    let map = c.object(path, value)?;
    c.unknown_keys(path, map, &["event_types", "condition", "threshold"]);
    let types_path = join(path, "event_types");
    let event_types = c.required(map, path, "event_types").and_then(|v| {
        let items = c.array(&types_path, v, 1, MAX_EVENT_TYPES)?;
        let mut out: Vec<String> = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{types_path}[{i}]");
            match c.text(&item_path, item, 1, crate::event::MAX_EVENT_TYPE_LEN, false) {
                Some(t) if out.contains(&t) => {
                    ok = c
                        .fail::<()>(&item_path, format!("`{t}` is listed twice"))
                        .is_some();
                }
                Some(t) => out.push(t),
                None => ok = false,
            }
        }
        ok.then_some(out)
    });
    let condition = match c.optional(map, "condition") {
        None => Some(None),
        Some(v) => {
            let cond_path = join(path, "condition");
            let mut leaves = 0;
            let parsed = parse_condition(c, &cond_path, v, 1, &mut leaves);
            if leaves > MAX_LEAVES {
                c.error(
                    &cond_path,
                    format!("condition has {leaves} leaves, over the limit of {MAX_LEAVES}"),
                );
                None
            } else {
                parsed.map(Some)
            }
        }
    };
    let threshold = match c.optional(map, "threshold") {
        None => Some(None),
        Some(v) => parse_threshold(c, &join(path, "threshold"), v).map(Some),
    };
    Some(TriggerConfig {
        event_types: event_types?,
        condition: condition?,
        threshold: threshold?,
    })
}

fn parse_threshold(c: &mut Checker, path: &str, value: &Value) -> Option<Threshold> {
    let map = c.object(path, value)?;
    c.unknown_keys(path, map, &["count", "window_seconds", "group_by"]);
    let count = c
        .required(map, path, "count")
        .and_then(|v| c.uint(&join(path, "count"), v, 1, MAX_THRESHOLD_COUNT));
    let window_seconds = c.required(map, path, "window_seconds").and_then(|v| {
        c.uint(
            &join(path, "window_seconds"),
            v,
            1,
            MAX_THRESHOLD_WINDOW_SECONDS,
        )
    });
    let group_by = match c.optional(map, "group_by") {
        None => Some(None),
        Some(v) => c.path(&join(path, "group_by"), v).map(Some),
    };
    Some(Threshold {
        count: count?,
        window_seconds: window_seconds?,
        group_by: group_by?,
    })
}

fn parse_condition(
    c: &mut Checker,
    path: &str,
    value: &Value,
    depth: usize,
    leaves: &mut usize,
) -> Option<Condition> {
    if depth > MAX_DEPTH {
        return c.fail(
            path,
            format!("condition is nested deeper than {MAX_DEPTH} levels"),
        );
    }
    let map = c.object(path, value)?;
    for combinator in ["all", "any", "not"] {
        let Some(inner) = map.get(combinator) else {
            continue;
        };
        c.unknown_keys(path, map, &[combinator]);
        let inner_path = join(path, combinator);
        if combinator == "not" {
            let child = parse_condition(c, &inner_path, inner, depth + 1, leaves)?;
            return Some(Condition::Not {
                not: Box::new(child),
            });
        }
        let items = c.array(&inner_path, inner, 1, MAX_CHILDREN)?;
        let mut children = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match parse_condition(c, &format!("{inner_path}[{i}]"), item, depth + 1, leaves) {
                Some(child) => children.push(child),
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        return Some(if combinator == "all" {
            Condition::All { all: children }
        } else {
            Condition::Any { any: children }
        });
    }
    *leaves += 1;
    parse_leaf(c, path, map).map(Condition::Leaf)
}

fn parse_leaf(c: &mut Checker, path: &str, map: &Map<String, Value>) -> Option<Leaf> {
    if !map.contains_key("field") && !map.contains_key("op") {
        return c.fail(
            path,
            "a condition node needs `all`, `any`, `not`, or `field` and `op`",
        );
    }
    c.unknown_keys(path, map, &["field", "op", "value", "ignore_case"]);
    let field = c
        .required(map, path, "field")
        .and_then(|v| c.path(&join(path, "field"), v));
    let op_path = join(path, "op");
    let op = c.required(map, path, "op").and_then(|v| {
        let name = c.text(&op_path, v, 1, 32, false)?;
        match Op::from_name(&name) {
            Some(op) => Some(op),
            None => {
                let names: Vec<&str> = Op::ALL.iter().map(|op| op.name()).collect();
                c.fail(
                    &op_path,
                    format!("unknown op `{name}`; expected one of {}", names.join(", ")),
                )
            }
        }
    });
    let ignore_case = match c.optional(map, "ignore_case") {
        None => Some(false),
        Some(v) => c.boolean(&join(path, "ignore_case"), v),
    };
    let value_path = join(path, "value");
    let value = match map.get("value") {
        Some(v) => Some(v.clone()),
        None => c.fail(&value_path, "is required"),
    };
    let (field, op, ignore_case, value) = (field?, op?, ignore_case?, value?);
    check_operand(c, &value_path, op, &value, ignore_case)?;
    Some(Leaf {
        field,
        op,
        value,
        ignore_case,
    })
}

/// Checks that the operand suits the operator, e.g. `gte needs a number`.
fn check_operand(
    c: &mut Checker,
    path: &str,
    op: Op,
    value: &Value,
    ignore_case: bool,
) -> Option<()> {
    let name = op.name();
    match op {
        Op::Eq | Op::Ne | Op::Contains => Some(()),
        Op::Gt | Op::Gte | Op::Lt | Op::Lte => match value {
            Value::Number(_) => Some(()),
            _ => c.fail(path, format!("{name} needs a number")),
        },
        Op::In | Op::NotIn => match value {
            Value::Array(_) => Some(()),
            _ => c.fail(path, format!("{name} needs an array")),
        },
        Op::StartsWith | Op::EndsWith => match value {
            Value::String(_) => Some(()),
            _ => c.fail(path, format!("{name} needs a string")),
        },
        Op::Exists => match value {
            Value::Bool(_) => Some(()),
            _ => c.fail(path, "exists needs true or false"),
        },
        Op::Matches => match value {
            Value::String(pattern) if pattern.len() > MAX_REGEX_BYTES => c.fail(
                path,
                format!(
                    "regex is {} bytes, over the limit of {MAX_REGEX_BYTES}",
                    pattern.len()
                ),
            ),
            Value::String(pattern) => match crate::condition::check_regex(pattern, ignore_case) {
                Ok(_) => Some(()),
                Err(e) => c.fail(path, format!("invalid regex: {e}")),
            },
            _ => c.fail(path, "matches needs a regex string"),
        },
    }
}

fn parse_actions(c: &mut Checker, path: &str, value: &Value) -> Option<Vec<Action>> {
    let items = c.array(path, value, 1, MAX_ACTIONS)?;
    let mut actions = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        match parse_action(c, &format!("{path}[{i}]"), item) {
            Some(action) => actions.push(action),
            None => ok = false,
        }
    }
    ok.then_some(actions)
}

fn parse_action(c: &mut Checker, path: &str, value: &Value) -> Option<Action> {
    let map = c.object(path, value)?;
    let type_path = join(path, "type");
    let kind_name = c
        .required(map, path, "type")
        .and_then(|v| c.text(&type_path, v, 1, 32, false))?;
    let max_age_seconds = match c.optional(map, "max_age_seconds") {
        None => Some(None),
        Some(v) => c
            .uint(&join(path, "max_age_seconds"), v, 1, MAX_AGE_SECONDS)
            .map(Some),
    };
    let mut templates = TemplateSet::new();
    let kind = match kind_name.as_str() {
        "webhook" => {
            c.unknown_keys(
                path,
                map,
                &[
                    "type",
                    "url",
                    "method",
                    "headers",
                    "body",
                    "timeout_ms",
                    "max_age_seconds",
                ],
            );
            parse_webhook(c, path, map, &mut templates).map(ActionKind::Webhook)
        }
        "publish" => {
            c.unknown_keys(path, map, &["type", "stream", "payload", "max_age_seconds"]);
            let stream_path = join(path, "stream");
            let stream = c
                .required(map, path, "stream")
                .and_then(|v| c.text(&stream_path, v, 1, MAX_STREAM_NAME_BYTES, false));
            let payload = match c.optional(map, "payload") {
                None => Some(None),
                Some(v) => c
                    .template_value(&mut templates, &join(path, "payload"), v)
                    .map(Some),
            };
            Some(ActionKind::Publish(PublishAction {
                stream: stream?,
                payload: payload?,
            }))
        }
        "log" => {
            c.unknown_keys(path, map, &["type", "message", "level", "max_age_seconds"]);
            let message_path = join(path, "message");
            let message = c
                .required(map, path, "message")
                .and_then(|v| c.text(&message_path, v, 1, 4096, false))
                .and_then(|m| {
                    c.template_string(&mut templates, &message_path, &m)
                        .map(|()| m)
                });
            let level_path = join(path, "level");
            let level =
                match c.optional(map, "level") {
                    None => Some(LogLevel::Info),
                    Some(v) => c.text(&level_path, v, 1, 16, false).and_then(|name| {
                        match LogLevel::ALL
                            .into_iter()
                            .find(|l| l.as_str() == name.to_ascii_lowercase())
                        {
                            Some(level) => Some(level),
                            None => c.fail(
                                &level_path,
                                "must be one of trace, debug, info, warn, error",
                            ),
                        }
                    }),
                };
            Some(ActionKind::Log(LogAction {
                message: message?,
                level: level?,
            }))
        }
        other => c.fail(
            &type_path,
            format!("unknown action type `{other}`; expected webhook, publish or log"),
        ),
    };
    Some(Action {
        kind: kind?,
        max_age_seconds: max_age_seconds?,
    })
}

fn parse_webhook(
    c: &mut Checker,
    path: &str,
    map: &Map<String, Value>,
    templates: &mut TemplateSet,
) -> Option<WebhookAction> {
    let url_path = join(path, "url");
    let url = c.required(map, path, "url").and_then(|v| {
        let text = c.text(&url_path, v, 1, MAX_URL_BYTES, false)?;
        match url::Url::parse(&text) {
            Ok(u) if !matches!(u.scheme(), "http" | "https") => {
                c.fail(&url_path, "must be an http or https URL")
            }
            Ok(u) if !u.username().is_empty() || u.password().is_some() => {
                c.fail(&url_path, "must not carry credentials; use a header")
            }
            Ok(_) => Some(text),
            Err(e) => c.fail(&url_path, format!("is not a valid URL: {e}")),
        }
    });
    let method_path = join(path, "method");
    let method = match c.optional(map, "method") {
        None => Some(HttpMethod::Post),
        Some(v) => c.text(&method_path, v, 1, 16, false).and_then(|name| {
            match HttpMethod::ALL
                .into_iter()
                .find(|m| m.as_str().eq_ignore_ascii_case(&name))
            {
                Some(m) => Some(m),
                None => c.fail(&method_path, "must be one of GET, POST, PUT, PATCH, DELETE"),
            }
        }),
    };
    let headers_path = join(path, "headers");
    let headers = match c.optional(map, "headers") {
        None => Some(BTreeMap::new()),
        Some(v) => c.object(&headers_path, v).and_then(|h| {
            if h.len() > MAX_HEADERS {
                return c.fail(&headers_path, format!("more than {MAX_HEADERS} headers"));
            }
            let mut out = BTreeMap::new();
            let mut ok = true;
            for (name, value) in h {
                let p = join(&headers_path, name);
                if !is_header_name(name) {
                    ok = c.fail::<()>(&p, "is not a valid header name").is_some();
                } else if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                    ok = c
                        .fail::<()>(&p, "is set by the service and cannot be overridden")
                        .is_some();
                } else if let Some(text) = c.text(&p, value, 0, 8192, false) {
                    if text.contains(['\r', '\n']) {
                        ok = c.fail::<()>(&p, "must not contain line breaks").is_some();
                    } else if c.template_string(templates, &p, &text).is_some() {
                        out.insert(name.clone(), text);
                    } else {
                        ok = false;
                    }
                } else {
                    ok = false;
                }
            }
            ok.then_some(out)
        }),
    };
    let body = match c.optional(map, "body") {
        None => Some(None),
        Some(v) => c
            .template_value(templates, &join(path, "body"), v)
            .map(Some),
    };
    let timeout_ms = match c.optional(map, "timeout_ms") {
        None => Some(DEFAULT_TIMEOUT_MS),
        Some(v) => c.uint(&join(path, "timeout_ms"), v, 1, MAX_TIMEOUT_MS),
    };
    Some(WebhookAction {
        url: url?,
        method: method?,
        headers: headers?,
        body: body?,
        timeout_ms: timeout_ms?,
    })
}

/// RFC 9110 `token`.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Serialized size without allocating the text.
/// Reports every string and key holding U+0000, with its path.
fn nul_characters(c: &mut Checker, path: &str, value: &Value) {
    let at = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::String(s) if s.contains('\0') => {
            c.error(path, "must not contain the character U+0000");
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                nul_characters(c, &format!("{path}[{i}]"), item);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                if key.contains('\0') {
                    c.error(path, "a key must not contain the character U+0000");
                    continue;
                }
                nul_characters(c, &at(key), item);
            }
        }
        _ => {}
    }
}

fn json_size(value: &Value) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing to a counter cannot fail; a failure would only under-count.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

/// Collects problems; each check returns `None` after recording why.
#[derive(Default)]
struct Checker {
    errors: Vec<FieldError>,
}

impl Checker {
    fn error(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            path: path.to_owned(),
            message: message.into(),
        });
    }

    fn fail<T>(&mut self, path: &str, message: impl Into<String>) -> Option<T> {
        self.error(path, message);
        None
    }

    fn finish_err(self) -> ValidationErrors {
        ValidationErrors(self.errors)
    }

    fn kind(value: &Value) -> &'static str {
        match value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }

    fn required<'a>(
        &mut self,
        map: &'a Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<&'a Value> {
        match map.get(key) {
            None | Some(Value::Null) => self.fail(&join(path, key), "is required"),
            Some(v) => Some(v),
        }
    }

    /// An optional key; `null` counts as absent.
    fn optional<'a>(&self, map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
        map.get(key).filter(|v| !v.is_null())
    }

    fn unknown_keys(&mut self, path: &str, map: &Map<String, Value>, allowed: &[&str]) {
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                self.error(&join(path, key), "is not a known field");
            }
        }
    }

    fn object<'a>(&mut self, path: &str, value: &'a Value) -> Option<&'a Map<String, Value>> {
        match value {
            Value::Object(map) => Some(map),
            other => self.fail(
                path,
                format!("must be an object, not {}", Self::kind(other)),
            ),
        }
    }

    fn array<'a>(
        &mut self,
        path: &str,
        value: &'a Value,
        min: usize,
        max: usize,
    ) -> Option<&'a [Value]> {
        match value {
            Value::Array(items) if items.len() < min => {
                self.fail(path, format!("needs at least {min} item(s)"))
            }
            Value::Array(items) if items.len() > max => self.fail(
                path,
                format!("has {} items, over the limit of {max}", items.len()),
            ),
            Value::Array(items) => Some(items),
            other => self.fail(path, format!("must be an array, not {}", Self::kind(other))),
        }
    }

    fn text(
        &mut self,
        path: &str,
        value: &Value,
        min_chars: usize,
        max_chars: usize,
        trim: bool,
    ) -> Option<String> {
        let Value::String(s) = value else {
            return self.fail(path, format!("must be a string, not {}", Self::kind(value)));
        };
        let s = if trim { s.trim() } else { s.as_str() };
        let chars = s.chars().count();
        if chars < min_chars {
            self.fail(path, "must not be empty")
        } else if chars > max_chars {
            self.fail(path, format!("is longer than {max_chars} characters"))
        } else {
            Some(s.to_owned())
        }
    }

    fn uint(&mut self, path: &str, value: &Value, min: u32, max: u32) -> Option<u32> {
        match value.as_u64() {
            Some(n) if n >= u64::from(min) && n <= u64::from(max) => u32::try_from(n).ok(),
            _ if value.is_number()
                && value.as_f64().is_some_and(|f| f.fract() == 0.0 && f >= 0.0) =>
            {
                self.fail(path, format!("must be between {min} and {max}"))
            }
            _ => self.fail(
                path,
                format!("must be a whole number between {min} and {max}"),
            ),
        }
    }

    fn boolean(&mut self, path: &str, value: &Value) -> Option<bool> {
        match value {
            Value::Bool(b) => Some(*b),
            other => self.fail(
                path,
                format!("must be true or false, not {}", Self::kind(other)),
            ),
        }
    }

    fn uuid(&mut self, path: &str, value: &Value) -> Option<Uuid> {
        match value.as_str().map(Uuid::parse_str) {
            Some(Ok(id)) => Some(id),
            _ => self.fail(path, "must be a UUID string"),
        }
    }

    fn path(&mut self, path: &str, value: &Value) -> Option<FieldPath> {
        let Value::String(raw) = value else {
            return self.fail(path, "must be a field path string such as `data.user.id`");
        };
        match FieldPath::parse(raw) {
            Ok(p) => Some(p),
            Err(e) => self.fail(path, e),
        }
    }

    fn template_value(
        &mut self,
        templates: &mut TemplateSet,
        path: &str,
        value: &Value,
    ) -> Option<JsonText> {
        match templates.add_value(path, value) {
            Ok(_) => Some(JsonText::from_value(value)),
            Err(e) => {
                self.errors.push(e);
                None
            }
        }
    }

    fn template_string(
        &mut self,
        templates: &mut TemplateSet,
        path: &str,
        text: &str,
    ) -> Option<()> {
        match templates.add_string(path, text, false) {
            Ok(_) => Some(()),
            Err(e) => {
                self.errors.push(e);
                None
            }
        }
    }
}
