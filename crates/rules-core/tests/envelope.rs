//! The event envelope at its edges: sizes, the flat form's fields, equality.
//! Gaps found by `make mutants`.

use chrono::{TimeZone, Utc};
use rules_core::event::{DEFAULT_MAX_EVENT_BYTES, MAX_EVENT_TYPE_LEN};
use rules_core::{EnvelopeError, Event};
use serde_json::json;
use uuid::Uuid;

const ID: &str = "5f0c1d2e-0000-4000-8000-000000000001";
const LS: &str = "0e2a9c1b-0000-4000-8000-00000000abcd";

fn flat(fields: &[(&str, &str)]) -> Result<Event, EnvelopeError> {
    let at = Utc.timestamp_opt(1_764_547_200, 0).single();
    Event::from_stream_fields(fields, at, DEFAULT_MAX_EVENT_BYTES)
}

#[test]
fn the_default_size_limit_is_64_kib() {
    assert_eq!(DEFAULT_MAX_EVENT_BYTES, 65_536);
}

#[test]
fn the_size_limit_counts_names_and_values_and_admits_exactly_the_limit() {
    let event = json!({"id": ID, "type": "t", "livestream_id": LS}).to_string();
    let size = "event".len() + event.len();
    let fields = [("event", event.as_str())];
    assert!(Event::from_stream_fields(&fields, None, size).is_ok());
    assert_eq!(
        Event::from_stream_fields(&fields, None, size - 1).err(),
        Some(EnvelopeError::Oversize {
            size,
            limit: size - 1
        })
    );
}

#[test]
fn the_flat_form_names_the_field_it_lacks() {
    assert_eq!(
        flat(&[("type", "t"), ("livestream_id", LS)]).err(),
        Some(EnvelopeError::Missing("id"))
    );
    assert_eq!(
        flat(&[("id", ID), ("livestream_id", LS)]).err(),
        Some(EnvelopeError::Missing("type"))
    );
    assert_eq!(
        flat(&[("id", ID), ("type", "t")]).err(),
        Some(EnvelopeError::Missing("livestream_id"))
    );
    assert_eq!(flat(&[("other", "x")]).err(), Some(EnvelopeError::NoEvent));
}

#[test]
fn an_empty_occurred_at_in_the_flat_form_is_the_entry_time() {
    let event = flat(&[
        ("id", ID),
        ("type", "t"),
        ("livestream_id", LS),
        ("occurred_at", ""),
    ])
    .expect("event");
    assert_eq!(event.occurred_at.timestamp(), 1_764_547_200);
}

#[test]
fn an_event_type_may_be_128_bytes_not_more() {
    let longest = "t".repeat(MAX_EVENT_TYPE_LEN);
    let over = "t".repeat(MAX_EVENT_TYPE_LEN + 1);
    assert!(flat(&[("id", ID), ("type", &longest), ("livestream_id", LS)]).is_ok());
    assert!(matches!(
        flat(&[("id", ID), ("type", &over), ("livestream_id", LS)]),
        Err(EnvelopeError::Invalid { field: "type", .. })
    ));
}

#[test]
fn only_an_object_is_an_envelope() {
    assert_eq!(
        Event::from_value(&json!([1]), None).err(),
        Some(EnvelopeError::NotAnObject)
    );
    assert!(Event::from_value(&json!({"id": ID, "type": "t", "livestream_id": LS}), None).is_ok());
}

#[test]
fn events_are_equal_only_when_every_field_is() {
    let at = Utc.timestamp_opt(1_764_547_200, 0).single().expect("time");
    let ls: Uuid = LS.parse().expect("uuid");
    let base = || Event::new(Uuid::nil(), "t", ls, at, json!({"a": 1}));
    assert_eq!(base(), base());
    let others = [
        Event::new(Uuid::max(), "t", ls, at, json!({"a": 1})),
        Event::new(Uuid::nil(), "u", ls, at, json!({"a": 1})),
        Event::new(Uuid::nil(), "t", Uuid::nil(), at, json!({"a": 1})),
        Event::new(
            Uuid::nil(),
            "t",
            ls,
            at + chrono::TimeDelta::seconds(1),
            json!({"a": 1}),
        ),
        Event::new(Uuid::nil(), "t", ls, at, json!({"a": 2})),
    ];
    for other in &others {
        assert_ne!(&base(), other);
    }
}
