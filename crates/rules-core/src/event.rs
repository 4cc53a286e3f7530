//! The event envelope (docs/contract.md §1) and how it is read from a stream entry.
//!
//! Reading an entry is on the hot path (every event on the bus), so the JSON form is
//! deserialized into borrowed raw fields and only `data` becomes a `serde_json::Value`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::sync::OnceLock;
use uuid::Uuid;

/// Default ceiling on an entry's size; the worker's is configurable.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 64 * 1024;
/// Longest accepted event type name.
pub const MAX_EVENT_TYPE_LEN: usize = 128;

/// Why a stream entry or request body could not be read as an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("event is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("event must be a JSON object")]
    NotAnObject,
    #[error("`{0}` is required")]
    Missing(&'static str),
    #[error("`{field}` is invalid: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("entry is {size} bytes, over the limit of {limit}")]
    Oversize { size: usize, limit: usize },
    #[error(
        "entry has neither an `event` field nor the flat fields `id`, `type`, `livestream_id`"
    )]
    NoEvent,
}

/// One event, validated.
///
/// The identifying fields are held typed; `data` as JSON. Condition paths read the
/// envelope through [`Event::root`], so matching never builds the envelope object;
/// [`Event::to_envelope`] does, for templates and the dry run.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: Uuid,
    pub livestream_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    /// Always a JSON string.
    event_type: Value,
    /// Always a JSON object.
    data: Value,
    /// `id`, `livestream_id` and `occurred_at` as JSON strings, made on first use.
    rendered: OnceLock<[Value; 3]>,
}

/// A top-level key of the envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    Id,
    Type,
    LivestreamId,
    OccurredAt,
    Data,
}

impl Root {
    pub fn from_name(name: &str) -> Option<Root> {
        Some(match name {
            "id" => Root::Id,
            "type" => Root::Type,
            "livestream_id" => Root::LivestreamId,
            "occurred_at" => Root::OccurredAt,
            "data" => Root::Data,
            _ => return None,
        })
    }
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.livestream_id == other.livestream_id
            && self.occurred_at == other.occurred_at
            && self.event_type == other.event_type
            && self.data == other.data
    }
}

/// The envelope's fields as a producer writes them; scalars kept raw so a wrong
/// type is reported by field name.
#[derive(Deserialize)]
struct RawEnvelope<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "type")]
    event_type: Option<&'a RawValue>,
    #[serde(borrow, default)]
    livestream_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    occurred_at: Option<&'a RawValue>,
    #[serde(default)]
    data: Option<crate::Strict>,
}

impl Event {
    /// Builds an event from its parts (producers, tests and the load tool).
    pub fn new(
        id: Uuid,
        event_type: &str,
        livestream_id: Uuid,
        occurred_at: DateTime<Utc>,
        data: Value,
    ) -> Self {
        Self {
            id,
            livestream_id,
            occurred_at,
            event_type: Value::String(event_type.to_owned()),
            data,
            rendered: OnceLock::new(),
        }
    }

    /// The event type, e.g. `donation.received`.
    pub fn event_type(&self) -> &str {
        self.event_type.as_str().unwrap_or_default()
    }

    pub fn data(&self) -> &Value {
        &self.data
    }

    /// The value of a top-level envelope key.
    #[inline]
    pub fn root(&self, root: Root) -> &Value {
        match root {
            Root::Data => &self.data,
            Root::Type => &self.event_type,
            Root::Id => &self.rendered()[0],
            Root::LivestreamId => &self.rendered()[1],
            Root::OccurredAt => &self.rendered()[2],
        }
    }

    fn rendered(&self) -> &[Value; 3] {
        self.rendered.get_or_init(|| {
            [
                Value::String(self.id.to_string()),
                Value::String(self.livestream_id.to_string()),
                Value::String(format_time(self.occurred_at)),
            ]
        })
    }

    /// The whole envelope as one JSON object: what templates see as `event`.
    pub fn to_envelope(&self) -> Value {
        let mut map = Map::new();
        map.insert("id".into(), self.root(Root::Id).clone());
        map.insert("type".into(), self.event_type.clone());
        map.insert(
            "livestream_id".into(),
            self.root(Root::LivestreamId).clone(),
        );
        map.insert("occurred_at".into(), self.root(Root::OccurredAt).clone());
        map.insert("data".into(), self.data.clone());
        Value::Object(map)
    }

    /// Reads the JSON form (an object with the envelope's keys; others are ignored).
    /// `default_time` is used when `occurred_at` is absent (the stream entry's time);
    /// without it, now.
    pub fn from_json_slice(
        bytes: &[u8],
        default_time: Option<DateTime<Utc>>,
    ) -> Result<Self, EnvelopeError> {
        // A struct also deserializes from a JSON array; only an object is an envelope.
        match bytes.trim_ascii_start().first() {
            Some(b'{') => {}
            Some(b'[' | b'"' | b't' | b'f' | b'n' | b'-' | b'0'..=b'9') => {
                return Err(EnvelopeError::NotAnObject)
            }
            _ => return Err(EnvelopeError::InvalidJson("expected a JSON object".into())),
        }
        let raw: RawEnvelope<'_> =
            serde_json::from_slice(bytes).map_err(|e| EnvelopeError::InvalidJson(e.to_string()))?;
        let id = parse_uuid("id", &required_str("id", raw.id)?)?;
        let event_type = check_type(&required_str("type", raw.event_type)?)?.to_owned();
        let livestream_id = parse_uuid(
            "livestream_id",
            &required_str("livestream_id", raw.livestream_id)?,
        )?;
        let occurred_at = match optional_str("occurred_at", raw.occurred_at)? {
            None => default_time.unwrap_or_else(Utc::now),
            Some(text) => parse_time(&text)?,
        };
        let data = match raw.data.map(|d| d.0) {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(data @ Value::Object(_)) => data,
            Some(_) => return Err(invalid("data", "must be a JSON object")),
        };
        Ok(Self::new(id, &event_type, livestream_id, occurred_at, data))
    }

    /// Reads an already parsed JSON envelope (the API's dry run).
    pub fn from_value(
        value: &Value,
        default_time: Option<DateTime<Utc>>,
    ) -> Result<Self, EnvelopeError> {
        if !value.is_object() {
            return Err(EnvelopeError::NotAnObject);
        }
        let bytes =
            serde_json::to_vec(value).map_err(|e| EnvelopeError::InvalidJson(e.to_string()))?;
        Self::from_json_slice(&bytes, default_time)
    }

    /// Reads a stream entry in either form (docs/contract.md §1): one `event` field holding
    /// JSON, or the flat fields `id`, `type`, `livestream_id`, `occurred_at`, `data`
    /// (the last as a JSON string).
    pub fn from_stream_fields<K, V>(
        fields: &[(K, V)],
        entry_time: Option<DateTime<Utc>>,
        max_bytes: usize,
    ) -> Result<Self, EnvelopeError>
    where
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let size: usize = fields
            .iter()
            .map(|(k, v)| k.as_ref().len() + v.as_ref().len())
            .sum();
        if size > max_bytes {
            return Err(EnvelopeError::Oversize {
                size,
                limit: max_bytes,
            });
        }
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k.as_ref() == name.as_bytes())
                .map(|(_, v)| v.as_ref())
        };
        if let Some(json) = field("event") {
            return Self::from_json_slice(json, entry_time);
        }
        if field("id").is_none() && field("type").is_none() && field("livestream_id").is_none() {
            return Err(EnvelopeError::NoEvent);
        }
        let text = |name: &'static str| -> Result<Option<&str>, EnvelopeError> {
            field(name)
                .map(|bytes| std::str::from_utf8(bytes).map_err(|_| invalid(name, "is not UTF-8")))
                .transpose()
        };
        let id = parse_uuid("id", text("id")?.ok_or(EnvelopeError::Missing("id"))?)?;
        let event_type = check_type(text("type")?.ok_or(EnvelopeError::Missing("type"))?)?;
        let livestream_id = parse_uuid(
            "livestream_id",
            text("livestream_id")?.ok_or(EnvelopeError::Missing("livestream_id"))?,
        )?;
        let occurred_at = match text("occurred_at")? {
            Some(s) if !s.is_empty() => parse_time(s)?,
            _ => entry_time.unwrap_or_else(Utc::now),
        };
        let data = match field("data") {
            None => Value::Object(Map::new()),
            Some(bytes) => match serde_json::from_slice::<crate::Strict>(bytes).map(|d| d.0) {
                Ok(Value::Null) => Value::Object(Map::new()),
                Ok(data @ Value::Object(_)) => data,
                Ok(_) => return Err(invalid("data", "must be a JSON object")),
                Err(e) => return Err(invalid("data", &format!("is not valid JSON: {e}"))),
            },
        };
        Ok(Self::new(id, event_type, livestream_id, occurred_at, data))
    }
}

impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(5))?;
        map.serialize_entry("id", self.root(Root::Id))?;
        map.serialize_entry("type", &self.event_type)?;
        map.serialize_entry("livestream_id", self.root(Root::LivestreamId))?;
        map.serialize_entry("occurred_at", self.root(Root::OccurredAt))?;
        map.serialize_entry("data", &self.data)?;
        map.end()
    }
}

/// The canonical text of a time in events and records: RFC 3339, UTC, `Z`.
pub fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn invalid(field: &'static str, reason: &str) -> EnvelopeError {
    EnvelopeError::Invalid {
        field,
        reason: reason.to_owned(),
    }
}

fn parse_uuid(field: &'static str, text: &str) -> Result<Uuid, EnvelopeError> {
    Uuid::parse_str(text).map_err(|_| invalid(field, "must be a UUID"))
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, EnvelopeError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| invalid("occurred_at", "must be an RFC 3339 time"))
}

fn check_type(text: &str) -> Result<&str, EnvelopeError> {
    if text.is_empty() {
        Err(invalid("type", "must not be empty"))
    } else if text.len() > MAX_EVENT_TYPE_LEN {
        Err(invalid("type", "is longer than 128 bytes"))
    } else {
        Ok(text)
    }
}

/// A string field that may be absent or `null`; any other type is an error naming it.
fn optional_str<'a>(
    field: &'static str,
    raw: Option<&'a RawValue>,
) -> Result<Option<Cow<'a, str>>, EnvelopeError> {
    match raw.map(RawValue::get) {
        None | Some("null") => Ok(None),
        Some(text) if text.starts_with('"') => serde_json::from_str::<Cow<'a, str>>(text)
            .map(Some)
            .map_err(|_| invalid(field, "must be a string")),
        Some(_) => Err(invalid(field, "must be a string")),
    }
}

fn required_str<'a>(
    field: &'static str,
    raw: Option<&'a RawValue>,
) -> Result<Cow<'a, str>, EnvelopeError> {
    optional_str(field, raw)?.ok_or(EnvelopeError::Missing(field))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    const ID: &str = "6f1c2d3e-0000-4000-8000-000000000001";
    const LS: &str = "0e2a9c1b-0000-4000-8000-00000000abcd";

    fn entry_time() -> DateTime<Utc> {
        Utc.timestamp_millis_opt(1_764_000_000_000)
            .single()
            .expect("valid time")
    }

    #[test]
    fn reads_the_json_form() {
        let body = json!({"id": ID, "type": "donation.received", "livestream_id": LS,
            "occurred_at": "2026-11-24T10:00:00+01:00", "data": {"amount": 25.5}, "extra": 1});
        let fields = [("event", body.to_string())];
        let event = Event::from_stream_fields(&fields, Some(entry_time()), DEFAULT_MAX_EVENT_BYTES)
            .expect("valid event");
        assert_eq!(event.id.to_string(), ID);
        assert_eq!(event.event_type(), "donation.received");
        assert_eq!(
            event.to_envelope()["occurred_at"],
            json!("2026-11-24T09:00:00Z")
        );
        assert_eq!(event.data()["amount"], json!(25.5));
        assert!(event.to_envelope().get("extra").is_none());
        assert_eq!(
            serde_json::to_value(&event).expect("serializes"),
            event.to_envelope()
        );
    }

    #[test]
    fn reads_the_flat_form_with_defaults() {
        let fields = [("id", ID), ("type", "follow"), ("livestream_id", LS)];
        let event = Event::from_stream_fields(&fields, Some(entry_time()), DEFAULT_MAX_EVENT_BYTES)
            .expect("valid event");
        assert_eq!(event.occurred_at, entry_time());
        assert_eq!(event.data(), &json!({}));
        let fields = [
            ("id", ID),
            ("type", "follow"),
            ("livestream_id", LS),
            ("data", r#"{"a":[1]}"#),
        ];
        let event =
            Event::from_stream_fields(&fields, None, DEFAULT_MAX_EVENT_BYTES).expect("valid event");
        assert_eq!(event.data(), &json!({"a": [1]}));
    }

    #[test]
    fn json_and_flat_forms_agree() {
        let json_form = [(
            "event",
            json!({"id": ID, "type": "t", "livestream_id": LS,
            "occurred_at": "2026-11-24T10:00:00Z", "data": {"x": 1}})
            .to_string(),
        )];
        let flat = [
            ("id", ID.to_owned()),
            ("type", "t".into()),
            ("livestream_id", LS.into()),
            ("occurred_at", "2026-11-24T10:00:00Z".into()),
            ("data", r#"{"x":1}"#.into()),
        ];
        let a = Event::from_stream_fields(&json_form, None, DEFAULT_MAX_EVENT_BYTES);
        let b = Event::from_stream_fields(&flat, None, DEFAULT_MAX_EVENT_BYTES);
        assert_eq!(a, b);
    }

    #[test]
    fn rejects_malformed_entries() {
        let cases: Vec<(Vec<(&str, String)>, EnvelopeError)> = vec![
            (
                vec![("event", "{not json".into())],
                EnvelopeError::InvalidJson(String::new()),
            ),
            (vec![("event", "[1]".into())], EnvelopeError::NotAnObject),
            // Duplicate keys, at the top and inside `data`, in both forms.
            (
                vec![(
                    "event",
                    format!(
                        r#"{{"id": "{ID}", "id": "{ID}", "type": "t", "livestream_id": "{LS}"}}"#
                    ),
                )],
                EnvelopeError::InvalidJson(String::new()),
            ),
            (
                vec![(
                    "event",
                    format!(
                        r#"{{"id": "{ID}", "type": "t", "livestream_id": "{LS}", "data": {{"a": 1, "a": 2}}}}"#
                    ),
                )],
                EnvelopeError::InvalidJson(String::new()),
            ),
            (
                vec![
                    ("id", ID.into()),
                    ("type", "t".into()),
                    ("livestream_id", LS.into()),
                    ("data", r#"{"a": 1, "a": 2}"#.into()),
                ],
                invalid("data", ""),
            ),
            (
                vec![(
                    "event",
                    json!({"type": "t", "livestream_id": LS}).to_string(),
                )],
                EnvelopeError::Missing("id"),
            ),
            (
                vec![(
                    "event",
                    json!({"id": "nope", "type": "t", "livestream_id": LS}).to_string(),
                )],
                invalid("id", ""),
            ),
            (
                vec![("event", json!({"id": ID, "livestream_id": LS}).to_string())],
                EnvelopeError::Missing("type"),
            ),
            (
                vec![(
                    "event",
                    json!({"id": ID, "type": 3, "livestream_id": LS}).to_string(),
                )],
                invalid("type", ""),
            ),
            (
                vec![(
                    "event",
                    json!({"id": ID, "type": "", "livestream_id": LS}).to_string(),
                )],
                invalid("type", ""),
            ),
            (
                vec![("event", json!({"id": ID, "type": "t"}).to_string())],
                EnvelopeError::Missing("livestream_id"),
            ),
            (
                vec![(
                    "event",
                    json!({"id": ID, "type": "t", "livestream_id": LS, "occurred_at": "yesterday"})
                        .to_string(),
                )],
                invalid("occurred_at", ""),
            ),
            (
                vec![(
                    "event",
                    json!({"id": ID, "type": "t", "livestream_id": LS, "data": [1]}).to_string(),
                )],
                invalid("data", ""),
            ),
            (
                vec![
                    ("id", ID.into()),
                    ("type", "t".into()),
                    ("livestream_id", LS.into()),
                    ("data", "{".into()),
                ],
                invalid("data", ""),
            ),
            (
                vec![("id", ID.into()), ("livestream_id", LS.into())],
                EnvelopeError::Missing("type"),
            ),
            (vec![("something", "else".into())], EnvelopeError::NoEvent),
            (
                vec![("event", "x".repeat(2000))],
                EnvelopeError::Oversize {
                    size: 2005,
                    limit: 1024,
                },
            ),
        ];
        for (fields, expected) in cases {
            let got = Event::from_stream_fields(&fields, None, 1024).expect_err("must be rejected");
            assert_eq!(
                std::mem::discriminant(&got),
                std::mem::discriminant(&expected),
                "{fields:?} gave {got}"
            );
            if let (
                EnvelopeError::Invalid { field: a, .. },
                EnvelopeError::Invalid { field: b, .. },
            ) = (&got, &expected)
            {
                assert_eq!(a, b);
            }
        }
    }
}
