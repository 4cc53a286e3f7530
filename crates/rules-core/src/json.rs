//! An event's `data`, read once into a flat tape: the matcher's view of JSON.
//!
//! Reading an event is on the hot path (every entry on the bus), and a
//! `serde_json::Value` costs an allocation per key, per string and per container. A
//! [`Doc`] is two allocations whatever the shape: the nodes in document order, and
//! the text of every key and string, unescaped, back to back. A node of a container
//! knows where its descendants end, so a path lookup steps over a sibling in one move.
//! [`Json`] is a borrowed view of one node, what conditions, cooldown keys and
//! thresholds read; [`Json::to_value`] makes the `serde_json::Value` the dry run and
//! the API show.
//!
//! The reading rules are the service's (see `strict_json`): objects have distinct
//! keys at any depth, nesting is bounded, and numbers are what serde_json makes of
//! them (an integer that fits `u64` or `i64` stays one, anything else is the nearest
//! `f64`, and one beyond `f64`'s range is refused). serde_json's reader does the
//! reading, driven by the seeds here ([`DocSeed`], [`Skip`]) that write the tape.

use rustc_hash::FxHashSet;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::de::StrRead;
use serde_json::{Map, Number, Value};
use std::cell::RefCell;

/// Deepest nesting of arrays and objects accepted (serde_json's own limit).
pub const MAX_DEPTH: usize = 128;

/// Members of an object compared with each other one by one before a set takes over.
const LINEAR_DUPLICATE_CHECK: u32 = 8;

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Null,
    Bool(bool),
    Number(Number),
    /// A string or a key: `text[start..end]`.
    String {
        start: u32,
        end: u32,
    },
    /// `len` items follow; its descendants are the nodes before `end`.
    Array {
        len: u32,
        end: u32,
    },
    /// `len` members follow, each a key (a `String` node) then its value.
    Object {
        len: u32,
        end: u32,
    },
}

/// A JSON document read into a tape (see the module's documentation).
#[derive(Debug, Clone)]
pub struct Doc {
    nodes: Box<[Node]>,
    text: Box<str>,
}

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReadError(pub String);

impl Doc {
    /// An empty object, the `data` of an event that has none.
    pub fn empty_object() -> Self {
        Self {
            nodes: Box::new([Node::Object { len: 0, end: 1 }]),
            text: Box::default(),
        }
    }

    /// Reads one whole document (whitespace around it only).
    pub fn parse(bytes: &[u8]) -> Result<Self, ReadError> {
        let mut de = deserializer(bytes)?;
        let doc = DocSeed.deserialize(&mut de).map_err(ReadError::from)?;
        de.end().map_err(ReadError::from)?;
        Ok(doc)
    }

    /// The same tape as reading `value`'s JSON would give.
    pub fn from_value(value: &Value) -> Self {
        let mut builder = Builder::default();
        builder.push_value(value);
        Self {
            nodes: builder.nodes.into_boxed_slice(),
            text: builder.text.into_boxed_str(),
        }
    }

    /// The document's top value.
    #[inline]
    pub fn root(&self) -> Json<'_> {
        self.at(0)
    }

    pub fn to_value(&self) -> Value {
        self.root().to_value()
    }

    /// The value at node `index` (the root is 0; [`Array::index`] and
    /// [`Object::index`] name the others).
    #[inline]
    pub(crate) fn at(&self, index: u32) -> Json<'_> {
        match &self.nodes[index as usize] {
            Node::Null => Json::Null,
            Node::Bool(b) => Json::Bool(*b),
            Node::Number(n) => Json::Number(n),
            Node::String { start, end } => Json::String(self.str(*start, *end)),
            Node::Array { .. } => Json::Array(Array {
                doc: self,
                at: index,
            }),
            Node::Object { .. } => Json::Object(Object {
                doc: self,
                at: index,
            }),
        }
    }

    #[inline]
    fn str(&self, start: u32, end: u32) -> &str {
        &self.text[start as usize..end as usize]
    }

    #[inline]
    fn after(&self, index: u32) -> u32 {
        after(&self.nodes, index)
    }

    #[inline]
    fn key(&self, index: u32) -> &str {
        key(&self.nodes, &self.text, index)
    }
}

/// The index of the node after `index`'s value and its descendants.
#[inline]
fn after(nodes: &[Node], index: u32) -> u32 {
    match nodes[index as usize] {
        Node::Array { end, .. } | Node::Object { end, .. } => end,
        _ => index + 1,
    }
}

/// The text of the key at `index`.
#[inline]
fn key<'t>(nodes: &[Node], text: &'t str, index: u32) -> &'t str {
    key_of(&nodes[index as usize], text)
}

/// The text of a key's node (the builder writes a `String` node for every key).
#[inline]
fn key_of<'t>(node: &Node, text: &'t str) -> &'t str {
    match *node {
        Node::String { start, end } => &text[start as usize..end as usize],
        _ => "",
    }
}

/// The indices of the keys of the object at `at` with `len` members (each followed
/// by its value): the one walk over members, for lookups and the duplicate check.
#[inline]
fn member_keys(nodes: &[Node], at: u32, len: u32) -> impl Iterator<Item = u32> + '_ {
    let mut next = at + 1;
    (0..len).map(move |_| {
        let key = next;
        next = after(nodes, key + 1);
        key
    })
}

/// One value of a [`Doc`].
#[derive(Debug, Clone, Copy)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    Number(&'a Number),
    String(&'a str),
    Array(Array<'a>),
    Object(Object<'a>),
}

/// An array of a [`Doc`].
#[derive(Debug, Clone, Copy)]
pub struct Array<'a> {
    doc: &'a Doc,
    at: u32,
}

/// An object of a [`Doc`], its members in the document's order.
#[derive(Debug, Clone, Copy)]
pub struct Object<'a> {
    doc: &'a Doc,
    at: u32,
}

impl<'a> Json<'a> {
    pub fn as_str(&self) -> Option<&'a str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    /// The member `key` of an object (`None` for anything else).
    pub fn get(&self, key: &str) -> Option<Json<'a>> {
        match self {
            Json::Object(members) => members.get(key),
            _ => None,
        }
    }

    pub fn is_string(&self) -> bool {
        matches!(self, Json::String(_))
    }

    pub fn to_value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => Value::Number((*n).clone()),
            Json::String(s) => Value::String((*s).to_owned()),
            Json::Array(items) => Value::Array(items.iter().map(|i| i.to_value()).collect()),
            Json::Object(members) => {
                let mut map = Map::new();
                for (key, value) in members.iter() {
                    map.insert(key.to_owned(), value.to_value());
                }
                Value::Object(map)
            }
        }
    }
}

impl<'a> Array<'a> {
    /// Its node in the document ([`Doc::at`]).
    pub(crate) fn index(&self) -> u32 {
        self.at
    }

    pub fn len(&self) -> usize {
        match self.doc.nodes[self.at as usize] {
            Node::Array { len, .. } => len as usize,
            _ => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = Json<'a>> + 'a {
        let doc = self.doc;
        let mut next = self.at + 1;
        (0..self.len()).map(move |_| {
            let item = next;
            next = doc.after(item);
            doc.at(item)
        })
    }

    pub fn get(&self, index: usize) -> Option<Json<'a>> {
        self.iter().nth(index)
    }
}

impl<'a> Object<'a> {
    /// Its node in the document ([`Doc::at`]).
    pub(crate) fn index(&self) -> u32 {
        self.at
    }

    pub fn len(&self) -> usize {
        match self.doc.nodes[self.at as usize] {
            Node::Object { len, .. } => len as usize,
            _ => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn keys(&self) -> impl Iterator<Item = u32> + 'a {
        member_keys(&self.doc.nodes, self.at, self.len() as u32)
    }

    /// The members, each key with its value, in the document's order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, Json<'a>)> + 'a {
        let doc = self.doc;
        self.keys().map(move |key| (doc.key(key), doc.at(key + 1)))
    }

    /// The value of member `key`; only the matching member's value is looked at.
    #[inline]
    pub fn get(&self, key: &str) -> Option<Json<'a>> {
        let doc = self.doc;
        self.keys()
            .find(|k| doc.key(*k) == key)
            .map(|k| doc.at(k + 1))
    }
}

/// Objects serialize with their keys in order, as a `serde_json::Value` does, so a
/// template's `{{ event.data.user }}` reads as it always has.
impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => serializer.serialize_unit(),
            Json::Bool(b) => serializer.serialize_bool(*b),
            Json::Number(n) => n.serialize(serializer),
            Json::String(s) => serializer.serialize_str(s),
            Json::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items.iter() {
                    seq.serialize_element(&item)?;
                }
                seq.end()
            }
            Json::Object(members) => {
                let mut sorted: Vec<(&str, Json<'_>)> = members.iter().collect();
                sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
                let mut map = serializer.serialize_map(Some(sorted.len()))?;
                for (key, value) in sorted {
                    map.serialize_entry(key, &value)?;
                }
                map.end()
            }
        }
    }
}

impl Serialize for Doc {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.root().serialize(serializer)
    }
}

/// Equal as the `serde_json::Value`s they read as.
impl PartialEq for Doc {
    fn eq(&self, other: &Self) -> bool {
        self.to_value() == other.to_value()
    }
}

thread_local! {
    /// The buffers a document is built in, kept between documents: reading one
    /// allocates only its two exact-sized results.
    static SCRATCH: RefCell<Builder> = RefCell::default();
}

#[derive(Clone, Copy)]
enum Container {
    Array,
    Object,
}

#[derive(Default)]
struct Builder {
    nodes: Vec<Node>,
    text: String,
}

impl Builder {
    /// Appends a string's text; the node that names it is the caller's to place.
    fn push_str(&mut self, s: &str) -> Node {
        let start = saturate(self.text.len());
        self.text.push_str(s);
        Node::String {
            start,
            end: saturate(self.text.len()),
        }
    }

    fn position(&self) -> u32 {
        saturate(self.nodes.len())
    }

    /// Places a container's node, to be completed by [`Self::close`] once its
    /// members are written after it; returns where it is.
    fn open(&mut self) -> u32 {
        let at = self.position();
        self.nodes.push(Node::Null);
        at
    }

    /// Completes the container opened at `at`, now that its `len` members are written.
    fn close(&mut self, at: u32, container: Container, len: u32) {
        let end = self.position();
        self.nodes[at as usize] = match container {
            Container::Array => Node::Array { len, end },
            Container::Object => Node::Object { len, end },
        };
    }

    /// A seed writing the next value onto this tape, inside containers `depth`
    /// levels deep.
    fn seed(&mut self, depth: usize) -> Build<'_> {
        Build {
            builder: self,
            depth,
        }
    }

    /// The document built so far, in its two exact-sized allocations.
    fn doc(&self) -> Doc {
        Doc {
            nodes: self.nodes.as_slice().into(),
            text: self.text.as_str().into(),
        }
    }

    /// Whether the object at `at`, with `len` members so far, already has the key
    /// `new_key`.
    fn has_key(
        &self,
        at: u32,
        new_key: &Node,
        len: u32,
        seen: &mut Option<FxHashSet<Box<str>>>,
    ) -> bool {
        let text = key_of(new_key, &self.text);
        let members = || member_keys(&self.nodes, at, len);
        let key_text = |k| key(&self.nodes, &self.text, k);
        if len < LINEAR_DUPLICATE_CHECK {
            members().any(|k| key_text(k) == text)
        } else {
            let set = seen.get_or_insert_with(|| members().map(|k| key_text(k).into()).collect());
            !set.insert(text.into())
        }
    }

    /// Writes an already parsed value (its objects have distinct keys by construction).
    fn push_value(&mut self, value: &Value) {
        match value {
            Value::Null => self.nodes.push(Node::Null),
            Value::Bool(b) => self.nodes.push(Node::Bool(*b)),
            Value::Number(n) => self.nodes.push(Node::Number(n.clone())),
            Value::String(s) => {
                let node = self.push_str(s);
                self.nodes.push(node);
            }
            Value::Array(items) => {
                let at = self.open();
                for item in items {
                    self.push_value(item);
                }
                self.close(at, Container::Array, saturate(items.len()));
            }
            Value::Object(map) => {
                let at = self.open();
                for (key, item) in map {
                    let node = self.push_str(key);
                    self.nodes.push(node);
                    self.push_value(item);
                }
                self.close(at, Container::Object, saturate(map.len()));
            }
        }
    }
}

/// Offsets in a document are `u32`: [`deserializer`] refuses a longer input, and a document
/// has no more text (unescaping never lengthens a string) and no more nodes (each
/// takes at least a byte) than its input has bytes; a value built in memory is far
/// below that.
fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A reader of `bytes` (serde_json's, whose numbers are the service's), refused
/// beyond what a document's `u32` offsets can address. The bytes are checked to be
/// UTF-8 once, whole (JSON is UTF-8 throughout), rather than string by string. The
/// reader's own recursion limit is off: the seeds here bound the nesting themselves,
/// at [`MAX_DEPTH`] levels below where they start, so a million `[` is an error and
/// never a deep stack.
pub(crate) fn deserializer(
    bytes: &[u8],
) -> Result<serde_json::Deserializer<StrRead<'_>>, ReadError> {
    if u32::try_from(bytes.len()).is_err() {
        return Err(ReadError("document is larger than 4 GiB".into()));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ReadError(format!("invalid UTF-8 at index {}", e.valid_up_to())))?;
    let mut de = serde_json::Deserializer::from_str(text);
    de.disable_recursion_limit();
    Ok(de)
}

impl From<serde_json::Error> for ReadError {
    fn from(error: serde_json::Error) -> Self {
        ReadError(error.to_string())
    }
}

/// Reads the value the deserializer is at into a [`Doc`] (in this thread's scratch
/// buffers), nested at most [`MAX_DEPTH`] levels, objects with distinct keys.
pub(crate) struct DocSeed;

impl<'de> DeserializeSeed<'de> for DocSeed {
    type Value = Doc;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Doc, D::Error> {
        SCRATCH.with(|scratch| {
            let mut builder = scratch.borrow_mut();
            builder.nodes.clear();
            builder.text.clear();
            deserializer.deserialize_any(builder.seed(0))?;
            Ok(builder.doc())
        })
    }
}

/// Passes over the value the deserializer is at, nested at most [`MAX_DEPTH`]
/// levels: an envelope's key that is not the service's.
pub(crate) struct Skip {
    depth: usize,
}

impl Skip {
    pub(crate) fn new() -> Self {
        Self { depth: 0 }
    }
}

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        let depth = deeper(self.depth)?;
        while items.next_element_seed(Skip { depth })?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<(), A::Error> {
        let depth = deeper(self.depth)?;
        while members.next_key_seed(Skip { depth })?.is_some() {
            members.next_value_seed(Skip { depth })?;
        }
        Ok(())
    }
}

/// The depth inside a container entered at `depth`, or the error past the limit.
fn deeper<E: de::Error>(depth: usize) -> Result<usize, E> {
    if depth >= MAX_DEPTH {
        Err(E::custom(format_args!(
            "nested deeper than {MAX_DEPTH} levels"
        )))
    } else {
        Ok(depth + 1)
    }
}

/// Writes the value the deserializer is at onto a builder's tape.
struct Build<'b> {
    builder: &'b mut Builder,
    depth: usize,
}

impl Build<'_> {
    fn push(self, node: Node) {
        self.builder.nodes.push(node);
    }
}

impl<'de> DeserializeSeed<'de> for Build<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Build<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.push(Node::Bool(v));
        Ok(())
    }

    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.push(Node::Number(v.into()));
        Ok(())
    }

    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.push(Node::Number(v.into()));
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        // serde_json refuses a number beyond `f64`'s range, so `v` is finite.
        let number = Number::from_f64(v).ok_or_else(|| E::custom("number out of range"))?;
        self.push(Node::Number(number));
        Ok(())
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        let node = self.builder.push_str(v);
        self.push(node);
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.push(Node::Null);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        let depth = deeper(self.depth)?;
        let builder = self.builder;
        let at = builder.open();
        let mut len = 0u32;
        while items.next_element_seed(builder.seed(depth))?.is_some() {
            len += 1;
        }
        builder.close(at, Container::Array, len);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<(), A::Error> {
        let depth = deeper(self.depth)?;
        let builder = self.builder;
        let at = builder.open();
        let mut len = 0u32;
        // Past a few members, the keys so far go into a set.
        let mut seen: Option<FxHashSet<Box<str>>> = None;
        while let Some(key) = members.next_key_seed(KeyInto(&mut *builder))? {
            if builder.has_key(at, &key, len, &mut seen) {
                return Err(de::Error::custom(format_args!(
                    "duplicate key `{}`",
                    key_of(&key, &builder.text)
                )));
            }
            builder.nodes.push(key);
            members.next_value_seed(builder.seed(depth))?;
            len += 1;
        }
        builder.close(at, Container::Object, len);
        Ok(())
    }
}

/// Writes a key's text; its node is the object's to place once it is known to be new.
struct KeyInto<'b>(&'b mut Builder);

impl<'de> DeserializeSeed<'de> for KeyInto<'_> {
    type Value = Node;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyInto<'_> {
    type Value = Node;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(self.0.push_str(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn strict(text: &str) -> Result<Value, String> {
        serde_json::from_str::<crate::Strict>(text)
            .map(|s| s.0)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn reads_what_serde_json_reads() {
        let cases = [
            r#"{"a": [1, -2, 2.5, "x", true, null, {"b": {}}], "c": 18446744073709551615}"#,
            r#"{"escaped": "a\"b\\c\n\u00e9\ud83d\ude00", "": "", "nested": [[[]], {}]}"#,
            r#"[-0, 0, -9223372036854775808, 18446744073709551616, 1e2, 1E-2, 0.1, 1.7976931348623157e308, 5e-324, 1e-400]"#,
            r#"  "just a string"  "#,
            "123456789012345678901234567890",
            "-12",
            "null",
        ];
        for text in cases {
            let doc = Doc::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(Ok(doc.to_value()), strict(text), "{text}");
            assert_eq!(
                serde_json::to_string(&doc).ok(),
                strict(text).ok().map(|v| v.to_string()),
                "{text}"
            );
        }
    }

    #[test]
    fn refuses_what_the_service_refuses() {
        let cases = [
            "",
            "{",
            r#"{"a": 1,}"#,
            r#"{"a" 1}"#,
            "[1 2]",
            "01",
            "1.",
            "-",
            "NaN",
            "Infinity",
            "1e400",
            "-1e400",
            r#""\ud800""#,
            r#""\x""#,
            "\"tab\there\"",
            "{} x",
            "[1]]",
            "tru",
            r#"{"amount": 1, "amount": 1000}"#,
            r#"{"user": {"id": "a", "id": "b"}}"#,
            r#"{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k3":3}"#,
        ];
        for text in cases {
            assert!(Doc::parse(text.as_bytes()).is_err(), "accepted {text:?}");
            assert!(strict(text).is_err(), "serde_json accepts {text:?}");
        }
        let err = Doc::parse(br#"{"amount": 1, "amount": 1000}"#).expect_err("duplicate");
        assert!(err.0.contains("duplicate key `amount`"), "{err}");
        assert!(
            Doc::parse(br#"[{"a": 1}, {"a": 2}]"#).is_ok(),
            "distinct objects"
        );
    }

    #[test]
    fn refuses_nesting_past_the_limit_without_overflowing_the_stack() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(Doc::parse(ok.as_bytes()).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        let err = Doc::parse(deep.as_bytes()).expect_err("too deep");
        assert!(err.0.contains("nested deeper than 128"), "{err}");
        let hostile = "[".repeat(1_000_000);
        assert!(Doc::parse(hostile.as_bytes()).is_err());
    }

    #[test]
    fn finds_members_and_items() {
        let doc = Doc::parse(br#"{"user": {"name": "ann", "tags": ["a", {"b": 2}]}, "n": 1}"#)
            .expect("valid");
        let Json::Object(top) = doc.root() else {
            panic!("an object");
        };
        assert_eq!(top.len(), 2);
        let Some(Json::Object(user)) = top.get("user") else {
            panic!("user");
        };
        assert_eq!(user.get("name").and_then(|n| n.as_str()), Some("ann"));
        let Some(Json::Array(tags)) = user.get("tags") else {
            panic!("tags");
        };
        assert_eq!(tags.get(0).and_then(|t| t.as_str()), Some("a"));
        assert_eq!(tags.get(1).map(|t| t.to_value()), Some(json!({"b": 2})));
        assert!(tags.get(2).is_none());
        assert_eq!(top.get("n").map(|n| n.to_value()), Some(json!(1)));
        assert!(top.get("missing").is_none());
    }

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(".{0,6}", inner, 0..12)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn a_document_reads_back_as_serde_json_reads_it(value in any_json()) {
            let text = serde_json::to_string(&value).expect("serializes");
            let doc = Doc::parse(text.as_bytes()).expect("valid JSON");
            prop_assert_eq!(doc.to_value(), strict(&text).expect("valid JSON"));
            prop_assert_eq!(Doc::from_value(&value).to_value(), value.clone());
            prop_assert_eq!(serde_json::to_string(&doc).expect("serializes"), text);
        }

        #[test]
        fn any_text_is_refused_or_read_as_serde_json_reads_it(text in "[\\[\\]{}\":,0-9a-z.eE+\\-\\\\ ]{0,24}") {
            match (Doc::parse(text.as_bytes()), strict(&text)) {
                (Ok(doc), Ok(value)) => prop_assert_eq!(doc.to_value(), value),
                (Err(_), Err(_)) => {}
                (ours, theirs) => prop_assert!(false, "{:?}: ours {:?}, serde_json {:?}", text, ours, theirs),
            }
        }
    }
}
