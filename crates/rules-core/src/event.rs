//! The event envelope (docs/contract.md §1) and how it is read from a stream entry.
//!
//! Reading an entry is on the hot path (every event on the bus), so the envelope is
//! read in one pass over the entry's bytes: the identifying fields straight into
//! their types, `data` into a [`Doc`] (two allocations, see `json`), unknown keys
//! skipped.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Serialize;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::sync::OnceLock;
use uuid::Uuid;

use crate::json::{self, Doc, Json};

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
/// The identifying fields are held typed; `data` as a [`Doc`]. Condition paths read
/// the envelope through [`Event::root`], so matching never builds the envelope
/// object; [`Event::to_envelope`] does, for the dry run.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: Uuid,
    pub livestream_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    event_type: Box<str>,
    /// Always an object.
    data: Doc,
    /// `id`, `livestream_id` and `occurred_at` as text, made on first use.
    rendered: OnceLock<[String; 3]>,
}

/// A top-level key of the envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Root {
    Id,
    Type,
    LivestreamId,
    OccurredAt,
    Data,
}

impl Root {
    /// The envelope's keys in the order it is written.
    pub const ALL: [Root; 5] = [
        Root::Id,
        Root::Type,
        Root::LivestreamId,
        Root::OccurredAt,
        Root::Data,
    ];

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

    pub(crate) fn name(self) -> &'static str {
        match self {
            Root::Id => "id",
            Root::Type => "type",
            Root::LivestreamId => "livestream_id",
            Root::OccurredAt => "occurred_at",
            Root::Data => "data",
        }
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

/// The envelope's fields as read, each checked when it was met. An invalid one is
/// kept as the error of the first invalid field in the envelope's order, reported
/// once the whole entry is known to be JSON (the values are kept plain: a result
/// per field made every key's step move them around).
#[derive(Default)]
struct Fields {
    /// The envelope keys met so far (bit `Root as u8`), `null` ones included.
    seen: u8,
    id: Option<Uuid>,
    event_type: Option<Box<str>>,
    livestream_id: Option<Uuid>,
    occurred_at: Option<DateTime<Utc>>,
    data: Option<Doc>,
    /// The invalid field first in the envelope's order, and why.
    invalid: Option<Box<(Root, EnvelopeError)>>,
}

impl Fields {
    /// Marks envelope key `root` as met: a second time is an error.
    fn meet(&mut self, root: Root) -> Result<(), String> {
        let bit = 1 << root as u8;
        if self.seen & bit != 0 {
            return Err(format!("duplicate field `{}`", root.name()));
        }
        self.seen |= bit;
        Ok(())
    }

    /// `data` as read: an object, or `null` for an empty one.
    fn data(&mut self, doc: Doc) {
        match doc.root() {
            Json::Object(_) => self.data = Some(doc),
            Json::Null => self.data = Some(Doc::empty_object()),
            _ => self.invalid(Root::Data, invalid("data", "must be a JSON object")),
        }
    }

    /// The value of envelope key `root` (not `data`) as read.
    fn text(&mut self, root: Root, value: Text<'_>) {
        let name = root.name();
        let text = match value {
            // `null` is as good as absent.
            Text::Null => return,
            Text::Str(text) => text,
            Text::Other => return self.invalid(root, invalid(name, "must be a string")),
        };
        let read = match root {
            Root::Id => parse_uuid(name, &text).map(|id| self.id = Some(id)),
            Root::LivestreamId => parse_uuid(name, &text).map(|id| self.livestream_id = Some(id)),
            Root::Type => check_type(&text).map(|t| self.event_type = Some(t.into())),
            Root::OccurredAt => parse_time(&text).map(|t| self.occurred_at = Some(t)),
            Root::Data => Ok(()),
        };
        if let Err(e) = read {
            self.invalid(root, e);
        }
    }

    /// Keeps `error` if `root` comes before the invalid field kept so far.
    fn invalid(&mut self, root: Root, error: EnvelopeError) {
        if self.invalid.as_ref().is_none_or(|kept| root < kept.0) {
            self.invalid = Some(Box::new((root, error)));
        }
    }

    /// The event, or the first error in the envelope's order: a field missing or
    /// invalid. `default_time` stands for an absent `occurred_at`.
    fn into_event(
        self,
        default_time: impl FnOnce() -> DateTime<Utc>,
    ) -> Result<Event, EnvelopeError> {
        let mut invalid = self.invalid.map(|kept| *kept);
        // The error of `root`'s field if it was the invalid one.
        let mut check = |root: Root| match invalid.take() {
            Some((kept, error)) if kept == root => Err(error),
            other => {
                invalid = other;
                Ok(())
            }
        };
        check(Root::Id)?;
        let id = self.id.ok_or(EnvelopeError::Missing("id"))?;
        check(Root::Type)?;
        let event_type = self.event_type.ok_or(EnvelopeError::Missing("type"))?;
        check(Root::LivestreamId)?;
        let livestream_id = self
            .livestream_id
            .ok_or(EnvelopeError::Missing("livestream_id"))?;
        check(Root::OccurredAt)?;
        let occurred_at = self.occurred_at.unwrap_or_else(default_time);
        check(Root::Data)?;
        let data = self.data.unwrap_or_else(Doc::empty_object);
        Ok(Event::with_doc(
            id,
            event_type,
            livestream_id,
            occurred_at,
            data,
        ))
    }
}

impl Event {
    /// Builds an event from its parts (producers, tests and the load tool). A `data`
    /// that is not an object is taken as an empty one.
    pub fn new(
        id: Uuid,
        event_type: &str,
        livestream_id: Uuid,
        occurred_at: DateTime<Utc>,
        data: Value,
    ) -> Self {
        let data = if data.is_object() {
            Doc::from_value(&data)
        } else {
            Doc::empty_object()
        };
        Self::with_doc(id, event_type.into(), livestream_id, occurred_at, data)
    }

    /// The same type and data under another id, livestream and time (the load tool's
    /// fresh copies of a workload's events), without building the data again.
    pub fn copy_as(&self, id: Uuid, livestream_id: Uuid, occurred_at: DateTime<Utc>) -> Self {
        Self::with_doc(
            id,
            self.event_type.clone(),
            livestream_id,
            occurred_at,
            self.data.clone(),
        )
    }

    fn with_doc(
        id: Uuid,
        event_type: Box<str>,
        livestream_id: Uuid,
        occurred_at: DateTime<Utc>,
        data: Doc,
    ) -> Self {
        Self {
            id,
            livestream_id,
            occurred_at,
            event_type,
            data,
            rendered: OnceLock::new(),
        }
    }

    /// The event type, e.g. `donation.received`.
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// `data`, an object.
    pub fn data(&self) -> Json<'_> {
        self.data.root()
    }

    /// `data`'s document.
    pub(crate) fn data_doc(&self) -> &Doc {
        &self.data
    }

    /// The value of a top-level envelope key.
    #[inline]
    pub fn root(&self, root: Root) -> Json<'_> {
        match root {
            Root::Data => self.data.root(),
            Root::Type => Json::String(&self.event_type),
            Root::Id => Json::String(&self.rendered()[0]),
            Root::LivestreamId => Json::String(&self.rendered()[1]),
            Root::OccurredAt => Json::String(&self.rendered()[2]),
        }
    }

    fn rendered(&self) -> &[String; 3] {
        self.rendered.get_or_init(|| {
            [
                self.id.to_string(),
                self.livestream_id.to_string(),
                format_time(self.occurred_at),
            ]
        })
    }

    /// The whole envelope as one JSON object.
    pub fn to_envelope(&self) -> Value {
        let mut map = Map::new();
        for root in Root::ALL {
            map.insert(root.name().into(), self.root(root).to_value());
        }
        Value::Object(map)
    }

    /// Reads the JSON form (an object with the envelope's keys; others are ignored).
    /// `default_time` is used when `occurred_at` is absent (the stream entry's time);
    /// without it, now.
    pub fn from_json_slice(
        bytes: &[u8],
        default_time: Option<DateTime<Utc>>,
    ) -> Result<Self, EnvelopeError> {
        match bytes.trim_ascii_start().first() {
            Some(b'{') => {}
            Some(b'[' | b'"' | b't' | b'f' | b'n' | b'-' | b'0'..=b'9') => {
                return Err(EnvelopeError::NotAnObject)
            }
            _ => return Err(EnvelopeError::InvalidJson("expected a JSON object".into())),
        }
        let mut reader =
            json::deserializer(bytes).map_err(|e| EnvelopeError::InvalidJson(e.to_string()))?;
        let fields = (&mut reader)
            .deserialize_map(Envelope)
            .and_then(|fields| reader.end().map(|()| fields))
            .map_err(|e| EnvelopeError::InvalidJson(e.to_string()))?;
        fields.into_event(|| default_time.unwrap_or_else(Utc::now))
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
            None => Doc::empty_object(),
            Some(bytes) => match Doc::parse(bytes) {
                Ok(doc) => match doc.root() {
                    Json::Null => Doc::empty_object(),
                    Json::Object(_) => doc,
                    _ => return Err(invalid("data", "must be a JSON object")),
                },
                Err(e) => return Err(invalid("data", &format!("is not valid JSON: {e}"))),
            },
        };
        Ok(Self::with_doc(
            id,
            event_type.into(),
            livestream_id,
            occurred_at,
            data,
        ))
    }
}

impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(5))?;
        for root in Root::ALL {
            map.serialize_entry(root.name(), &self.root(root))?;
        }
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

/// The envelope's members, read in one pass: its keys into their fields, `data` into
/// a [`Doc`], other keys passed over.
struct Envelope;

impl<'de> Visitor<'de> for Envelope {
    type Value = Fields;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an event envelope")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<Fields, A::Error> {
        let mut fields = Fields::default();
        while let Some(key) = members.next_key_seed(EnvelopeKey)? {
            let Some(root) = key else {
                members.next_value_seed(json::Skip::new())?;
                continue;
            };
            fields.meet(root).map_err(de::Error::custom)?;
            if root == Root::Data {
                fields.data(members.next_value_seed(json::DocSeed)?);
            } else {
                let value = members.next_value_seed(TextSeed)?;
                fields.text(root, value);
            }
        }
        Ok(fields)
    }
}

/// An envelope key as the field it names (`None` for another key).
struct EnvelopeKey;

impl<'de> DeserializeSeed<'de> for EnvelopeKey {
    type Value = Option<Root>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for EnvelopeKey {
    type Value = Option<Root>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E>(self, v: &str) -> Result<Option<Root>, E> {
        Ok(Root::from_name(v))
    }
}

/// The value of an identifying field: its text, borrowed from the entry unless it
/// had escapes.
enum Text<'a> {
    Null,
    Str(Cow<'a, str>),
    /// Not a string (passed over, within the nesting limit).
    Other,
}

struct TextSeed;

impl<'de> DeserializeSeed<'de> for TextSeed {
    type Value = Text<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TextSeed {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Text::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Text::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Text::Null)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Text::Other)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Text::Other)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Text::Other)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Text::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, items: A) -> Result<Self::Value, A::Error> {
        json::Skip::new().visit_seq(items).map(|()| Text::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, members: A) -> Result<Self::Value, A::Error> {
        json::Skip::new().visit_map(members).map(|()| Text::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::MAX_DEPTH;
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
    fn a_copy_keeps_type_and_data_under_its_new_identity_and_time() {
        let data = json!({"amount": 25.5, "user": {"name": "ann"}});
        let ls: Uuid = LS.parse().expect("uuid");
        let event = Event::new(
            ID.parse().expect("uuid"),
            "donation.received",
            ls,
            entry_time(),
            data.clone(),
        );
        let (id, other_ls) = (Uuid::from_u128(7), Uuid::from_u128(8));
        let later = entry_time() + chrono::Duration::seconds(5);
        let copy = event.copy_as(id, other_ls, later);
        let expected = Event::new(id, "donation.received", other_ls, later, data);
        assert_eq!(copy.to_envelope(), expected.to_envelope());
        assert_eq!(copy.data().to_value(), event.data().to_value());
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
        assert_eq!(event.data().to_value()["amount"], json!(25.5));
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
        assert_eq!(event.data().to_value(), json!({}));
        let fields = [
            ("id", ID),
            ("type", "follow"),
            ("livestream_id", LS),
            ("data", r#"{"a":[1]}"#),
        ];
        let event =
            Event::from_stream_fields(&fields, None, DEFAULT_MAX_EVENT_BYTES).expect("valid event");
        assert_eq!(event.data().to_value(), json!({"a": [1]}));
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

    /// The envelope is read with serde_json's own depth limit off (its 128 would
    /// count the envelope as a level): every place a value can nest is bounded here.
    #[test]
    fn nesting_is_bounded_in_every_member_of_the_envelope() {
        let nested = |levels: usize| format!("{}{}", "[".repeat(levels), "]".repeat(levels));
        let envelope = |member: &str, value: &str| {
            let data = if member == "data" {
                ""
            } else {
                r#", "data": {}"#
            };
            let id = if member == "id" {
                ""
            } else {
                r#""id": "6f1c2d3e-0000-4000-8000-000000000001", "#
            };
            format!(r#"{{{id}"type": "t", "livestream_id": "{LS}"{data}, "{member}": {value}}}"#)
        };
        for member in ["data", "id", "unknown"] {
            for levels in [MAX_DEPTH + 1, 1_000_000] {
                // `data` holds an object that holds the arrays.
                let value = if member == "data" {
                    format!(r#"{{"a": {}}}"#, nested(levels - 1))
                } else {
                    nested(levels)
                };
                let got = Event::from_json_slice(envelope(member, &value).as_bytes(), None)
                    .expect_err("too deep");
                assert!(
                    matches!(&got, EnvelopeError::InvalidJson(why) if why.contains("nested deeper than 128")),
                    "{member} at {levels}: {got}"
                );
            }
        }
        // At the limit, `data` and an unknown member are read; `id` is one that is
        // not a string.
        let at_limit = format!(r#"{{"a": {}}}"#, nested(MAX_DEPTH - 1));
        assert!(Event::from_json_slice(envelope("data", &at_limit).as_bytes(), None).is_ok());
        assert!(
            Event::from_json_slice(envelope("unknown", &nested(MAX_DEPTH)).as_bytes(), None)
                .is_ok()
        );
        assert!(matches!(
            Event::from_json_slice(envelope("id", &nested(MAX_DEPTH)).as_bytes(), None),
            Err(EnvelopeError::Invalid { field: "id", .. })
        ));
    }

    #[test]
    fn bytes_that_are_not_utf8_are_not_json() {
        let mut entry = format!(
            r#"{{"id": "{ID}", "type": "t", "livestream_id": "{LS}", "data": {{"m": "x"}}}}"#
        )
        .into_bytes();
        let at = entry.len() - 4;
        entry[at] = 0xff;
        let got = Event::from_json_slice(&entry, None).expect_err("not UTF-8");
        assert!(
            matches!(&got, EnvelopeError::InvalidJson(why) if why.contains("UTF-8")),
            "{got}"
        );
        assert!(Doc::parse(b"{\"m\": \"\xc3\"}").is_err());
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
            // A key given twice is refused even when its first value is `null`.
            (
                vec![(
                    "event",
                    format!(
                        r#"{{"id": null, "id": "{ID}", "type": "t", "livestream_id": "{LS}"}}"#
                    ),
                )],
                EnvelopeError::InvalidJson(String::new()),
            ),
            // Several fields wrong, met in another order: the first in the
            // envelope's order is reported, missing or invalid.
            (
                vec![(
                    "event",
                    format!(
                        r#"{{"data": [1], "occurred_at": "yesterday", "type": 3, "id": "nope", "livestream_id": "{LS}"}}"#
                    ),
                )],
                invalid("id", ""),
            ),
            (
                vec![(
                    "event",
                    format!(r#"{{"data": [1], "type": 3, "livestream_id": "{LS}"}}"#),
                )],
                EnvelopeError::Missing("id"),
            ),
            (
                vec![(
                    "event",
                    format!(
                        r#"{{"data": [1], "occurred_at": "yesterday", "type": "", "id": "{ID}"}}"#
                    ),
                )],
                invalid("type", ""),
            ),
            (
                vec![(
                    "event",
                    format!(
                        r#"{{"data": [1], "occurred_at": "yesterday", "type": "t", "id": "{ID}", "livestream_id": "{LS}"}}"#
                    ),
                )],
                invalid("occurred_at", ""),
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
