//! A rule compiled for evaluation, and what evaluating it produces.

use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::OnceLock;
use uuid::Uuid;

use crate::condition::{Node, TraceNode};
use crate::event::Event;
use crate::model::*;
use crate::problems::{FieldError, ValidationErrors};
use crate::template::{context, RenderBudget, RenderError, TemplateSet, TemplateValue};
use crate::template_view::{Found, TemplateRoot};
use crate::validate::parse_rule_spec;

/// A rule ready to be matched: condition compiled; action templates compiled on the
/// first render (a compiled template costs kilobytes, and most rules of a large
/// installation are idle at any moment; validation has already parsed them).
/// Which bucket of a rule an event falls in, for a cooldown (`cooldown_key`) or a
/// threshold (`group_by`). Buckets follow the matching's equality: a string is never
/// a number (`"42"` and `42` are two buckets), numbers compare numerically (`10` and
/// `10.0` are one).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The rule has no key: one bucket for the whole rule.
    WholeRule,
    /// The rule has a key, and the event lacks the field.
    Missing,
    /// The key field holds this string.
    Text(String),
    /// The key field holds another JSON value: its canonical JSON (numbers in one
    /// spelling per value: `10.0` is `10`).
    Json(String),
}

impl Scope {
    fn of(key: Option<&crate::path::FieldPath>, event: &Event) -> Self {
        let Some(path) = key else {
            return Self::WholeRule;
        };
        match path.lookup(event) {
            None => Self::Missing,
            Some(crate::json::Json::String(s)) => Self::Text(s.to_owned()),
            Some(other) => Self::Json(canonical_json(&other.to_value())),
        }
    }

    /// The scopes a key value given as text may name (`?key=` of the cooldown API):
    /// the string itself, and the JSON value it spells when it spells one that is
    /// not a string (`42` names both `"42"` and `42`).
    pub fn named_by(text: &str) -> Vec<Self> {
        let mut scopes = vec![Self::Text(text.to_owned())];
        if let Ok(value) = serde_json::from_str::<Value>(text) {
            if !value.is_string() {
                scopes.push(Self::Json(canonical_json(&value)));
            }
        }
        scopes
    }

    /// The key value as JSON, when the event has one (`None` for the whole rule or
    /// a missing field).
    pub fn value(&self) -> Option<Value> {
        match self {
            Self::Text(s) => Some(Value::String(s.clone())),
            Self::Json(j) => serde_json::from_str(j).ok(),
            Self::WholeRule | Self::Missing => None,
        }
    }
}

/// JSON text in which equal values (as `eq` compares them) are spelled alike:
/// integral numbers without a fraction, other numbers in their shortest spelling.
fn canonical_json(value: &Value) -> String {
    match value {
        Value::Number(n) => canonical_number(n),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(canonical_json).collect();
            format!("[{}]", parts.join(","))
        }
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), canonical_json(v)))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        other => other.to_string(),
    }
}

fn canonical_number(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    match n.as_f64() {
        // Integral and exactly representable as an integer: spelled as one.
        Some(f) if f.fract() == 0.0 && f.abs() < 1e18 => format!("{}", f as i64),
        Some(f) => format!("{f}"),
        None => n.to_string(),
    }
}

/// Laid out in order (`repr(C)`), the condition first: matching reads it right after
/// the `Arc`'s counts, in the rule's first cache lines.
#[derive(Debug, Clone)]
#[repr(C)]
pub struct CompiledRule {
    condition: Option<Node>,
    rule: Rule,
    any_type: bool,
    /// Boxed: an idle rule pays one pointer for it.
    rendering: OnceLock<Box<Result<Rendering, FieldError>>>,
    /// The webhook destinations (`host:port`) its actions call, each once.
    destinations: Box<[std::sync::Arc<str>]>,
    /// Names the threshold's definition; see [`Self::threshold_generation`].
    threshold_generation: Box<str>,
}

#[derive(Debug, Clone)]
struct Rendering {
    actions: Vec<CompiledAction>,
    templates: TemplateSet,
}

#[derive(Debug, Clone)]
struct CompiledAction {
    max_age_seconds: Option<u32>,
    kind: CompiledActionKind,
}

#[derive(Debug, Clone)]
enum CompiledActionKind {
    Webhook {
        url: String,
        method: HttpMethod,
        headers: Vec<(String, TemplateValue)>,
        body: Option<TemplateValue>,
        timeout_ms: u32,
    },
    Publish {
        stream: String,
        payload: Option<TemplateValue>,
    },
    Log {
        message: TemplateValue,
        level: LogLevel,
    },
}

/// The result of a traced evaluation (the dry run).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// The event's type is one the rule listens to.
    pub event_type_matched: bool,
    /// The condition holds (true when the rule has none).
    pub condition_matched: bool,
    /// Both: the trigger fires, before threshold and cooldown.
    pub matched: bool,
    /// Every condition node's result, in pre-order; empty without a condition.
    pub trace: Vec<TraceNode>,
}

/// An action with its templates rendered for one event.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RenderedAction {
    #[serde(flatten)]
    pub kind: RenderedActionKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<u32>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RenderedActionKind {
    Webhook {
        url: String,
        method: HttpMethod,
        headers: BTreeMap<String, String>,
        body: Value,
        timeout_ms: u32,
    },
    Publish {
        stream: String,
        payload: Value,
    },
    Log {
        message: String,
        level: LogLevel,
    },
}

fn threshold_generation(spec: &RuleSpec) -> Box<str> {
    let trigger = &spec.trigger_config;
    let defined = json!({
        "livestream_id": spec.livestream_id,
        "event_types": trigger.event_types,
        "condition": trigger.condition,
        "threshold": trigger.threshold,
    });
    let digest = sha1_smol::Sha1::from(defined.to_string().as_bytes())
        .digest()
        .to_string();
    digest[..12].into()
}

/// What templates see as `rule`.
#[derive(Serialize)]
struct RuleScope<'a> {
    id: Uuid,
    name: &'a str,
    livestream_id: Uuid,
    version: i32,
}

impl TemplateRoot for RuleScope<'_> {
    fn template_value(&self) -> minijinja::Value {
        minijinja::Value::from(minijinja::value::Serde(self))
    }

    /// `rule.name` and `rule.version` (the ids are left to the context, which
    /// spells them).
    fn find(&self, names: &[String]) -> Found<'_> {
        let Some((field, rest)) = names.split_first() else {
            return Found::Unknown;
        };
        match field.as_str() {
            "id" | "livestream_id" => Found::Unknown,
            "name" if rest.is_empty() => Found::Text(self.name),
            "version" if rest.is_empty() => Found::Value(self.version.into()),
            // Not a field, or a name of a string or a number.
            _ => Found::Undefined,
        }
    }
}

impl CompiledRule {
    /// Compiles a validated rule. The condition moves into its compiled form (the
    /// trace of [`Self::evaluate_traced`] reports it node by node), so
    /// `rule().spec.trigger_config.condition` is `None` here: a rule set of 100,000
    /// holds each condition once.
    pub fn compile(mut rule: Rule) -> Self {
        let threshold_generation = threshold_generation(&rule.spec);
        let condition = rule
            .spec
            .trigger_config
            .condition
            .take()
            .map(|c| Node::compile(&c));
        let any_type = rule
            .spec
            .trigger_config
            .event_types
            .iter()
            .any(|t| t == TriggerConfig::ANY_TYPE);
        let destinations = crate::address::destinations(&rule.spec).into_boxed_slice();
        Self {
            rule,
            any_type,
            condition,
            rendering: OnceLock::new(),
            destinations,
            threshold_generation,
        }
    }

    /// A short name of what the threshold counts: its count, window and `group_by`,
    /// the condition, the event types and the livestream. Threshold state is kept
    /// under it, so a change of any of them starts the count afresh, while an edit of
    /// the name, the actions or the cooldown keeps it.
    pub fn threshold_generation(&self) -> &str {
        &self.threshold_generation
    }

    /// Whether every action would be skipped as stale for an event of time
    /// `event_ms` handled at `now_ms` (each has `max_age_seconds`, all exceeded):
    /// such a pair is `skipped` and takes no cooldown.
    pub fn all_actions_stale(&self, event_ms: i64, now_ms: i64) -> bool {
        let age_ms = now_ms.saturating_sub(event_ms);
        let actions = &self.rule.spec.actions;
        !actions.is_empty()
            && actions.iter().all(|a| {
                a.max_age_seconds
                    .is_some_and(|max| age_ms > i64::from(max) * 1000)
            })
    }

    /// The webhook destinations (`host:port`) this rule's actions call, each once:
    /// computed when the rule is compiled, never per event.
    pub fn destinations(&self) -> &[std::sync::Arc<str>] {
        &self.destinations
    }

    fn rendering(&self) -> Result<&Rendering, RenderError> {
        self.rendering
            .get_or_init(|| Box::new(self.compile_rendering()))
            .as_ref()
            .as_ref()
            .map_err(|e| RenderError {
                path: e.path.clone(),
                message: e.message.clone(),
            })
    }

    fn compile_rendering(&self) -> Result<Rendering, FieldError> {
        let mut templates = TemplateSet::new();
        let mut actions = Vec::with_capacity(self.rule.spec.actions.len());
        for (i, action) in self.rule.spec.actions.iter().enumerate() {
            actions.push(compile_action(
                &mut templates,
                &format!("actions[{i}]"),
                action,
            )?);
        }
        Ok(Rendering { actions, templates })
    }

    /// Validates a stored rule's JSON and compiles it (the worker's and the load tool's loader).
    pub fn from_json(id: Uuid, version: i32, body: &Value) -> Result<Self, ValidationErrors> {
        let spec = parse_rule_spec(body)?;
        let now = chrono::Utc::now();
        Ok(Self::compile(Rule {
            id,
            spec,
            version,
            created_at: now,
            updated_at: now,
        }))
    }

    pub fn rule(&self) -> &Rule {
        &self.rule
    }

    pub fn id(&self) -> Uuid {
        self.rule.id
    }

    pub fn livestream_id(&self) -> Uuid {
        self.rule.spec.livestream_id
    }

    pub fn event_types(&self) -> &[String] {
        &self.rule.spec.trigger_config.event_types
    }

    /// Listens to every event type (`"*"`).
    pub fn any_type(&self) -> bool {
        self.any_type
    }

    pub fn matches_type(&self, event_type: &str) -> bool {
        self.any_type || self.event_types().iter().any(|t| t == event_type)
    }

    /// Whether the condition holds; the caller has already matched livestream and type.
    #[inline]
    pub fn condition_holds(&self, event: &Event) -> bool {
        self.condition.as_ref().is_none_or(|c| c.eval(event))
    }

    /// Livestream, type and condition: the trigger fires (before threshold and cooldown).
    pub fn matches(&self, event: &Event) -> bool {
        event.livestream_id == self.livestream_id()
            && self.matches_type(event.event_type())
            && self.condition_holds(event)
    }

    /// Evaluates every node and reports each result, for the dry run. The livestream is
    /// not compared: a draft rule may be tried on any event.
    pub fn evaluate_traced(&self, event: &Event) -> Evaluation {
        let event_type_matched = self.matches_type(event.event_type());
        let mut trace = Vec::new();
        let condition_matched = self
            .condition
            .as_ref()
            .is_none_or(|c| c.eval_traced(event, "trigger_config.condition".into(), &mut trace));
        Evaluation {
            event_type_matched,
            condition_matched,
            matched: event_type_matched && condition_matched,
            trace,
        }
    }

    /// The bucket of this event for the rule's cooldown.
    pub fn cooldown_scope(&self, event: &Event) -> Scope {
        Scope::of(self.rule.spec.cooldown_key.as_ref(), event)
    }

    /// The threshold group of this event.
    pub fn threshold_group(&self, event: &Event) -> Scope {
        Scope::of(
            self.rule
                .spec
                .trigger_config
                .threshold
                .as_ref()
                .and_then(|t| t.group_by.as_ref()),
            event,
        )
    }

    /// Renders every action for `event`, in order; one failed render does not stop the rest.
    pub fn render_actions(&self, event: &Event) -> Vec<Result<RenderedAction, RenderError>> {
        let scope = RuleScope {
            id: self.rule.id,
            name: &self.rule.spec.name,
            livestream_id: self.rule.spec.livestream_id,
            version: self.rule.version,
        };
        let rendering = match self.rendering() {
            Ok(r) => r,
            Err(e) => {
                return self
                    .rule
                    .spec
                    .actions
                    .iter()
                    .map(|_| Err(e.clone()))
                    .collect()
            }
        };
        let ctx = context(event, &scope);
        let budget = RenderBudget::new();
        rendering
            .actions
            .iter()
            .map(|action| self.render_action(&rendering.templates, action, event, &ctx, &budget))
            .collect()
    }

    fn render_action(
        &self,
        t: &TemplateSet,
        action: &CompiledAction,
        event: &Event,
        ctx: &crate::template::Context<'_>,
        budget: &RenderBudget,
    ) -> Result<RenderedAction, RenderError> {
        let kind = match &action.kind {
            CompiledActionKind::Webhook {
                url,
                method,
                headers,
                body,
                timeout_ms,
            } => RenderedActionKind::Webhook {
                url: url.clone(),
                method: *method,
                headers: headers
                    .iter()
                    .map(|(name, value)| Ok((name.clone(), t.render_string(value, ctx, budget)?)))
                    .collect::<Result<_, RenderError>>()?,
                body: match body {
                    Some(body) => t.render_value(body, ctx, budget)?,
                    None => self.default_body(event),
                },
                timeout_ms: *timeout_ms,
            },
            CompiledActionKind::Publish { stream, payload } => RenderedActionKind::Publish {
                stream: stream.clone(),
                payload: match payload {
                    Some(payload) => t.render_value(payload, ctx, budget)?,
                    None => self.default_body(event),
                },
            },
            CompiledActionKind::Log { message, level } => RenderedActionKind::Log {
                message: t.render_string(message, ctx, budget)?,
                level: *level,
            },
        };
        Ok(RenderedAction {
            kind,
            max_age_seconds: action.max_age_seconds,
        })
    }

    /// `{"rule": {id, name}, "event": <event>}`: the body and payload when none is given.
    pub fn default_body(&self, event: &Event) -> Value {
        json!({
            "rule": {"id": self.rule.id, "name": self.rule.spec.name},
            "event": event,
        })
    }
}

fn compile_action(
    templates: &mut TemplateSet,
    path: &str,
    action: &Action,
) -> Result<CompiledAction, FieldError> {
    let kind = match &action.kind {
        ActionKind::Webhook(w) => CompiledActionKind::Webhook {
            url: w.url.clone(),
            method: w.method,
            headers: w
                .headers
                .iter()
                .map(|(name, value)| {
                    let t =
                        templates.add_string(&format!("{path}.headers.{name}"), value, false)?;
                    Ok((name.clone(), t))
                })
                .collect::<Result<_, FieldError>>()?,
            body: w
                .body
                .as_ref()
                .map(|b| templates.add_value(&format!("{path}.body"), &b.to_value()))
                .transpose()?,
            timeout_ms: w.timeout_ms,
        },
        ActionKind::Publish(p) => CompiledActionKind::Publish {
            stream: p.stream.clone(),
            payload: p
                .payload
                .as_ref()
                .map(|b| templates.add_value(&format!("{path}.payload"), &b.to_value()))
                .transpose()?,
        },
        ActionKind::Log(l) => CompiledActionKind::Log {
            message: templates.add_string(&format!("{path}.message"), &l.message, false)?,
            level: l.level,
        },
    };
    Ok(CompiledAction {
        max_age_seconds: action.max_age_seconds,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    /// `rule.…` lookups the scope answers itself read as minijinja reads the rule.
    #[test]
    fn the_rule_answers_lookups_as_minijinja_reads_it() {
        let scope = RuleScope {
            id: Uuid::from_u128(1),
            name: "Big \"one\" <b>",
            livestream_id: Uuid::from_u128(2),
            version: -7,
        };
        let event = Event::new(
            Uuid::nil(),
            "t",
            Uuid::nil(),
            DateTime::UNIX_EPOCH,
            json!({}),
        );
        let source = "{{ rule.name }}|{{ rule.version }}|{{ rule.id }}|{{ rule.livestream_id }}|\
                      {{ rule.nope }}|{{ rule.name.x }}|{{ rule.version.x }}|{{ rule.id.x }}|{{ rule }}";
        let mut set = TemplateSet::new();
        let template = set.add_string("t", source, false).expect("compiles");
        let render = |ctx| set.render_value(&template, &ctx, &RenderBudget::new());
        let direct = render(context(&event, &scope));
        assert_eq!(direct, render(context(&event, &scope).through_minijinja()));
        let Ok(Value::String(text)) = direct else {
            panic!("renders to text: {direct:?}");
        };
        assert!(
            text.starts_with(
                "Big \"one\" <b>|-7|00000000-0000-0000-0000-000000000001|00000000-0000-0000-0000-000000000002||||"
            ),
            "{text}"
        );
    }
}
