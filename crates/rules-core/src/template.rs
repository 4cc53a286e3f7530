//! Action templates: `{{ expr }}` inside webhook bodies, publish payloads, header
//! values and log messages, rendered with `event` and `rule` in scope (minijinja).
//!
//! Templates are parsed when a rule is validated and compiled, never per event. A
//! string that is exactly one `{{ expr }}` keeps the value's JSON type (a number stays
//! a number); any other string with template syntax renders to a string. Rendering
//! is bounded by minijinja's fuel, so a hostile template cannot spin a worker, and
//! an undefined lookup renders as empty (or `null` for a sole expression) rather
//! than failing the action.

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde_json::{Map, Value};
use std::sync::LazyLock;

use crate::problems::FieldError;
use crate::template_lookup::{self, lookup, Piece};
use crate::template_view::{Found, TemplateRoot};

/// Instructions one render may spend before it is stopped.
pub const RENDER_FUEL: u64 = 100_000;

/// Bytes all the templates of one execution (every action of a rule for one event)
/// may render together. A rule may hold thousands of templates; this bounds what
/// one execution, or one dry run, can make a process hold.
pub const MAX_RENDERED_BYTES: usize = 256 << 10;

/// What is left of [`MAX_RENDERED_BYTES`] for one execution.
pub(crate) struct RenderBudget(std::cell::Cell<usize>);

impl RenderBudget {
    pub fn new() -> Self {
        Self(std::cell::Cell::new(MAX_RENDERED_BYTES))
    }

    fn spend(&self, bytes: usize, path: &str) -> Result<(), RenderError> {
        let left = self.0.get();
        if bytes > left {
            self.0.set(0);
            return Err(RenderError {
                path: path.to_owned(),
                message: format!(
                    "the execution's templates rendered over {MAX_RENDERED_BYTES} bytes together"
                ),
            });
        }
        self.0.set(left - bytes);
        Ok(())
    }
}

static BASE: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_fuel(Some(RENDER_FUEL));
    env.set_formatter(json_spelling);
    env
});

/// Values inside a text template are written as JSON spells them: an object or
/// array as JSON (`{"id":"u-1"}`, not Python's `{'id': 'u-1'}`), booleans as
/// `true`/`false`, none as `null`; strings and numbers as themselves.
fn json_spelling(
    out: &mut minijinja::Output,
    state: &mut minijinja::State,
    value: &minijinja::Value,
) -> Result<(), minijinja::Error> {
    match json_spelled(value) {
        Some(text) => {
            out.write_str(&text?)?;
            Ok(())
        }
        None => minijinja::escape_formatter(out, state, value),
    }
}

/// An object, array, boolean or none as JSON; `None` for the rest, which minijinja's
/// own formatter writes (without escaping: as they display).
fn json_spelled(value: &minijinja::Value) -> Option<Result<String, minijinja::Error>> {
    use minijinja::value::ValueKind;
    match value.kind() {
        ValueKind::Map | ValueKind::Seq | ValueKind::Bool | ValueKind::None => {
            Some(serde_json::to_string(value).map_err(|e| {
                minijinja::Error::new(minijinja::ErrorKind::BadSerialization, e.to_string())
            }))
        }
        _ => None,
    }
}

/// A template failed to render for one event (fuel exhausted, a filter error, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template at {path} failed to render: {message}")]
pub struct RenderError {
    pub path: String,
    pub message: String,
}

/// One compiled template: its name in the environment, and its pieces when it is
/// only text and lookups, which render without minijinja's machine
/// ([`crate::template_lookup`]).
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    name: String,
    pieces: Option<Vec<Piece>>,
}

/// A JSON value with its template strings compiled, mirroring the value's shape.
#[derive(Debug, Clone)]
pub(crate) enum TemplateValue {
    Const(Value),
    /// Renders to a string.
    Text(Compiled),
    /// A sole `{{ expr }}`: renders to the expression's JSON value.
    Typed(Compiled),
    Array(Vec<TemplateValue>),
    Object(Vec<(String, TemplateValue)>),
}

/// The compiled templates of one rule.
#[derive(Clone)]
pub(crate) struct TemplateSet {
    env: Environment<'static>,
}

impl std::fmt::Debug for TemplateSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemplateSet").finish_non_exhaustive()
    }
}

impl TemplateSet {
    pub fn new() -> Self {
        Self { env: BASE.clone() }
    }

    /// Compiles every string inside `value`; `path` names the value in errors.
    pub fn add_value(&mut self, path: &str, value: &Value) -> Result<TemplateValue, FieldError> {
        Ok(match value {
            Value::String(s) => self.add_string(path, s, true)?,
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    out.push(self.add_value(&format!("{path}[{i}]"), item)?);
                }
                if out.iter().all(|t| matches!(t, TemplateValue::Const(_))) {
                    TemplateValue::Const(value.clone())
                } else {
                    TemplateValue::Array(out)
                }
            }
            Value::Object(map) => {
                let mut out = Vec::with_capacity(map.len());
                for (key, item) in map {
                    out.push((key.clone(), self.add_value(&format!("{path}.{key}"), item)?));
                }
                if out
                    .iter()
                    .all(|(_, t)| matches!(t, TemplateValue::Const(_)))
                {
                    TemplateValue::Const(value.clone())
                } else {
                    TemplateValue::Object(out)
                }
            }
            other => TemplateValue::Const(other.clone()),
        })
    }

    /// Compiles one string. With `keep_type`, a sole `{{ expr }}` keeps its JSON type.
    pub fn add_string(
        &mut self,
        path: &str,
        s: &str,
        keep_type: bool,
    ) -> Result<TemplateValue, FieldError> {
        if !has_template_syntax(s) {
            return Ok(TemplateValue::Const(Value::String(s.to_owned())));
        }
        let (source, typed, pieces) = match sole_expression(s) {
            Some(expr) if keep_type => (
                format!("{{{{ ({expr}) | tojson }}}}"),
                true,
                lookup(expr).map(|names| vec![Piece::Lookup(names)]),
            ),
            _ => (s.to_owned(), false, template_lookup::pieces(s)),
        };
        let name = path.to_owned();
        // Compiled by minijinja in every case: the same syntax errors, and the way
        // the pieces are rendered when the fast path is set aside (tests).
        self.env
            .add_template_owned(name.clone(), source)
            .map_err(|e| FieldError {
                path: path.to_owned(),
                message: format!("template syntax error: {}", describe(&e)),
            })?;
        let compiled = Compiled { name, pieces };
        Ok(if typed {
            TemplateValue::Typed(compiled)
        } else {
            TemplateValue::Text(compiled)
        })
    }

    pub fn render_value(
        &self,
        template: &TemplateValue,
        ctx: &Context<'_>,
        budget: &RenderBudget,
    ) -> Result<Value, RenderError> {
        Ok(match template {
            TemplateValue::Const(v) => v.clone(),
            TemplateValue::Text(t) => Value::String(self.render(t, ctx, budget)?),
            TemplateValue::Typed(t) => self.render_typed(t, ctx, budget)?,
            TemplateValue::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|t| self.render_value(t, ctx, budget))
                    .collect::<Result<_, _>>()?,
            ),
            TemplateValue::Object(entries) => {
                let mut map = Map::with_capacity(entries.len());
                for (key, t) in entries {
                    map.insert(key.clone(), self.render_value(t, ctx, budget)?);
                }
                Value::Object(map)
            }
        })
    }

    /// Renders a template that must give a string (header values, log messages).
    pub fn render_string(
        &self,
        template: &TemplateValue,
        ctx: &Context<'_>,
        budget: &RenderBudget,
    ) -> Result<String, RenderError> {
        match self.render_value(template, ctx, budget)? {
            Value::String(s) => Ok(s),
            other => Ok(other.to_string()),
        }
    }

    fn render(
        &self,
        t: &Compiled,
        ctx: &Context<'_>,
        budget: &RenderBudget,
    ) -> Result<String, RenderError> {
        let fail = |e: minijinja::Error| t.failed(describe(&e));
        let out = match t.pieces(ctx) {
            Some(pieces) => render_pieces(pieces, ctx).map_err(fail)?,
            None => self
                .env
                .get_template(&t.name)
                .map_err(fail)?
                .render(ctx.value())
                .map_err(fail)?,
        };
        budget.spend(out.len(), &t.name)?;
        Ok(out)
    }

    /// A sole expression's JSON value (`tojson`, read back).
    fn render_typed(
        &self,
        t: &Compiled,
        ctx: &Context<'_>,
        budget: &RenderBudget,
    ) -> Result<Value, RenderError> {
        let not_json =
            |e: serde_json::Error| t.failed(format!("expression did not give JSON: {e}"));
        let json = match t.pieces(ctx) {
            Some([Piece::Lookup(names)]) => {
                let json = ctx.lookup_json(names).map_err(not_json)?;
                budget.spend(json.len(), &t.name)?;
                json
            }
            _ => self.render(t, ctx, budget)?,
        };
        serde_json::from_str(&json).map_err(not_json)
    }
}

impl Compiled {
    /// Its pieces, when it renders without minijinja's machine in `ctx`.
    fn pieces(&self, ctx: &Context<'_>) -> Option<&[Piece]> {
        self.pieces.as_deref().filter(|_| ctx.lookups)
    }

    fn failed(&self, message: String) -> RenderError {
        RenderError {
            path: self.name.clone(),
            message,
        }
    }
}

/// Text and lookups, spelled as minijinja's formatter spells them. A lookup the
/// event or the rule answers itself ([`Found`]) is written without the context;
/// the rest are resolved in it, which is then made (once an execution).
fn render_pieces(pieces: &[Piece], ctx: &Context<'_>) -> Result<String, minijinja::Error> {
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Lookup(names) => match ctx.find(names) {
                Found::Text(text) => out.push_str(text),
                found => spell(&ctx.resolve(names, found), &mut out)?,
            },
        }
    }
    Ok(out)
}

/// Writes `value` as the formatter writes it inside text.
fn spell(value: &minijinja::Value, out: &mut String) -> Result<(), minijinja::Error> {
    use std::fmt::Write as _;
    match json_spelled(value) {
        Some(text) => out.push_str(&text?),
        None => write!(out, "{value}").map_err(|e| {
            minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string())
        })?,
    }
    Ok(())
}

/// The context templates render in (`event` and `rule`), made when the first
/// template needs it: an execution whose templates are constants, or text and
/// lookups the event and rule answer themselves, never makes it. The event is a
/// view whose values are converted as templates read them (`template_view`).
pub(crate) struct Context<'a> {
    event: &'a dyn TemplateRoot,
    rule: &'a dyn TemplateRoot,
    value: std::cell::OnceCell<minijinja::Value>,
    /// Whether templates of text and lookups skip minijinja's machine (always, but
    /// in the tests that hold the two ways equal).
    lookups: bool,
}

impl Context<'_> {
    fn value(&self) -> &minijinja::Value {
        self.value.get_or_init(|| {
            minijinja::context! {
                event => self.event.template_value(),
                rule => self.rule.template_value(),
            }
        })
    }

    /// The value of lookup `names`, as `find` found it or else from the context.
    fn resolve(&self, names: &[String], found: Found<'_>) -> minijinja::Value {
        match found {
            Found::Text(text) => minijinja::Value::from(text),
            Found::Value(value) => value,
            Found::Undefined => minijinja::Value::UNDEFINED,
            Found::Unknown => template_lookup::resolve(self.value(), names),
        }
    }

    /// The JSON of lookup `names`, a sole expression's value: a string the event or
    /// the rule answers is written as it is, without a template value made of it.
    fn lookup_json(&self, names: &[String]) -> serde_json::Result<String> {
        match self.find(names) {
            Found::Text(text) => serde_json::to_string(text),
            found => serde_json::to_string(&self.resolve(names, found)),
        }
    }

    /// The value of a lookup (`event.…` or `rule.…`) when found without the context.
    fn find(&self, names: &[String]) -> Found<'_> {
        match names.split_first() {
            Some((root, rest)) if root == "event" => self.event.find(rest),
            Some((root, rest)) if root == "rule" => self.rule.find(rest),
            _ => Found::Unknown,
        }
    }

    /// The same context with every lookup resolved by minijinja's machine.
    #[cfg(test)]
    pub(crate) fn through_minijinja(mut self) -> Self {
        self.lookups = false;
        self
    }
}

/// The context of one execution's templates.
pub(crate) fn context<'a>(event: &'a dyn TemplateRoot, rule: &'a dyn TemplateRoot) -> Context<'a> {
    Context {
        event,
        rule,
        value: std::cell::OnceCell::new(),
        lookups: true,
    }
}

fn has_template_syntax(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// The expression of a string that is exactly one `{{ expr }}`.
fn sole_expression(s: &str) -> Option<&str> {
    let inner = s.strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.strip_prefix(['-', '+']).unwrap_or(inner);
    let inner = inner.strip_suffix(['-', '+']).unwrap_or(inner);
    if has_template_syntax(inner) || inner.contains("}}") || inner.contains("%}") {
        return None;
    }
    Some(inner.trim())
}

fn describe(error: &minijinja::Error) -> String {
    match error.detail() {
        Some(detail) => format!("{detail} (line {})", error.line().unwrap_or(1)),
        None => error.kind().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(value: Value, event: Value) -> Value {
        let mut set = TemplateSet::new();
        let t = set.add_value("body", &value).expect("compiles");
        let rule = json!({"id": "r1", "name": "Rule"});
        let ctx = context(&event, &rule);
        set.render_value(&t, &ctx, &RenderBudget::new())
            .expect("renders")
    }

    /// An event that counts how often its view is made for templates.
    struct Counted(std::cell::Cell<u32>);

    impl TemplateRoot for Counted {
        fn template_value(&self) -> minijinja::Value {
            self.0.set(self.0.get() + 1);
            json!({"data": {"n": 1}}).template_value()
        }
    }

    /// A rule that counts how often its view is made, and answers `rule.name`.
    struct CountedRule(std::cell::Cell<u32>);

    impl TemplateRoot for CountedRule {
        fn template_value(&self) -> minijinja::Value {
            self.0.set(self.0.get() + 1);
            minijinja::Value::from(minijinja::value::Serde(json!({"name": "Rule"})))
        }

        fn find(&self, names: &[String]) -> Found<'_> {
            match names {
                [name] if name == "name" => Found::Text("Rule"),
                _ => Found::Unknown,
            }
        }
    }

    /// Text and lookups of strings, numbers, booleans and nothing, and sole lookups
    /// of them, are written without the context; an object looked up makes it.
    #[test]
    fn lookups_the_event_and_rule_answer_never_make_the_context() {
        let mut set = TemplateSet::new();
        let found = set
            .add_value(
                "a",
                &json!({"text": "{{ event.data.user.name }} ({{ event.data.user.tier }}, \
                                 {{ event.data.vip }}, {{ event.data.nothing }}{{ event.data.nope.x }}) \
                                 {{ event.type }} {{ rule.name }}"}),
            )
            .expect("compiles");
        let typed = set
            .add_value(
                "c",
                &json!({"who": "{{ event.data.user.name }}", "tier": "{{ event.data.user.tier }}",
                        "vip": "{{ event.data.vip }}", "nope": "{{ event.data.nope }}"}),
            )
            .expect("compiles");
        let unknown = set
            .add_value("b", &json!("{{ event.data.user }}"))
            .expect("compiles");
        let event = crate::Event::new(
            uuid::Uuid::nil(),
            "donation",
            uuid::Uuid::nil(),
            chrono::DateTime::UNIX_EPOCH,
            json!({"user": {"name": "ann", "tier": 2}, "vip": true, "nothing": null}),
        );
        let rule = CountedRule(std::cell::Cell::new(0));
        let ctx = context(&event, &rule);
        let budget = RenderBudget::new();
        assert_eq!(
            set.render_value(&found, &ctx, &budget),
            Ok(json!({"text": "ann (2, true, null) donation Rule"}))
        );
        assert_eq!(
            set.render_value(&typed, &ctx, &budget),
            Ok(json!({"who": "ann", "tier": 2, "vip": true, "nope": null}))
        );
        assert_eq!(rule.0.get(), 0, "the context was made");
        assert_eq!(
            set.render_value(&unknown, &ctx, &budget),
            Ok(json!({"name": "ann", "tier": 2}))
        );
        assert_eq!(rule.0.get(), 1);
    }

    #[test]
    fn the_event_is_converted_once_and_only_for_a_template() {
        let mut set = TemplateSet::new();
        let constant = set
            .add_value("a", &json!({"text": "fire"}))
            .expect("compiles");
        let templated = set
            .add_value("b", &json!(["{{ event.data.n }}", "n={{ event.data.n }}"]))
            .expect("compiles");
        let event = Counted(std::cell::Cell::new(0));
        let rule = json!({});
        let ctx = context(&event, &rule);
        let budget = RenderBudget::new();
        assert_eq!(
            set.render_value(&constant, &ctx, &budget),
            Ok(json!({"text": "fire"}))
        );
        assert_eq!(event.0.get(), 0, "converted for a constant");
        assert_eq!(
            set.render_value(&templated, &ctx, &budget),
            Ok(json!([1, "n=1"]))
        );
        assert_eq!(event.0.get(), 1);
    }

    #[test]
    fn sole_expressions_keep_their_type() {
        let event =
            json!({"data": {"amount": 25.5, "user": {"name": "alice", "tier": 2}, "tags": ["a"]}});
        let out = render(
            json!({"amount": "{{ event.data.amount }}", "tier": "{{- event.data.user.tier -}}",
                   "tags": "{{ event.data.tags }}", "missing": "{{ event.data.nope }}",
                   "text": "{{ event.data.user.name }} donated {{ event.data.amount }}!",
                   "rule": "{{ rule.name }}", "plain": "no templates", "n": 3}),
            event,
        );
        assert_eq!(
            out,
            json!({"amount": 25.5, "tier": 2, "tags": ["a"], "missing": null,
            "text": "alice donated 25.5!", "rule": "Rule", "plain": "no templates", "n": 3})
        );
    }

    #[test]
    fn undefined_lookups_render_empty() {
        let out = render(json!("hi {{ event.data.user.name }}!"), json!({"data": {}}));
        assert_eq!(out, json!("hi !"));
    }

    #[test]
    fn syntax_errors_are_reported_with_the_path() {
        let mut set = TemplateSet::new();
        let err = set
            .add_value("body", &json!({"x": ["{{ event.data. }}"]}))
            .expect_err("bad syntax");
        assert!(err.message.starts_with("template syntax error"), "{err:?}");
        assert_eq!(err.path, "body.x[0]");
        assert!(set.add_string("m", "{% if %}", false).is_err());
        assert!(set.add_string("m", "{{ unclosed", false).is_err());
    }

    #[test]
    fn runaway_templates_run_out_of_fuel() {
        let mut set = TemplateSet::new();
        let t = set
            .add_string(
                "m",
                "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
                false,
            )
            .expect("compiles");
        let event = json!({});
        let rule = json!({});
        let ctx = context(&event, &rule);
        assert!(set.render_value(&t, &ctx, &RenderBudget::new()).is_err());
    }

    #[test]
    fn detects_sole_expressions() {
        assert_eq!(sole_expression("{{ a.b }}"), Some("a.b"));
        assert_eq!(sole_expression("{{a}} {{b}}"), None);
        assert_eq!(sole_expression("x {{a}}"), None);
    }

    #[test]
    fn one_execution_renders_a_bounded_total() {
        // Each template is small; together they would be far over the bound.
        let mut set = TemplateSet::new();
        let many: Vec<Value> = (0..1_000)
            .map(|_| json!("{{ event.data.text }}{{ event.data.text }}"))
            .collect();
        let t = set
            .add_value("body", &Value::Array(many))
            .expect("compiles");
        let text = "x".repeat(1_000);
        let event = json!({"data": {"text": text}});
        let rule = json!({});
        let ctx = context(&event, &rule);
        let err = set
            .render_value(&t, &ctx, &RenderBudget::new())
            .expect_err("over the bound");
        assert!(err.message.contains("rendered over"), "{err:?}");
        // A single huge expression is stopped too.
        let mut one = TemplateSet::new();
        let t = one
            .add_value("body", &json!("{{ 'x' * 100000000 }}"))
            .expect("compiles");
        assert!(one.render_value(&t, &ctx, &RenderBudget::new()).is_err());
    }

    #[test]
    fn values_in_text_are_spelled_as_json() {
        let event = json!({"data": {"user": {"id": "u-1", "tags": ["a", 2]}, "vip": true}});
        let out = render(
            json!("user {{ event.data.user }} vip {{ event.data.vip }} tags {{ event.data.user.tags }}"),
            event,
        );
        assert_eq!(
            out,
            json!(r#"user {"id":"u-1","tags":["a",2]} vip true tags ["a",2]"#)
        );
    }

    mod lookups_as_minijinja {
        //! The model test of [`crate::template_lookup`]: on random templates and
        //! events, rendering text-and-lookup templates without minijinja's machine
        //! gives what minijinja gives.
        use super::*;
        use proptest::prelude::*;

        const NAMES: [&str; 14] = [
            "user",
            "name",
            "amount",
            "tags",
            "vip",
            "n",
            "data",
            "id",
            "event_type",
            "occurred_at",
            "livestream_id",
            "version",
            "nope",
            "true",
        ];

        fn json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                any::<f64>()
                    .prop_filter("finite", |f| f.is_finite())
                    .prop_map(Value::from),
                "[a-zé<>&'\" ]{0,8}".prop_map(Value::String),
            ];
            leaf.prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::btree_map(prop::sample::select(&NAMES[..]), inner, 0..5)
                        .prop_map(|m| Value::Object(
                            m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                        )),
                ]
            })
        }

        fn piece() -> impl Strategy<Value = String> {
            let path = (
                prop::sample::select(vec!["event", "rule", "event.data", "event.data.user"]),
                prop::collection::vec(prop::sample::select(&NAMES[..]), 0..3),
                prop::sample::select(vec![" ", "", "  "]),
            )
                .prop_map(|(root, names, pad)| {
                    let mut path = root.to_owned();
                    for name in names {
                        path.push('.');
                        path.push_str(name);
                    }
                    format!("{{{{{pad}{path}{pad}}}}}")
                });
            prop_oneof![path, "[a-z {}.é\n]{0,6}"]
        }

        proptest! {
            #[test]
            fn text_and_lookups_render_as_minijinja_renders_them(
                data in prop::collection::btree_map(prop::sample::select(&NAMES[..]), json(), 0..6),
                pieces in prop::collection::vec(piece(), 1..5),
                keep_type in any::<bool>(),
            ) {
                let data = Value::Object(data.into_iter().map(|(k, v)| (k.to_owned(), v)).collect());
                let event = crate::Event::new(
                    uuid::Uuid::nil(), "donation", uuid::Uuid::nil(),
                    chrono::DateTime::UNIX_EPOCH, data,
                );
                let source = pieces.concat();
                let mut set = TemplateSet::new();
                let Ok(t) = set.add_string("t", &source, keep_type) else {
                    return Ok(());
                };
                let rule = serde_json::json!({"id": "r1", "name": "Rule", "version": 3});
                let rendered = |lookups: bool| {
                    let ctx = context(&event, &rule);
                    let ctx = if lookups { ctx } else { ctx.through_minijinja() };
                    set.render_value(&t, &ctx, &RenderBudget::new())
                };
                match (rendered(true), rendered(false)) {
                    (Ok(ours), Ok(theirs)) => prop_assert_eq!(ours, theirs, "{:?}", source),
                    (Err(_), Err(_)) => {}
                    (ours, theirs) => prop_assert!(false, "{:?}: {:?} against {:?}", source, ours, theirs),
                }
            }
        }

        #[test]
        fn plain_templates_take_the_lookups() {
            assert!(
                template_lookup::pieces("{{ event.data.user.name }} gave {{ rule.name }}")
                    .is_some()
            );
            assert!(template_lookup::pieces("{{ event.data.n | upper }}").is_none());
            assert!(template_lookup::pieces("{{- event.data.n }}").is_none());
            assert!(template_lookup::pieces("{% if x %}y{% endif %}").is_none());
            assert!(template_lookup::pieces("line\n").is_none());
            assert!(template_lookup::pieces("{{ true }}").is_none());
        }
    }
}
