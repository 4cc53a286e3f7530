//! The Redis key scheme on a real Redis Cluster (`scripts/cluster.sh`, three
//! masters): every key of one rule, and every key of one webhook destination, hashes
//! to one slot, so the gate's script, the API's cooldown listing and clearing and
//! the destination breaker run on a cluster without a CROSSSLOT error, for rules
//! whose keys live on different masters.

use rules_core::{CompiledRule, Event};
use rules_e2e::services::OwnCluster;
use rules_store::cooldowns::{self, Clear};
use rules_store::gate::destination::{self, Outcome, Permit, Policy};
use rules_store::gate::{decide, Decision, Pair};
use rules_store::keys;
use serde_json::json;
use std::collections::HashSet;
use uuid::Uuid;

const LS: &str = "0e2a9c1b-0000-4000-8000-00000000abcd";

fn cooling_rule() -> anyhow::Result<CompiledRule> {
    let body = json!({"livestream_id": LS, "name": "cluster",
        "trigger_config": {"event_types": ["t"], "threshold": {"count": 2, "window_seconds": 60}},
        "cooldown_seconds": 60, "cooldown_key": "data.user",
        "actions": [{"type": "log", "message": "m"}]});
    Ok(CompiledRule::from_json(Uuid::new_v4(), 1, &body)?)
}

fn event(user: &str) -> anyhow::Result<Event> {
    Ok(Event::new(
        Uuid::new_v4(),
        "t",
        Uuid::parse_str(LS)?,
        chrono::Utc::now(),
        json!({"user": user}),
    ))
}

async fn slot<C: redis::aio::ConnectionLike + Send>(
    conn: &mut C,
    key: &str,
) -> anyhow::Result<i64> {
    Ok(redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query_async(conn)
        .await?)
}

async fn gate<C: redis::aio::ConnectionLike + Send>(
    conn: &mut C,
    rule: &CompiledRule,
    event: &Event,
    token: &str,
) -> anyhow::Result<Decision> {
    let pair = Pair::new(rule, event, token, event.occurred_at.timestamp_millis());
    let mut outcomes = decide(conn, &[pair], 60_000).await?;
    Ok(outcomes.remove(0)?)
}

#[tokio::test]
async fn every_key_of_a_rule_or_a_destination_is_in_one_slot_and_works_on_a_cluster(
) -> anyhow::Result<()> {
    let cluster = OwnCluster::start()?;
    let client = redis::cluster::ClusterClient::new(cluster.urls())?;
    let mut conn = client.get_async_connection().await?;

    // Rules until their keys are on every master (slots 0–5460, 5461–10922, 10923–).
    let mut rules = Vec::new();
    let mut masters = HashSet::new();
    while masters.len() < usize::from(OwnCluster::MASTERS) || rules.len() < 6 {
        let rule = cooling_rule()?;
        let id = rule.id();
        let generation = rule.threshold_generation().to_owned();
        let rule_keys = [
            keys::cooldown(id, "v:alice"),
            keys::cooldown(id, &keys::scope(&rules_core::Scope::Json("4".repeat(300)))),
            keys::cooldown_index(id),
            keys::threshold(id, &generation, "v:alice"),
            keys::threshold_state(id, &generation, "_"),
            keys::decision(id, Uuid::new_v4()),
        ];
        let mut slots = HashSet::new();
        for key in &rule_keys {
            slots.insert(slot(&mut conn, key).await?);
        }
        assert_eq!(slots.len(), 1, "{rule_keys:?} hash to {slots:?}");
        let slot = slots.into_iter().next().unwrap_or_default();
        masters.insert(slot * i64::from(OwnCluster::MASTERS) / 16_384);
        rules.push(rule);
    }

    // The gate on each rule: a threshold of two fires and starts a cooldown per user.
    for rule in &rules {
        let (a1, a2) = (event("alice")?, event("alice")?);
        assert_eq!(
            gate(&mut conn, rule, &a1, "s/1-0").await?,
            Decision::BelowThreshold { count: 1 }
        );
        assert_eq!(
            gate(&mut conn, rule, &a2, "s/2-0").await?,
            Decision::Execute
        );
        // Its redelivery gets its decision back.
        assert_eq!(
            gate(&mut conn, rule, &a2, "s/2-0").await?,
            Decision::Execute
        );
        // The API's cooldown listing and clearing.
        let now_ms = chrono::Utc::now().timestamp_millis();
        let running = cooldowns::list(&mut conn, rule.id(), 60, now_ms).await?;
        assert_eq!(running.len(), 1, "{running:?}");
        assert_eq!(cooldowns::clear(&mut conn, rule.id(), Clear::All).await?, 1);
        assert!(cooldowns::list(&mut conn, rule.id(), 60, now_ms)
            .await?
            .is_empty());
    }

    // A destination's breaker, probe and rate keys share its slot; the breaker
    // opens and reports on the cluster.
    let policy = Policy {
        failures_to_open: 2,
        cooloff_ms: 60_000,
        per_second: 100,
    };
    for host in ["hooks.example.com", "127.0.0.1:9000", "other.example.org"] {
        let mut slots = HashSet::new();
        for key in [
            keys::destination_breaker(host),
            keys::destination_probe(host),
            keys::destination_rate(host, 1_796_000_000),
        ] {
            slots.insert(slot(&mut conn, &key).await?);
        }
        assert_eq!(slots.len(), 1, "{host}: {slots:?}");
        assert_eq!(
            destination::acquire(&mut conn, host, policy).await?,
            Permit::Go
        );
        destination::record(&mut conn, host, Outcome::Failed("500"), policy).await?;
        assert!(destination::record(&mut conn, host, Outcome::Failed("500"), policy).await?);
        assert!(matches!(
            destination::acquire(&mut conn, host, policy).await?,
            Permit::Open { .. }
        ));
    }
    Ok(())
}
