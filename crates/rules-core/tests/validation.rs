//! Validation: every limit of docs/contract.md §2, and every problem reported with its path.

use rules_core::{limits, parse_rule_spec, FieldError};
use serde_json::{json, Value};

fn valid() -> Value {
    json!({
        "livestream_id": "0e2a9c1b-0000-4000-8000-00000000abcd",
        "name": "Big donation alert",
        "description": "optional text",
        "trigger_config": {
            "event_types": ["donation.received"],
            "condition": {"all": [
                {"field": "data.amount", "op": "gte", "value": 10},
                {"any": [
                    {"field": "data.currency", "op": "in", "value": ["USD", "EUR"]},
                    {"field": "data.message", "op": "contains", "value": "hype", "ignore_case": true}
                ]}
            ]},
            "threshold": {"count": 5, "window_seconds": 60, "group_by": "data.user.id"}
        },
        "actions": [
            {"type": "publish", "stream": "overlay:alerts",
             "payload": {"text": "{{ event.data.user.name }} donated {{ event.data.amount }}!"}},
            {"type": "webhook", "url": "https://bot.example.com/hooks/donation",
             "method": "POST", "headers": {"X-Source": "rules"},
             "body": {"user": "{{ event.data.user.name }}"}, "timeout_ms": 5000}
        ],
        "cooldown_seconds": 30,
        "cooldown_key": "data.user.id",
        "enabled": true
    })
}

/// Applies `edit` to a valid rule and returns the problems found.
fn errors_after(edit: impl FnOnce(&mut Value)) -> Vec<FieldError> {
    let mut body = valid();
    edit(&mut body);
    match parse_rule_spec(&body) {
        Ok(_) => Vec::new(),
        Err(e) => e.0,
    }
}

fn assert_error(edit: impl FnOnce(&mut Value), path: &str, fragment: &str) {
    let errors = errors_after(edit);
    assert!(
        errors
            .iter()
            .any(|e| e.path == path && e.message.contains(fragment)),
        "expected `{path}: …{fragment}…`, got {errors:?}"
    );
}

fn nest(depth: usize) -> Value {
    let mut node = json!({"field": "data.x", "op": "exists", "value": true});
    for _ in 1..depth {
        node = json!({"not": node});
    }
    node
}

#[test]
fn the_contract_example_is_valid_and_round_trips() {
    let spec = parse_rule_spec(&valid()).expect("valid");
    let again =
        parse_rule_spec(&serde_json::to_value(&spec).expect("serializes")).expect("still valid");
    assert_eq!(spec, again);
    let out = serde_json::to_value(&spec).expect("serializes");
    assert_eq!(
        out["trigger_config"]["condition"],
        valid()["trigger_config"]["condition"]
    );
}

#[test]
fn minimal_rule_gets_defaults() {
    let spec = parse_rule_spec(&json!({
        "livestream_id": "0e2a9c1b-0000-4000-8000-00000000abcd", "name": "n",
        "trigger_config": {"event_types": ["*"]},
        "actions": [{"type": "webhook", "url": "http://x.example/h"}, {"type": "log", "message": "m"}]
    }))
    .expect("valid");
    let out = serde_json::to_value(&spec).expect("serializes");
    assert_eq!(out["cooldown_seconds"], json!(0));
    assert_eq!(out["enabled"], json!(true));
    assert_eq!(out["actions"][0]["method"], json!("POST"));
    assert_eq!(out["actions"][0]["timeout_ms"], json!(5000));
    assert_eq!(out["actions"][1]["level"], json!("info"));
}

#[test]
fn reports_every_problem_at_once() {
    let errors = errors_after(|r| {
        r["name"] = json!("");
        r["trigger_config"]["condition"]["all"][0]["value"] = json!("ten");
        r["trigger_config"]["condition"]["all"][1]["any"][0]["op"] = json!("within");
        r["actions"][1]["url"] = json!("ftp://x/y");
        r["cooldown_seconds"] = json!(-1);
    });
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "name",
            "trigger_config.condition.all[0].value",
            "trigger_config.condition.all[1].any[0].op",
            "actions[1].url",
            "cooldown_seconds",
        ]
    );
    assert_eq!(errors[1].message, "gte needs a number");
}

#[test]
fn required_fields_and_types() {
    assert_error(
        |r| {
            r.as_object_mut().map(|m| m.remove("livestream_id"));
        },
        "livestream_id",
        "required",
    );
    assert_error(
        |r| r["livestream_id"] = json!("nope"),
        "livestream_id",
        "UUID",
    );
    assert_error(
        |r| {
            r.as_object_mut().map(|m| m.remove("actions"));
        },
        "actions",
        "required",
    );
    assert_error(|r| r["enabled"] = json!("yes"), "enabled", "true or false");
    assert_error(
        |r| r["trigger_config"] = json!([]),
        "trigger_config",
        "object",
    );
    assert_error(|r| r["nmae"] = json!("typo"), "nmae", "not a known field");
    assert_error(
        |r| r["trigger_config"]["condition"]["all"][0]["igonre_case"] = json!(true),
        "trigger_config.condition.all[0].igonre_case",
        "not a known field",
    );
    assert!(parse_rule_spec(&json!([1])).is_err());
    assert!(parse_rule_spec(&json!("rule")).is_err());
    // Read-only fields a client may send back are accepted and ignored.
    assert!(errors_after(|r| {
        r["id"] = json!("x");
        r["version"] = json!(3);
        r["created_at"] = json!("t");
    })
    .is_empty());
}

#[test]
fn event_type_limits() {
    assert_error(
        |r| r["trigger_config"]["event_types"] = json!([]),
        "trigger_config.event_types",
        "at least 1",
    );
    let many: Vec<String> = (0..=limits::MAX_EVENT_TYPES)
        .map(|i| format!("t{i}"))
        .collect();
    assert_error(
        |r| r["trigger_config"]["event_types"] = json!(many),
        "trigger_config.event_types",
        "limit of 32",
    );
    let max: Vec<String> = (0..limits::MAX_EVENT_TYPES)
        .map(|i| format!("t{i}"))
        .collect();
    assert!(errors_after(|r| r["trigger_config"]["event_types"] = json!(max)).is_empty());
    assert_error(
        |r| r["trigger_config"]["event_types"] = json!(["a", "a"]),
        "trigger_config.event_types[1]",
        "twice",
    );
    assert_error(
        |r| r["trigger_config"]["event_types"] = json!([""]),
        "trigger_config.event_types[0]",
        "empty",
    );
}

#[test]
fn condition_depth_limit() {
    assert!(
        errors_after(|r| r["trigger_config"]["condition"] = nest(limits::MAX_DEPTH)).is_empty()
    );
    let errors = errors_after(|r| r["trigger_config"]["condition"] = nest(limits::MAX_DEPTH + 1));
    assert!(
        errors.iter().any(|e| e.message.contains("deeper than 10")),
        "{errors:?}"
    );
}

#[test]
fn condition_leaf_limit() {
    let leaves = |n: usize| {
        let chunk: Vec<Value> = (0..n)
            .map(|_| json!({"field": "data.x", "op": "exists", "value": true}))
            .collect();
        let groups: Vec<Value> = chunk.chunks(50).map(|c| json!({"any": c})).collect();
        json!({"all": groups})
    };
    assert!(
        errors_after(|r| r["trigger_config"]["condition"] = leaves(limits::MAX_LEAVES)).is_empty()
    );
    assert_error(
        |r| r["trigger_config"]["condition"] = leaves(limits::MAX_LEAVES + 1),
        "trigger_config.condition",
        "101 leaves",
    );
}

#[test]
fn children_limits() {
    let kids = |n: usize| json!({"any": (0..n).map(|_| json!({"field": "data.x", "op": "exists", "value": true})).collect::<Vec<_>>()});
    assert!(errors_after(|r| r["trigger_config"]["condition"] = kids(64)).is_empty());
    assert_error(
        |r| r["trigger_config"]["condition"] = kids(65),
        "trigger_config.condition.any",
        "limit of 64",
    );
    assert_error(
        |r| r["trigger_config"]["condition"] = json!({"all": []}),
        "trigger_config.condition.all",
        "at least 1",
    );
    assert_error(
        |r| r["trigger_config"]["condition"] = json!({"all": [], "any": []}),
        "trigger_config.condition.any",
        "not a known field",
    );
    assert_error(
        |r| r["trigger_config"]["condition"] = json!({"foo": 1}),
        "trigger_config.condition",
        "needs `all`",
    );
}

#[test]
fn operand_checks() {
    let leaf = |op: &str, value: Value| json!({"field": "data.x", "op": op, "value": value});
    let path = "trigger_config.condition.value";
    for op in ["gt", "gte", "lt", "lte"] {
        assert_error(
            |r| r["trigger_config"]["condition"] = leaf(op, json!("5")),
            path,
            &format!("{op} needs a number"),
        );
    }
    assert_error(
        |r| r["trigger_config"]["condition"] = leaf("in", json!("USD")),
        path,
        "in needs an array",
    );
    assert_error(
        |r| r["trigger_config"]["condition"] = leaf("not_in", json!(1)),
        path,
        "not_in needs an array",
    );
    assert_error(
        |r| r["trigger_config"]["condition"] = leaf("starts_with", json!(1)),
        path,
        "needs a string",
    );
    assert_error(
        |r| r["trigger_config"]["condition"] = leaf("ends_with", json!(null)),
        path,
        "needs a string",
    );
    assert_error(
        |r| r["trigger_config"]["condition"] = leaf("exists", json!("yes")),
        path,
        "true or false",
    );
    assert_error(
        |r| r["trigger_config"]["condition"] = leaf("matches", json!("(unclosed")),
        path,
        "invalid regex",
    );
    assert_error(
        |r| r["trigger_config"]["condition"] = json!({"field": "data.x", "op": "eq"}),
        path,
        "required",
    );
    assert_error(
        |r| r["trigger_config"]["condition"] = leaf("like", json!("x")),
        "trigger_config.condition.op",
        "unknown op",
    );
    assert_error(
        |r| r["trigger_config"]["condition"] = json!({"field": "user.x", "op": "eq", "value": 1}),
        "trigger_config.condition.field",
        "must start with",
    );
    for op in ["eq", "ne", "contains"] {
        assert!(errors_after(
            |r| r["trigger_config"]["condition"] = leaf(op, json!({"any": ["json"]}))
        )
        .is_empty());
    }
}

#[test]
fn regex_size_limit() {
    let ok = "a".repeat(limits::MAX_REGEX_BYTES);
    let too_long = "a".repeat(limits::MAX_REGEX_BYTES + 1);
    let leaf = |p: &str| json!({"field": "data.x", "op": "matches", "value": p});
    assert!(errors_after(|r| r["trigger_config"]["condition"] = leaf(&ok)).is_empty());
    assert_error(
        |r| r["trigger_config"]["condition"] = leaf(&too_long),
        "trigger_config.condition.value",
        "limit of 1024",
    );
    // Small pattern, huge automaton: refused by the compiled-size bound, not run.
    assert_error(
        |r| r["trigger_config"]["condition"] = leaf(r"\w{1000}\w{1000}\w{1000}"),
        "trigger_config.condition.value",
        "invalid regex",
    );
}

#[test]
fn whole_rule_size_limit() {
    let errors = errors_after(|r| r["actions"][0]["payload"] = json!({"big": "x".repeat(70_000)}));
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].message.contains("over the limit of 65536"),
        "{errors:?}"
    );
}

#[test]
fn action_limits() {
    assert_error(|r| r["actions"] = json!([]), "actions", "at least 1");
    let eleven: Vec<Value> = (0..11)
        .map(|_| json!({"type": "log", "message": "m"}))
        .collect();
    assert_error(|r| r["actions"] = json!(eleven), "actions", "limit of 10");
    assert_error(
        |r| r["actions"][0]["type"] = json!("email"),
        "actions[0].type",
        "unknown action type",
    );
    assert_error(
        |r| r["actions"][1]["timeout_ms"] = json!(30_001),
        "actions[1].timeout_ms",
        "between 1 and 30000",
    );
    assert_error(
        |r| r["actions"][1]["timeout_ms"] = json!(0),
        "actions[1].timeout_ms",
        "between 1 and 30000",
    );
    assert!(errors_after(|r| r["actions"][1]["timeout_ms"] = json!(30_000)).is_empty());
    assert_error(
        |r| r["actions"][1]["url"] = json!("ftp://host/x"),
        "actions[1].url",
        "http or https",
    );
    assert_error(
        |r| r["actions"][1]["url"] = json!("not a url"),
        "actions[1].url",
        "not a valid URL",
    );
    assert_error(
        |r| r["actions"][1]["url"] = json!("https://user:pw@host/x"),
        "actions[1].url",
        "credentials",
    );
    assert_error(
        |r| r["actions"][1]["method"] = json!("TRACE"),
        "actions[1].method",
        "must be one of",
    );
    assert!(errors_after(|r| r["actions"][1]["method"] = json!("put")).is_empty());
    assert_error(
        |r| r["actions"][1]["headers"] = json!({"Bad Header": "x"}),
        "actions[1].headers.Bad Header",
        "header name",
    );
    assert_error(
        |r| r["actions"][1]["headers"] = json!({"Idempotency-Key": "x"}),
        "actions[1].headers.Idempotency-Key",
        "set by the service",
    );
    assert_error(
        |r| r["actions"][1]["headers"] = json!({"X-A": "a\r\nb"}),
        "actions[1].headers.X-A",
        "line breaks",
    );
    assert_error(
        |r| r["actions"][1]["headers"] = json!({"X-A": 1}),
        "actions[1].headers.X-A",
        "string",
    );
    assert_error(
        |r| r["actions"][0]["stream"] = json!(""),
        "actions[0].stream",
        "empty",
    );
    assert_error(
        |r| r["actions"][0]["max_age_seconds"] = json!(0),
        "actions[0].max_age_seconds",
        "between 1 and 86400",
    );
    assert_error(
        |r| r["actions"][0]["max_age_seconds"] = json!(86_401),
        "actions[0].max_age_seconds",
        "between 1 and 86400",
    );
    assert!(errors_after(|r| r["actions"][0]["max_age_seconds"] = json!(86_400)).is_empty());
    assert_error(
        |r| r["actions"] = json!([{"type": "log"}]),
        "actions[0].message",
        "required",
    );
    assert_error(
        |r| r["actions"] = json!([{"type": "log", "message": "m", "level": "loud"}]),
        "actions[0].level",
        "must be one of",
    );
    assert_error(
        |r| r["actions"][0]["url"] = json!("http://x"),
        "actions[0].url",
        "not a known field",
    );
}

#[test]
fn template_syntax_is_checked_at_save() {
    assert_error(
        |r| r["actions"][0]["payload"] = json!({"a": {"b": ["{{ event.data. }}"]}}),
        "actions[0].payload.a.b[0]",
        "template syntax error",
    );
    assert_error(
        |r| r["actions"][1]["headers"] = json!({"X-A": "{% if %}"}),
        "actions[1].headers.X-A",
        "template syntax error",
    );
    assert_error(
        |r| r["actions"] = json!([{"type": "log", "message": "{{ unclosed"}]),
        "actions[0].message",
        "template syntax error",
    );
    assert_error(
        |r| r["actions"][1]["body"] = json!("{{ 1 + }}"),
        "actions[1].body",
        "template syntax error",
    );
}

#[test]
fn cooldown_and_threshold_ranges() {
    assert_error(
        |r| r["cooldown_seconds"] = json!(604_801),
        "cooldown_seconds",
        "between 0 and 604800",
    );
    assert!(errors_after(|r| r["cooldown_seconds"] = json!(604_800)).is_empty());
    assert!(errors_after(|r| r["cooldown_seconds"] = json!(0)).is_empty());
    assert_error(
        |r| r["cooldown_seconds"] = json!(1.5),
        "cooldown_seconds",
        "whole number",
    );
    assert_error(
        |r| r["cooldown_key"] = json!("user.id"),
        "cooldown_key",
        "must start with",
    );
    assert_error(
        |r| r["trigger_config"]["threshold"]["count"] = json!(0),
        "trigger_config.threshold.count",
        "between 1",
    );
    assert_error(
        |r| r["trigger_config"]["threshold"]["window_seconds"] = json!(0),
        "trigger_config.threshold.window_seconds",
        "between 1",
    );
    assert_error(
        |r| r["trigger_config"]["threshold"]["group_by"] = json!(3),
        "trigger_config.threshold.group_by",
        "path",
    );
    assert_error(
        |r| {
            r["trigger_config"]["threshold"]
                .as_object_mut()
                .map(|m| m.remove("count"));
        },
        "trigger_config.threshold.count",
        "required",
    );
}

#[test]
fn name_and_description_lengths() {
    assert!(errors_after(|r| r["name"] = json!("n".repeat(limits::MAX_NAME_CHARS))).is_empty());
    assert_error(
        |r| r["name"] = json!("n".repeat(limits::MAX_NAME_CHARS + 1)),
        "name",
        "longer than 200",
    );
    assert_error(|r| r["name"] = json!("   "), "name", "empty");
    assert_error(
        |r| r["description"] = json!("d".repeat(limits::MAX_DESCRIPTION_CHARS + 1)),
        "description",
        "longer than",
    );
    assert!(errors_after(|r| r["description"] = Value::Null).is_empty());
}

#[test]
fn the_size_limit_is_on_the_normalised_rule() {
    // Just under the limit as sent, over it once the defaults are filled in (each
    // webhook gains its method, headers and timeout): refused at save, never
    // stored to be skipped by the workers.
    let mut body = valid();
    let hook = json!({"type": "webhook", "url": "https://bot.example.com/h", "body": {"t": "x"}});
    body["actions"] = json!(vec![hook; 10]);
    let base = serde_json::to_string(&body).expect("json").len();
    let pad = limits::MAX_RULE_BYTES - base - 100;
    body["actions"][0]["body"]["t"] = json!("x".repeat(pad));
    assert!(serde_json::to_string(&body).expect("json").len() < limits::MAX_RULE_BYTES);
    let errors = parse_rule_spec(&body).expect_err("over once normalised").0;
    assert!(errors[0].message.contains("once normalised"), "{errors:?}");

    // What is accepted round-trips: its normalised form, with the read-only fields a
    // GET adds, is accepted again.
    body["actions"][0]["body"]["t"] = json!("x".repeat(pad - 1_000));
    let spec = parse_rule_spec(&body).expect("accepted");
    let mut stored = serde_json::to_value(&spec).expect("json");
    stored["id"] = json!("01a23081-14ba-7759-845e-146098964032");
    stored["version"] = json!(3);
    stored["created_at"] = json!("2026-12-01T07:28:15.546571Z");
    stored["updated_at"] = json!("2026-12-01T07:28:15.546571Z");
    assert_eq!(parse_rule_spec(&stored).expect("round trip"), spec);
}

#[test]
fn nul_characters_are_refused_at_their_path() {
    assert_error(|r| r["name"] = json!("a\u{0}b"), "name", "U+0000");
    assert_error(
        |r| r["trigger_config"]["condition"]["all"][0]["value"] = json!("x\u{0}"),
        "trigger_config.condition.all[0].value",
        "U+0000",
    );
    assert_error(
        |r| r["actions"][1]["headers"] = json!({"X-\u{0}": "v"}),
        "actions[1].headers",
        "U+0000",
    );
    assert_error(
        |r| r["cooldown_key"] = json!("data.\u{0}"),
        "cooldown_key",
        "U+0000",
    );
}

// Gaps found by `make mutants`: messages that name what was wrong, and templates in
// text places rendered as text.

#[test]
fn a_wrong_type_is_named_in_the_message() {
    assert_error(
        |b| b["name"] = json!(5),
        "name",
        "must be a string, not a number",
    );
    assert_error(
        |b| b["trigger_config"] = json!([]),
        "trigger_config",
        "must be an object, not an array",
    );
}

#[test]
fn a_whole_number_out_of_range_says_the_range() {
    assert_error(
        |b| b["cooldown_seconds"] = json!(limits::MAX_COOLDOWN_SECONDS + 1),
        "cooldown_seconds",
        "must be between 0 and 604800",
    );
    assert_error(
        |b| b["cooldown_seconds"] = json!(1.5),
        "cooldown_seconds",
        "must be a whole number between 0 and 604800",
    );
    assert_error(
        |b| b["cooldown_seconds"] = json!(-1),
        "cooldown_seconds",
        "must be a whole number between 0 and 604800",
    );
}

#[test]
fn a_template_that_does_not_compile_says_where() {
    assert_error(
        |b| b["actions"][0]["payload"]["text"] = json!("{{ event.data.amount "),
        "actions[0].payload.text",
        "(line 1)",
    );
}

#[test]
fn templates_in_text_places_render_as_text() {
    let rule = rules_core::CompiledRule::from_json(
        uuid::Uuid::nil(),
        1,
        &json!({
            "livestream_id": "0e2a9c1b-0000-4000-8000-00000000abcd", "name": "t",
            "trigger_config": {"event_types": ["donation.received"]},
            "actions": [
                {"type": "log", "message": "{{ event.data.user.name }}"},
                {"type": "log", "message": "{{ event.data.list }}"},
                {"type": "publish", "stream": "overlay:alerts",
                 "payload": {"two": "{{ event.data.user.name }}{{ event.data.amount }}",
                             "typed": "{{ event.data.amount }}"}}
            ]
        }),
    )
    .expect("valid rule");
    let event = rules_core::Event::from_value(
        &json!({"id": "5f0c1d2e-0000-4000-8000-000000000001", "type": "donation.received",
                "livestream_id": "0e2a9c1b-0000-4000-8000-00000000abcd",
                "data": {"amount": 10, "user": {"name": "Alice"}, "list": [1, 2]}}),
        None,
    )
    .expect("event");
    let rendered: Vec<Value> = rule
        .render_actions(&event)
        .into_iter()
        .map(|a| serde_json::to_value(a.expect("renders")).expect("json"))
        .collect();
    assert_eq!(rendered[0]["message"], "Alice", "{rendered:?}");
    // A list in a text place is written as JSON text.
    assert_eq!(rendered[1]["message"], "[1,2]", "{rendered:?}");
    assert_eq!(rendered[2]["payload"]["two"], "Alice10", "{rendered:?}");
    assert_eq!(rendered[2]["payload"]["typed"], 10, "{rendered:?}");
}

#[test]
fn the_depth_limit_counts_all_and_any_as_it_counts_not() {
    let mut node = json!({"field": "data.x", "op": "exists", "value": true});
    for i in 1..=limits::MAX_DEPTH {
        node = if i % 2 == 0 {
            json!({ "all": [node] })
        } else {
            json!({ "any": [node] })
        };
    }
    let errors = errors_after(|r| r["trigger_config"]["condition"] = node);
    assert!(
        errors.iter().any(|e| e.message.contains("deeper than 10")),
        "{errors:?}"
    );
}

#[test]
fn a_leaf_without_its_operator_says_so() {
    assert_error(
        |b| b["trigger_config"]["condition"] = json!({"field": "data.amount", "value": 10}),
        "trigger_config.condition.op",
        "required",
    );
}

#[test]
fn a_webhook_address_carries_no_user_name_either() {
    assert_error(
        |b| b["actions"][1]["url"] = json!("https://bot@bot.example.com/hooks"),
        "actions[1].url",
        "must not carry credentials",
    );
}

#[test]
fn a_webhook_may_have_32_headers_not_more() {
    let headers = |n: usize| -> Value {
        (0..n)
            .map(|i| (format!("X-H{i}"), json!("v")))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    assert!(errors_after(|b| b["actions"][1]["headers"] = headers(limits::MAX_HEADERS)).is_empty());
    assert_error(
        |b| b["actions"][1]["headers"] = headers(limits::MAX_HEADERS + 1),
        "actions[1].headers",
        "more than 32 headers",
    );
}

#[test]
fn a_webhook_address_without_a_host_is_refused() {
    assert_error(
        |b| b["actions"][1]["url"] = json!("http://"),
        "actions[1].url",
        "is not a valid URL: empty host",
    );
}
