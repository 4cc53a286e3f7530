//! What templates see of an event: its values converted into minijinja's as a
//! template reads them. A template reading `event.data.user.name` converts one
//! string, where converting the whole event first (every key, every string, every
//! nested map) was most of a firing event's rendering cost (~11,000 instructions
//! an execution by callgrind).
//!
//! The views answer as the converted values did: objects are maps with their keys
//! in sorted order (as minijinja's own maps keep the keys of what it converts),
//! arrays are sequences, numbers the same integers or floats, `null` none. Iterating, `length`, `items`,
//! `tojson` and printing all go through minijinja's object interface, as they do
//! for its own maps and sequences (a test renders the same templates both ways).

use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr, Value};
use serde_json::Number;

use crate::event::{Event, Root};
use crate::json::{Doc, Json};

/// A lookup's value found without minijinja's context: what the common template,
/// text and `{{ event.data.user.name }}`, needs, at the cost of a path walk.
pub(crate) enum Found<'a> {
    /// A string, written as it is.
    Text(&'a str),
    /// A number, boolean or `null`, written as minijinja writes it.
    Value(Value),
    /// Nothing there: written as nothing.
    Undefined,
    /// An object, an array or the whole root: for the context to resolve.
    Unknown,
}

/// What templates see under one of their two names (`event`, `rule`).
pub(crate) trait TemplateRoot {
    /// Its view: converted as it is read.
    fn template_value(&self) -> Value;

    /// The value at `names` below it, as its view would give it, when it can tell
    /// without the view.
    fn find(&self, _names: &[String]) -> Found<'_> {
        Found::Unknown
    }
}

impl TemplateRoot for Event {
    fn find(&self, names: &[String]) -> Found<'_> {
        let Some((root, path)) = names.split_first() else {
            return Found::Unknown;
        };
        let Some(root) = Root::from_name(root) else {
            return Found::Undefined;
        };
        let mut json = self.root(root);
        for name in path {
            match json.get(name) {
                Some(member) => json = member,
                // A name an object lacks, or a name of anything but an object.
                None => return Found::Undefined,
            }
        }
        match json {
            Json::String(s) => Found::Text(s),
            _ => scalar(json).map_or(Found::Unknown, Found::Value),
        }
    }

    fn template_value(&self) -> Value {
        Value::from_object(EventView {
            id: Value::from(self.root(Root::Id).as_str().unwrap_or_default()),
            event_type: Value::from(self.event_type()),
            livestream_id: Value::from(self.root(Root::LivestreamId).as_str().unwrap_or_default()),
            occurred_at: Value::from(self.root(Root::OccurredAt).as_str().unwrap_or_default()),
            data: Arc::new(self.data_doc().clone()),
        })
    }
}

/// Any JSON value as `event` or `rule`: the templates' tests.
#[cfg(test)]
impl TemplateRoot for serde_json::Value {
    fn template_value(&self) -> Value {
        let doc = Arc::new(Doc::from_value(self));
        value_of(&doc, doc.at(0))
    }
}

/// The envelope: its keys sorted (as minijinja's own maps keep them), `data` a
/// [`DocView`].
#[derive(Debug)]
struct EventView {
    id: Value,
    event_type: Value,
    livestream_id: Value,
    occurred_at: Value,
    data: Arc<Doc>,
}

/// The envelope's keys, sorted.
const ENVELOPE_KEYS: [&str; 5] = ["data", "id", "livestream_id", "occurred_at", "type"];

impl Object for EventView {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        Some(match Root::from_name(key)? {
            Root::Id => self.id.clone(),
            Root::Type => self.event_type.clone(),
            Root::LivestreamId => self.livestream_id.clone(),
            Root::OccurredAt => self.occurred_at.clone(),
            Root::Data => value_of(&self.data, self.data.at(0)),
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&ENVELOPE_KEYS)
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(ENVELOPE_KEYS.len())
    }
}

/// An object or array of a document, read where it lies.
#[derive(Debug)]
struct DocView {
    doc: Arc<Doc>,
    at: u32,
}

/// `json` (a value of `doc`) as templates see it.
fn value_of(doc: &Arc<Doc>, json: Json<'_>) -> Value {
    let at = match json {
        Json::Array(items) => items.index(),
        Json::Object(members) => members.index(),
        Json::String(s) => return Value::from(s),
        _ => return scalar(json).unwrap_or_default(),
    };
    Value::from_object(DocView {
        doc: Arc::clone(doc),
        at,
    })
}

/// A number, boolean or `null` as templates see it (`None` for the rest).
fn scalar(json: Json<'_>) -> Option<Value> {
    match json {
        Json::Null => Some(Value::from(())),
        Json::Bool(b) => Some(Value::from(b)),
        Json::Number(n) => Some(number(n)),
        Json::String(_) | Json::Array(_) | Json::Object(_) => None,
    }
}

/// A number as serde would hand it over: an unsigned, a negative or a float.
fn number(n: &Number) -> Value {
    if let Some(u) = n.as_u64() {
        Value::from(u)
    } else if let Some(i) = n.as_i64() {
        Value::from(i)
    } else {
        Value::from(n.as_f64().unwrap_or(f64::NAN))
    }
}

impl Object for DocView {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        match self.doc.at(self.at) {
            Json::Array(_) => ObjectRepr::Seq,
            _ => ObjectRepr::Map,
        }
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        if let Some(key) = key.as_str() {
            return self.get_value_by_str(key);
        }
        match self.doc.at(self.at) {
            Json::Array(items) => items.get(key.as_usize()?).map(|v| value_of(&self.doc, v)),
            _ => None,
        }
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        match self.doc.at(self.at) {
            Json::Object(members) => members.get(key).map(|v| value_of(&self.doc, v)),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match self.doc.at(self.at) {
            Json::Object(members) => {
                let mut keys: Vec<&str> = members.iter().map(|(key, _)| key).collect();
                keys.sort_unstable();
                Enumerator::Values(keys.into_iter().map(Value::from).collect())
            }
            Json::Array(items) => Enumerator::Seq(items.len()),
            _ => Enumerator::Empty,
        }
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(match self.doc.at(self.at) {
            Json::Object(members) => members.len(),
            Json::Array(items) => items.len(),
            _ => 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use minijinja::value::Serde;
    use minijinja::{context, Environment, UndefinedBehavior};
    use serde_json::json;
    use uuid::Uuid;

    #[test]
    fn the_envelope_keys_are_its_roots_sorted() {
        let mut names = Root::ALL.map(Root::name);
        names.sort_unstable();
        assert_eq!(ENVELOPE_KEYS, names);
    }

    /// Every template renders to the same text (or the same error) with the view
    /// as with the event converted whole, as templates saw it before.
    #[test]
    fn templates_read_the_view_as_the_event_converted_whole() {
        let data = json!({
            "amount": 25.5, "count": 3, "negative": -7, "big": u64::MAX,
            "small": 1e-7, "name": "alice \"the\" <b>", "flag": true, "nothing": null,
            "user": {"id": "u-1", "name": "Al", "tags": ["a", "b"], "z": 1, "a": 2},
            "tags": [1, "two", {"three": 3}, [4], null, false],
            "empty_map": {}, "empty_list": [], "unicode": "grüße ✓",
        });
        let event = Event::new(
            Uuid::from_u128(7),
            "donation.received",
            Uuid::from_u128(9),
            Utc.with_ymd_and_hms(2026, 12, 6, 10, 0, 0)
                .single()
                .expect("a time"),
            data.clone(),
        );
        let templates = [
            "{{ event }}",
            "{{ event.data }}",
            "{{ event.data | tojson }}",
            "{{ event | tojson }}",
            "{{ event.id }} {{ event.type }} {{ event.livestream_id }} {{ event.occurred_at }}",
            "{{ event.data.user.name }}/{{ event.data['user']['id'] }}",
            "{{ event.data.amount * 2 }} {{ event.data.count + 1 }} {{ event.data.negative }}",
            "{{ event.data.big }} {{ event.data.small }} {{ event.data.amount > 10 }}",
            "{{ event.data.flag }} {{ event.data.nothing }} {{ event.data.nothing is none }}",
            "{{ event.data.tags }} {{ event.data.tags[2].three }} {{ event.data.tags[-1] }}",
            "{{ event.data.tags | length }} {{ event.data | length }} {{ event | length }}",
            "{% for k, v in event.data.user | items %}{{ k }}={{ v }};{% endfor %}",
            "{% for k in event.data %}{{ k }},{% endfor %}",
            "{% for k in event %}{{ k }},{% endfor %}",
            "{% for t in event.data.tags %}[{{ loop.index }}:{{ t }}]{% endfor %}",
            "{{ event.data.user | dictsort }}",
            "{{ event.data.user.tags | join('+') }} {{ event.data.tags | first }} {{ event.data.tags | last }}",
            "{{ event.data.user is mapping }} {{ event.data.tags is sequence }} {{ event.data.user is sequence }}",
            "{{ event.data.missing }}|{{ event.data.missing.deeper }}|{{ event.data.tags[99] }}",
            "{{ event.data.empty_map }} {{ event.data.empty_list }} {{ event.data.empty_map | length }}",
            "{% if event.data.empty_list %}full{% else %}empty{% endif %}{% if event.data.user %}yes{% endif %}",
            "{{ event.data.user == event.data.user }} {{ event.data.user.tags == ['a', 'b'] }}",
            "{{ event.data.user == {'a': 2, 'id': 'u-1', 'name': 'Al', 'tags': ['a', 'b'], 'z': 1} }}",
            "{{ event.data.unicode | upper }} {{ event.data.name | escape }}",
            "{{ event.data.tags | list }} {{ event.data.user | list }}",
            "{{ event.data.tags[1:3] }} {{ event.data.user.tags | reverse | list }}",
            "{{ event.data.user.nope is defined }} {{ event.data.user.name is defined }}",
            "{{ event.data.count is number }} {{ event.data.name is string }}",
            "{{ event.data.tags | map('string') | join(',') }}",
            "{{ event.data.user | items | list }}",
            "{{ rule.name }} {{ rule }}",
            "{{ event.data.user.items() }}",
            "{{ event.data.user.get('name') }}",
            "{{ event.data.tags.0 }} {{ event.data.user.tags.1 }}",
            "{{ event.data.user | attr('name') }}",
            "{{ event.data.user | tojson(indent=2) }}",
            "{{ event.data.user ~ '' }} {{ event.data.user | string }}",
            "{{ 'name' in event.data.user }} {{ 'a' in event.data.user.tags }} {{ 'x' in event }}",
            "{{ event.data.tags | sort }}",
            "{{ event.data.user.tags | unique | list }} {{ event.data.user | dictsort(by='value') }}",
            "{{ event.data.amount | round }} {{ event.data.big + 1 }}",
            "{{ event.data.tags | batch(4) | list }} {{ event.data.user | length > 2 }}",
            "{{ event.data.user | max }} {{ event.data.user | reject('==', 'a') | list }}",
            "{{ event.data | tojson == event.data | tojson }} {{ event.data | items | length }}",
        ];
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        let rule = json!({"id": "r1", "name": "Rule"});
        let viewed =
            context! { event => event.template_value(), rule => Value::from(Serde(&rule)) };
        let whole =
            context! { event => Value::from(Serde(&event)), rule => Value::from(Serde(&rule)) };
        for template in templates {
            let render = |ctx: &Value| {
                env.render_str(template, ctx.clone())
                    .map_err(|e| format!("{:?}: {:?}", e.kind(), e.detail()))
            };
            let (view, converted) = (render(&viewed), render(&whole));
            assert_eq!(view, converted, "{template}");
        }
        // A bare document as `event` reads as the document.
        assert_eq!(
            env.render_str(
                "{{ event.data }}",
                context! { event => data.template_value() }
            )
            .ok(),
            env.render_str(
                "{{ event.data }}",
                context! { event => Value::from(Serde(&data)) }
            )
            .ok(),
        );
    }
}
