//! The committed corpus of malformed stream entries (`tests/corpus/stream-entries.jsonl`:
//! binary garbage, invalid UTF-8 in names and values, a 10 MB field, nesting 100,000
//! deep, wrong types, a key twice, the flat form with bad `data`, a duplicate event)
//! through the real worker: each one is dead-lettered with a reason or processed as
//! its line says, none is lost, nothing stays pending, and the worker lives on.

use rules_e2e::worker::{eventually, publish_rule, Harness};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// One field name or value of the corpus: text, hex bytes, or a unit repeated.
fn bytes(spec: &Value) -> anyhow::Result<Vec<u8>> {
    if let Some(text) = spec["text"].as_str() {
        return Ok(text.as_bytes().to_vec());
    }
    if let Some(hex) = spec["hex"].as_str() {
        return (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(anyhow::Error::from))
            .collect();
    }
    let unit = spec["repeat"].as_str().unwrap_or_default();
    let times = spec["times"].as_u64().unwrap_or(0) as usize;
    let mut out = spec["prefix"]
        .as_str()
        .unwrap_or_default()
        .as_bytes()
        .to_vec();
    out.extend(unit.repeat(times).as_bytes());
    out.extend(spec["suffix"].as_str().unwrap_or_default().as_bytes());
    Ok(out)
}

#[tokio::test]
async fn every_corpus_entry_is_dead_lettered_or_processed_and_none_is_lost() -> anyhow::Result<()> {
    let corpus = std::fs::read_to_string(
        rules_e2e::workspace_root().join("tests/corpus/stream-entries.jsonl"),
    )?;
    let mut h = Harness::new("corpus").await?;
    let rule = h.add_rule(publish_rule(&h.out(), json!({}))).await?;
    let mut conn = h.keys.conn().await?;
    h.create_group().await?;
    let mut expected: HashMap<String, (String, String)> = HashMap::new();
    for line in corpus.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line)?;
        let mut cmd = redis::cmd("XADD");
        cmd.arg(h.stream()).arg("*");
        for pair in case["fields"].as_array().into_iter().flatten() {
            cmd.arg(bytes(&pair[0])?).arg(bytes(&pair[1])?);
        }
        let id: String = cmd.query_async(&mut conn).await?;
        let name = case["name"].as_str().unwrap_or_default().to_owned();
        let expect = case["expect"].as_str().unwrap_or_default().to_owned();
        expected.insert(id, (name, expect));
    }
    h.start_worker(&[]).await?;
    eventually(WAIT, || async {
        Ok(h.pending_and_lag().await? == (0, Some(0)))
    })
    .await?;

    let dead = h.read_stream(&h.dead_letter()).await?;
    let mut dead_lettered: HashMap<String, String> = HashMap::new();
    for (_, fields) in &dead {
        let field = |k: &str| {
            fields
                .iter()
                .find(|(f, _)| f == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        dead_lettered.insert(field("source_id"), field("reason"));
    }
    for (id, (name, expect)) in &expected {
        let reason = dead_lettered.get(id);
        match expect.as_str() {
            "dead_letter" => assert!(
                reason.is_some_and(|r| !r.is_empty()),
                "{name}: not dead-lettered with a reason"
            ),
            _ => assert!(reason.is_none(), "{name}: dead-lettered: {reason:?}"),
        }
    }
    let wanted = expected
        .values()
        .filter(|(_, e)| e == "dead_letter")
        .count();
    assert_eq!(dead.len(), wanted, "one dead letter per unreadable entry");
    // The two valid events ran once each (the duplicate entry changed nothing).
    let executions = h.executions(Some(rule)).await?;
    let processed = expected.values().filter(|(_, e)| e == "processed").count();
    assert_eq!(executions.len(), processed, "{executions:?}");
    assert_eq!(h.read_stream(&h.out()).await?.len(), processed);
    assert!(
        h.workers[0].child.try_wait()?.is_none(),
        "the worker is still running"
    );
    Ok(())
}
