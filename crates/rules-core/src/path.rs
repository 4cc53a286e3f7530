//! Field paths: where a condition, a cooldown key or a threshold group looks in an event.
//!
//! A path is parsed and split once, when a rule is compiled, so that matching only
//! walks pre-split segments. A numeric segment is an array index on an array and an
//! ordinary key on an object; a path through a scalar is missing.

use compact_str::CompactString;
use smallvec::SmallVec;
use std::fmt;

use crate::event::{Event, Root};
use crate::json::Json;

/// The top-level keys of the event envelope a path may start with.
pub const ENVELOPE_ROOTS: [&str; 5] = ["id", "type", "livestream_id", "occurred_at", "data"];

/// Longest accepted path, in bytes.
pub const MAX_PATH_LEN: usize = 256;
/// Most segments in one path.
pub const MAX_PATH_SEGMENTS: usize = 32;

/// A segment as a range of the raw text (`MAX_PATH_LEN` keeps it in `u16`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    start: u16,
    end: u16,
    /// `Some` when the segment is a canonical non-negative integer, so it can index an array.
    index: Option<u32>,
}

/// A pre-split, validated field path such as `data.user.name` or `data.items.0.sku`.
///
/// Matching reads a path for every leaf it tests, so a usual one is held in place:
/// the text when it is at most 24 bytes, the first three segments after the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    raw: CompactString,
    root: Root,
    /// The segments after the root.
    segments: SmallVec<[Segment; 3]>,
}

impl FieldPath {
    /// Parses and checks a path; the error says what is wrong in words a rule author understands.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("path must not be empty".into());
        }
        if raw.len() > MAX_PATH_LEN {
            return Err(format!("path is longer than {MAX_PATH_LEN} bytes"));
        }
        let mut segments: SmallVec<[Segment; 3]> = SmallVec::new();
        let mut start = 0usize;
        for part in raw.split('.') {
            if part.is_empty() {
                return Err(format!("path `{raw}` has an empty segment"));
            }
            // MAX_PATH_LEN keeps offsets inside u16.
            segments.push(Segment {
                start: start as u16,
                end: (start + part.len()) as u16,
                index: parse_index(part),
            });
            start += part.len() + 1;
        }
        if segments.len() > MAX_PATH_SEGMENTS {
            return Err(format!("path has more than {MAX_PATH_SEGMENTS} segments"));
        }
        let first_segment = segments.remove(0);
        let first = &raw[first_segment.start as usize..first_segment.end as usize];
        let Some(root) = Root::from_name(first) else {
            return Err(format!(
                "path must start with one of {}, not `{first}`",
                ENVELOPE_ROOTS.join(", ")
            ));
        };
        if root != Root::Data && !segments.is_empty() {
            return Err(format!("`{first}` is a string and has no fields"));
        }
        Ok(Self {
            raw: raw.into(),
            root,
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The value at this path in an event, or `None` when missing.
    #[inline]
    pub fn lookup<'a>(&self, event: &'a Event) -> Option<Json<'a>> {
        let mut current = event.root(self.root);
        for segment in self.segments.iter() {
            current = match current {
                Json::Object(members) => {
                    members.get(&self.raw[segment.start as usize..segment.end as usize])?
                }
                Json::Array(items) => items.get(segment.index? as usize)?,
                _ => return None,
            };
        }
        Some(current)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl serde::Serialize for FieldPath {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.raw)
    }
}

/// `"0"`, `"12"`: an index; `"01"`, `"-1"`, `"x"`: not (they stay object keys).
fn parse_index(part: &str) -> Option<u32> {
    let canonical =
        part.bytes().all(|b| b.is_ascii_digit()) && (part == "0" || !part.starts_with('0'));
    if canonical {
        part.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn path(raw: &str) -> FieldPath {
        FieldPath::parse(raw).expect("valid path")
    }

    fn ev(envelope: Value) -> Event {
        Event::new(
            uuid::Uuid::nil(),
            "t",
            uuid::Uuid::nil(),
            chrono::Utc::now(),
            envelope["data"].clone(),
        )
    }

    #[test]
    fn walks_objects_and_arrays() {
        let event =
            ev(json!({"data": {"items": [{"sku": "a"}, {"sku": "b"}], "map": {"0": "zero"}}}));
        assert_eq!(
            path("data.items.1.sku")
                .lookup(&event)
                .map(|j| j.to_value()),
            Some(json!("b"))
        );
        assert_eq!(
            path("data.map.0").lookup(&event).map(|j| j.to_value()),
            Some(json!("zero"))
        );
        assert_eq!(
            path("data.items.2.sku")
                .lookup(&event)
                .map(|j| j.to_value()),
            None
        );
        assert_eq!(
            path("data.items.x").lookup(&event).map(|j| j.to_value()),
            None
        );
        assert_eq!(
            path("data.items.01").lookup(&event).map(|j| j.to_value()),
            None
        );
    }

    #[test]
    fn a_path_through_a_scalar_is_missing() {
        let event = ev(json!({"data": {"amount": 5}}));
        assert_eq!(
            path("data.amount.value")
                .lookup(&event)
                .map(|j| j.to_value()),
            None
        );
    }

    #[test]
    fn null_is_present() {
        let event = ev(json!({"data": {"x": null}}));
        assert_eq!(
            path("data.x").lookup(&event).map(|j| j.to_value()),
            Some(Value::Null)
        );
    }

    #[test]
    fn rejects_bad_paths() {
        for bad in [
            "",
            "data..x",
            ".data",
            "data.",
            "user.name",
            "type.x",
            "payload",
        ] {
            assert!(FieldPath::parse(bad).is_err(), "{bad} should be rejected");
        }
        assert!(FieldPath::parse(&format!("data.{}", "a.".repeat(40))).is_err());
        assert!(FieldPath::parse(&format!("data.{}", "a".repeat(300))).is_err());
        for good in [
            "type",
            "id",
            "livestream_id",
            "occurred_at",
            "data",
            "data.user.name",
        ] {
            assert!(FieldPath::parse(good).is_ok(), "{good} should be accepted");
        }
    }

    #[test]
    fn at_most_32_segments() {
        let path = |n: usize| {
            let mut parts = vec!["data".to_owned()];
            parts.extend((1..n).map(|i| format!("k{i}")));
            parts.join(".")
        };
        assert!(FieldPath::parse(&path(MAX_PATH_SEGMENTS)).is_ok());
        let err = FieldPath::parse(&path(MAX_PATH_SEGMENTS + 1)).expect_err("too deep");
        assert!(err.contains("more than 32 segments"), "{err}");
    }

    #[test]
    fn displays_as_written() {
        assert_eq!(path("data.items.0.sku").to_string(), "data.items.0.sku");
    }

    #[test]
    fn at_most_256_bytes() {
        let path = |len: usize| format!("data.{}", "k".repeat(len - "data.".len()));
        assert!(FieldPath::parse(&path(MAX_PATH_LEN)).is_ok());
        let err = FieldPath::parse(&path(MAX_PATH_LEN + 1)).expect_err("too long");
        assert!(err.contains("longer than 256 bytes"), "{err}");
    }
}
