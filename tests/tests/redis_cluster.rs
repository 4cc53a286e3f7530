//! The Redis key scheme on a real Redis Cluster (`scripts/cluster.sh`, three
//! masters): every key of one rule, and every key of one webhook destination, hashes
//! to one slot, so the gate's script, the API's cooldown listing and clearing and
//! the destination breaker run on a cluster without a CROSSSLOT error, for rules
//! whose keys live on different masters.

use anyhow::Context as _;
use redis::cluster_async::ClusterConnection;
use rules_core::shard::{shard_of, shard_stream};
use rules_core::{CompiledRule, Event};
use rules_e2e::services::OwnCluster;
use rules_e2e::worker::{count_rows, eventually, insert_rule, publish_rule, wait_rules_loaded};
use rules_e2e::{api_env, free_port, unique_prefix, wait_http_ok, Process, TestDb, TEST_KEY};
use rules_store::config::RedisSettings;
use rules_store::cooldowns::{self, Clear};
use rules_store::gate::destination::{self, Outcome, Permit, Policy};
use rules_store::gate::{decide, Decision, Pair};
use rules_store::keys;
use rules_store::redis::{build_pool, key_slot};
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;
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

/// A cluster, a database, three input shards and six livestreams, each with a rule
/// publishing donations of 10 or more to `out` (with `extra` top-level keys).
struct ShardedSetup {
    cluster: OwnCluster,
    db: TestDb,
    prefix: String,
    shards: Vec<String>,
    out: String,
    livestreams: Vec<Uuid>,
    rule_ids: Vec<Uuid>,
}

impl ShardedSetup {
    async fn new(
        cluster: OwnCluster,
        label: &str,
        extra: serde_json::Value,
    ) -> anyhow::Result<Self> {
        let db = TestDb::migrated().await?;
        let prefix = unique_prefix(label);
        let shards = (0..3)
            .map(|i| shard_stream(&format!("{prefix}:events"), i))
            .collect();
        let out = format!("{prefix}:out");
        let livestreams: Vec<Uuid> = (0..6).map(|_| Uuid::new_v4()).collect();
        let mut rule_ids = Vec::new();
        for ls in &livestreams {
            let mut keys = extra.clone();
            keys["livestream_id"] = json!(ls);
            let body = publish_rule(&out, keys);
            rule_ids.push(insert_rule(&mut db.conn().await?, body).await?);
        }
        Ok(Self {
            cluster,
            db,
            prefix,
            shards,
            out,
            livestreams,
            rule_ids,
        })
    }
}

/// A worker on `cluster` reading `shards`, health on `port`; entries it leaves
/// idle 2 s are claimed again.
fn worker_env(
    cluster: &OwnCluster,
    db: &TestDb,
    prefix: &str,
    shards: &[String],
    port: u16,
) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", db.url.clone()),
        ("REDIS_URL", cluster.urls().join(",")),
        ("RULES__REDIS__CLUSTER", "true".into()),
        ("RULES__WORKER__STREAMS", shards.join(",")),
        (
            "RULES__WORKER__DEAD_LETTER_STREAM",
            format!("{prefix}:dead"),
        ),
        ("RULES__WORKER__BLOCK_MS", "200".into()),
        ("RULES__WORKER__CLAIM_IDLE_MS", "2000".into()),
        ("RULES__WORKER__HTTP_BIND", format!("127.0.0.1:{port}")),
        ("RULES__WORKER__CONSUMER", format!("cluster-worker-{port}")),
    ]
}

/// Entries read and not acknowledged, over every shard.
async fn pending(conn: &ClusterConnection, shards: &[String]) -> anyhow::Result<i64> {
    let mut pending = 0;
    for stream in shards {
        let summary: (i64, redis::Value, redis::Value, redis::Value) = redis::cmd("XPENDING")
            .arg(stream)
            .arg("rule-engine")
            .query_async(&mut conn.clone())
            .await?;
        pending += summary.0;
    }
    Ok(pending)
}

/// Rule i with event i, delivered as entry token i.
fn pairs<'a>(
    rules: &'a [CompiledRule],
    events: &'a [Event],
    tokens: &'a [String],
) -> Vec<Pair<'a>> {
    rules
        .iter()
        .zip(events)
        .zip(tokens)
        .map(|((r, e), t)| Pair::new(r, e, t, e.occurred_at.timestamp_millis()))
        .collect()
}

fn cluster_settings(cluster: &OwnCluster) -> RedisSettings {
    RedisSettings {
        url: cluster.urls().join(","),
        cluster: true,
        pool_size: 2,
        acquire_timeout_ms: 5_000,
        connect_timeout_ms: 5_000,
        response_timeout_ms: 5_000,
    }
}

/// The gate decides a batch's pairs in one pipeline, and a batch holds rules whose
/// keys are on different masters. redis-rs's cluster connection refuses such a
/// pipeline (CROSSSLOT), so the worker could not gate a batch on a cluster; the
/// service's own connection sends it as one pipeline per slot and puts the replies
/// back in order.
#[tokio::test]
async fn a_batch_of_rules_on_every_master_is_gated_in_one_pipeline() -> anyhow::Result<()> {
    let cluster = OwnCluster::start()?;
    let pool = build_pool(&cluster_settings(&cluster))?;
    let mut conn = pool.get().await?;

    let mut rules = Vec::new();
    let mut masters = HashSet::new();
    while masters.len() < usize::from(OwnCluster::MASTERS) || rules.len() < 12 {
        let rule = cooling_rule()?;
        let key = keys::cooldown_index(rule.id());
        // The slot the service computes is the one the cluster computes.
        let slot = slot(&mut conn, &key).await?;
        assert_eq!(i64::from(key_slot(key.as_bytes())), slot, "{key}");
        masters.insert(slot * i64::from(OwnCluster::MASTERS) / 16_384);
        rules.push(rule);
    }
    let round = |n: usize| -> anyhow::Result<(Vec<Event>, Vec<String>)> {
        let events = rules
            .iter()
            .map(|_| event("alice"))
            .collect::<Result<_, _>>()?;
        let tokens = (0..rules.len()).map(|i| format!("s/{n}{i}-0")).collect();
        Ok((events, tokens))
    };
    let (events, tokens) = round(1)?;
    let first = pairs(&rules, &events, &tokens);
    // What the cluster client alone does with it.
    let mut raw = redis::cluster::ClusterClient::new(cluster.urls())?
        .get_async_connection()
        .await?;
    let refused = decide(&mut raw, &first, 60_000).await;
    assert!(
        matches!(&refused, Err(e) if e.to_string().to_lowercase().contains("slot")),
        "{:?}",
        refused.map(|r| r.len())
    );

    let decided = decide(&mut conn, &first, 60_000).await?;
    assert_eq!(decided.len(), rules.len());
    for outcome in decided {
        assert_eq!(outcome?, Decision::BelowThreshold { count: 1 });
    }
    let (events, tokens) = round(2)?;
    for outcome in decide(&mut conn, &pairs(&rules, &events, &tokens), 60_000).await? {
        assert_eq!(outcome?, Decision::Execute);
    }
    Ok(())
}

/// A worker on a cluster reads three shards of the input (`<base>:{0}` … `{2}`,
/// each on the node serving its slot), gates rules whose keys are spread over the
/// masters, publishes, records each execution once and acknowledges everything.
#[tokio::test]
async fn a_worker_on_a_cluster_drains_sharded_streams_exactly_once() -> anyhow::Result<()> {
    let ShardedSetup {
        cluster,
        db,
        prefix,
        shards,
        out,
        livestreams,
        rule_ids,
    } = ShardedSetup::new(
        OwnCluster::start()?,
        "cluster",
        json!({"cooldown_seconds": 60, "cooldown_key": "data.user.name"}),
    )
    .await?;

    let port = free_port()?;
    let env = worker_env(&cluster, &db, &prefix, &shards, port);
    let _worker = Process::start("rules-worker", &env)?;
    wait_http_ok(
        &format!("http://127.0.0.1:{port}/health/ready"),
        Duration::from_secs(20),
    )
    .await?;
    wait_rules_loaded(&[port], 6, Duration::from_secs(15)).await?;

    let mut conn = redis::cluster::ClusterClient::new(cluster.urls())?
        .get_async_connection()
        .await?;
    let mut sent = 0;
    for ls in &livestreams {
        let stream = &shards[shard_of(*ls, 3) as usize];
        let duplicate = Uuid::new_v4();
        // alice twice (the second cooled down), bob once, and one entry twice.
        for (id, user) in [
            (Uuid::new_v4(), "alice"),
            (Uuid::new_v4(), "alice"),
            (duplicate, "bob"),
            (duplicate, "bob"),
        ] {
            let event = json!({"id": id, "type": "donation.received", "livestream_id": ls,
                               "data": {"amount": 20, "user": {"name": user}}});
            let _: String = redis::cmd("XADD")
                .arg(stream)
                .arg("*")
                .arg("event")
                .arg(event.to_string())
                .query_async(&mut conn)
                .await?;
            sent += 1;
        }
    }
    assert_eq!(sent, 24);

    let executed = || async { count_rows(&mut db.conn().await?, "rule_executions", None).await };
    eventually(Duration::from_secs(20), || async {
        Ok(executed().await? == 12)
    })
    .await?;
    // Everything read is acknowledged, on every shard.
    eventually(Duration::from_secs(20), || async {
        Ok(pending(&conn, &shards).await? == 0)
    })
    .await?;
    assert_eq!(executed().await?, 12, "alice and bob once per livestream");
    let published: usize = redis::cmd("XLEN").arg(&out).query_async(&mut conn).await?;
    assert_eq!(published, 12);
    let suppressed = count_rows(&mut db.conn().await?, "rule_suppressions", None).await?;
    assert_eq!(suppressed, 6, "alice's second donation, per livestream");

    // The API on the same cluster: a backtest reads every shard; a rule's cooldowns
    // are listed and cleared.
    let api_port = free_port()?;
    let mut api = Process::start(
        "rules-api",
        &api_env(
            &db.url,
            api_port,
            true,
            &[
                ("REDIS_URL", cluster.urls().join(",")),
                ("RULES__REDIS__CLUSTER", "true".into()),
                ("RULES__WORKER__STREAMS", shards.join(",")),
            ],
        ),
    )?;
    let base = format!("http://127.0.0.1:{api_port}/api/rules");
    wait_http_ok(
        &format!("http://127.0.0.1:{api_port}/health/ready"),
        Duration::from_secs(20),
    )
    .await?;
    let client = rules_e2e::http_client();
    let bt: serde_json::Value = client
        .post(format!("{base}/backtest"))
        .bearer_auth(TEST_KEY)
        .json(&json!({"rule_id": rule_ids[0]}))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(bt["scanned"], 24, "every shard read: {bt}");
    assert_eq!(bt["events"], 4, "{bt}");
    let cooldowns = format!("{base}/{}/cooldowns", rule_ids[0]);
    let listed: serde_json::Value = client
        .get(&cooldowns)
        .bearer_auth(TEST_KEY)
        .send()
        .await?
        .json()
        .await?;
    let mut keys: Vec<String> = listed["cooldowns"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["key"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    keys.sort();
    assert_eq!(keys, ["alice", "bob"], "{listed}");
    let cleared = client
        .delete(&cooldowns)
        .bearer_auth(TEST_KEY)
        .send()
        .await?;
    assert_eq!(cleared.status(), 204);
    let listed: serde_json::Value = client
        .get(&cooldowns)
        .bearer_auth(TEST_KEY)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(listed["cooldowns"], json!([]), "{listed}");
    assert!(api.terminate().await?.success());
    Ok(())
}

/// `per_livestream` donations of each livestream of `setup` in its shard, and the
/// group on each shard from its start, so a worker reads the whole backlog; returns
/// how many entries there are.
async fn load_backlog(
    conn: &mut ClusterConnection,
    setup: &ShardedSetup,
    per_livestream: usize,
) -> anyhow::Result<i64> {
    for ls in &setup.livestreams {
        let stream = &setup.shards[shard_of(*ls, 3) as usize];
        let entries: Vec<Vec<(Vec<u8>, Vec<u8>)>> = (0..per_livestream)
            .map(|_| {
                let event = json!({"id": Uuid::new_v4(), "type": "donation.received",
                    "livestream_id": ls, "data": {"amount": 20, "user": {"name": "a"}}});
                vec![(b"event".to_vec(), event.to_string().into_bytes())]
            })
            .collect();
        rules_store::streams::add_all(conn, stream, &entries).await?;
    }
    for stream in &setup.shards {
        rules_store::streams::ensure_group(conn, stream, "rule-engine", "0").await?;
    }
    Ok((per_livestream * setup.livestreams.len()) as i64)
}

/// A drain of `setup` under way: a backlog of 2,000 events per livestream and a
/// worker started on it; returns a cluster connection, the number of events and
/// the worker. The worker is paced (20 entries a read, 60 in flight): unpaced, a
/// fast machine drained the 12,000 before the fault the test is about. Its output
/// goes to a file in the cluster's directory: a pipe nobody reads fills with the
/// warnings of a fault and then blocks the worker's logging, and the worker with it.
async fn start_drain(setup: &ShardedSetup) -> anyhow::Result<(ClusterConnection, i64, Process)> {
    let cluster = &setup.cluster;
    let mut conn = redis::cluster::ClusterClient::new(cluster.urls())?
        .get_async_connection()
        .await?;
    let total = load_backlog(&mut conn, setup, 2_000).await?;
    let mut env = worker_env(
        cluster,
        &setup.db,
        &setup.prefix,
        &setup.shards,
        free_port()?,
    );
    env.extend([
        ("RULES__WORKER__BATCH_SIZE", "20".to_owned()),
        ("RULES__WORKER__MAX_IN_FLIGHT", "60".to_owned()),
    ]);
    let worker = Process::start_logged("rules-worker", &env, &cluster.dir().join("worker.log"))?;
    Ok((conn, total, worker))
}

/// Executions recorded so far.
async fn executed(db: &TestDb) -> anyhow::Result<i64> {
    count_rows(&mut db.conn().await?, "rule_executions", None).await
}

/// The drain ends with every one of `total` events executed once, counted once in
/// the counters, and nothing pending on any shard.
async fn drained_exactly_once(
    setup: &ShardedSetup,
    conn: &ClusterConnection,
    total: i64,
) -> anyhow::Result<()> {
    let db = &setup.db;
    eventually(Duration::from_secs(90), || async {
        Ok(executed(db).await? >= total)
    })
    .await?;
    eventually(Duration::from_secs(30), || async {
        Ok(pending(conn, &setup.shards).await? == 0)
    })
    .await?;
    assert_eq!(executed(db).await?, total, "each event once");
    #[derive(diesel::QueryableByName)]
    struct Sum {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    use diesel_async::RunQueryDsl;
    let counted: Sum =
        diesel::sql_query("SELECT coalesce(sum(executed), 0)::bigint AS n FROM rule_stats_minute")
            .get_result(&mut db.conn().await?)
            .await?;
    assert_eq!(counted.n, total, "the counters count each execution once");
    Ok(())
}

/// A master fails over while a worker drains a backlog: the worker follows the
/// cluster to the new master, and every event is executed exactly once with
/// nothing left pending.
#[tokio::test]
async fn a_failover_during_a_drain_loses_nothing_and_repeats_nothing() -> anyhow::Result<()> {
    let setup =
        ShardedSetup::new(OwnCluster::start_with_replicas(1)?, "failover", json!({})).await?;
    let cluster = &setup.cluster;
    let (conn, total, _worker) = start_drain(&setup).await?;
    eventually(Duration::from_secs(30), || async {
        Ok(executed(&setup.db).await? > 0)
    })
    .await?;
    let new_master = cluster.fail_over_master_of(&setup.shards[0]).await?;
    let at_failover = executed(&setup.db).await?;
    assert!(
        at_failover < total,
        "the drain was over before the failover ({at_failover} of {total})"
    );
    // The replica becomes the master of the shard's slot.
    eventually(Duration::from_secs(20), || async {
        let mut node = redis::Client::open(format!("redis://127.0.0.1:{new_master}"))?
            .get_multiplexed_async_connection()
            .await?;
        let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut node).await?;
        Ok(matches!(role.into_iter().next(), Some(redis::Value::BulkString(r)) if r == b"master"))
    })
    .await?;
    drained_exactly_once(&setup, &conn, total).await
}

/// A master is killed while a worker drains a backlog (its replica had every
/// entry: the backlog was written before): the cluster promotes the replica after
/// the node timeout, the worker follows, and what the dead master had not copied
/// yet (acknowledgements, deliveries, gate keys) is redone without a second
/// execution: every event is executed exactly once, nothing left pending.
#[tokio::test]
async fn a_master_killed_during_a_drain_loses_nothing_and_repeats_nothing() -> anyhow::Result<()> {
    let setup = ShardedSetup::new(OwnCluster::start_with_replicas(1)?, "killed", json!({})).await?;
    let cluster = &setup.cluster;
    let (conn, total, _worker) = start_drain(&setup).await?;
    eventually(Duration::from_secs(30), || async {
        Ok(executed(&setup.db).await? > 0)
    })
    .await?;
    let replica = cluster.kill_master_of(&setup.shards[0]).await?;
    let at_kill = executed(&setup.db).await?;
    assert!(
        at_kill < total,
        "the drain was over before the kill ({at_kill} of {total})"
    );
    eventually(Duration::from_secs(30), || async {
        Ok(cluster.master_port_of(&setup.shards[0]).await.ok() == Some(replica))
    })
    .await
    .context("the replica was not promoted")?;
    drained_exactly_once(&setup, &conn, total).await
}

/// Two slots move to another master while a worker drains a backlog: the slot of
/// a shard of the input (the stream, its group and its pending entries move in one
/// `MIGRATE`) and the slot of a rule's keys (its decisions of (rule, event), which
/// move a few at a time, so the gate meets the slot half moved). The worker follows
/// the redirections, and every event is executed exactly once with nothing left
/// pending.
#[tokio::test]
async fn a_slot_migration_during_a_drain_loses_nothing_and_repeats_nothing() -> anyhow::Result<()> {
    let setup = ShardedSetup::new(OwnCluster::start()?, "migration", json!({})).await?;
    let cluster = &setup.cluster;
    let (conn, total, _worker) = start_drain(&setup).await?;
    let rule = setup.rule_ids[0];
    let rule_key = keys::cooldown_index(rule);
    let stream = &setup.shards[shard_of(setup.livestreams[0], 3) as usize];
    eventually(Duration::from_secs(30), || async {
        Ok(count_rows(&mut setup.db.conn().await?, "rule_executions", Some(rule)).await? > 100)
    })
    .await?;
    let mut moved = Vec::new();
    for key in [rule_key.as_str(), stream.as_str()] {
        let migration = cluster
            .migrate_slot_of(key, 20, Duration::from_millis(10))
            .await?;
        assert_ne!(migration.from, migration.to);
        assert_eq!(cluster.master_port_of(key).await?, migration.to, "{key}");
        moved.push(migration.keys);
    }
    // The rule's decisions moved in many batches; the shard is one key.
    assert!(moved[0] > 100 && moved[1] >= 1, "{moved:?}");
    let at_migration = executed(&setup.db).await?;
    assert!(
        at_migration < total,
        "the drain was over before the migrations ended ({at_migration} of {total})"
    );
    drained_exactly_once(&setup, &conn, total).await
}

/// A master of a cluster without replicas is killed: a command to its slot, on a
/// connection made as the service makes them, fails (measured: 3–12 s, the cluster
/// client's own retries), so the service's loops log it and try again with a fresh
/// view; it never waits for ever on a slot nobody serves.
#[tokio::test]
async fn a_command_to_a_dead_master_fails_rather_than_waiting_for_ever() -> anyhow::Result<()> {
    let cluster = OwnCluster::start()?;
    let redis = rules_e2e::RedisUnderTest {
        url: cluster.urls().join(","),
        cluster: true,
    };
    let mut conn = redis.conn().await?;
    let key = format!("{}:probe", unique_prefix("dead"));
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(1)
        .query_async(&mut conn)
        .await?;
    cluster.kill_master_serving(&key).await?;
    let answer = tokio::time::timeout(
        Duration::from_secs(60),
        redis::cmd("GET")
            .arg(&key)
            .query_async::<Option<i64>>(&mut conn),
    )
    .await
    .context("a command to the dead master was still being retried after a minute")?;
    assert!(answer.is_err(), "{answer:?}");
    Ok(())
}
