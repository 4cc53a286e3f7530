//! A running `rules-worker` over a test database and test streams, with helpers to
//! add rules, send events and wait for outcomes.

use anyhow::Context as _;
use diesel_async::RunQueryDsl;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use uuid::Uuid;

use crate::{free_port, Process, RedisKeys, RedisUnderTest, TestDb};

pub const LS: &str = "0e2a9c1b-0000-4000-8000-00000000abcd";

/// A rule publishing to `out` for donations of 10 or more, with `extra` top-level keys.
pub fn publish_rule(out: &str, extra: serde_json::Value) -> serde_json::Value {
    let rule = json!({
        "name": "alert",
        "trigger_config": {"event_types": ["donation.received"],
                           "condition": {"field": "data.amount", "op": "gte", "value": 10}},
        "actions": [{"type": "publish", "stream": out,
                     "payload": {"text": "{{ event.data.user.name }} donated {{ event.data.amount }}!",
                                 "amount": "{{ event.data.amount }}"}}]
    });
    with_keys(rule, extra)
}

/// `rule` with the top-level keys of `extra` set (replacing any of the same name).
pub fn with_keys(mut rule: Value, extra: Value) -> Value {
    if let (Some(r), Value::Object(e)) = (rule.as_object_mut(), extra) {
        r.extend(e);
    }
    rule
}

/// Waits until the workers serving health on `ports` each have `n` rules in their
/// index (a rule change arrives asynchronously: poll, never sleep).
pub async fn wait_rules_loaded(ports: &[u16], n: u64, limit: Duration) -> anyhow::Result<()> {
    let client = crate::http_client();
    for port in ports {
        let url = format!("http://127.0.0.1:{port}/health/ready");
        eventually(limit, || async {
            let body: Value = client.get(&url).send().await?.json().await?;
            Ok(body["rules_loaded"].as_u64() == Some(n))
        })
        .await
        .with_context(|| format!("the worker on port {port} did not load {n} rules"))?;
    }
    Ok(())
}

pub struct Harness {
    pub db: TestDb,
    pub keys: RedisKeys,
    pub workers: Vec<Process>,
    pub http_ports: Vec<u16>,
}

impl Harness {
    /// A database, a stream, no worker yet.
    pub async fn new(label: &str) -> anyhow::Result<Self> {
        Self::on(label, RedisUnderTest::shared()).await
    }

    /// The same on the server at `url` (a test's own, for faults).
    pub async fn on_redis(label: &str, url: String) -> anyhow::Result<Self> {
        Self::on(label, RedisUnderTest::server(url)).await
    }

    async fn on(label: &str, redis: RedisUnderTest) -> anyhow::Result<Self> {
        Ok(Self {
            db: TestDb::migrated().await?,
            keys: RedisKeys::on(label, redis),
            workers: Vec::new(),
            http_ports: Vec::new(),
        })
    }

    pub fn stream(&self) -> String {
        self.keys.key("events")
    }

    pub fn dead_letter(&self) -> String {
        self.keys.key("dead")
    }

    pub fn out(&self) -> String {
        self.keys.key("out")
    }

    /// Environment of a worker on this harness, plus `extra`.
    pub fn env(&self, extra: &[(&str, String)]) -> Vec<(&'static str, String)> {
        let mut env: Vec<(&'static str, String)> = self.keys.redis.env();
        env.extend([
            ("DATABASE_URL", self.db.url.clone()),
            ("RULES__WORKER__STREAMS", self.stream()),
            ("RULES__WORKER__DEAD_LETTER_STREAM", self.dead_letter()),
            ("RULES__WORKER__BLOCK_MS", "200".into()),
            ("RULES__WEBHOOK__ALLOW_PRIVATE", "true".into()),
        ]);
        for (k, v) in extra {
            let key: &'static str = Box::leak(k.to_string().into_boxed_str());
            env.retain(|(e, _)| *e != key);
            env.push((key, v.clone()));
        }
        env
    }

    /// Starts one more worker and waits until it serves its health port.
    pub async fn start_worker(&mut self, extra: &[(&str, String)]) -> anyhow::Result<()> {
        let port = free_port()?;
        let mut env = self.env(extra);
        env.push(("RULES__WORKER__HTTP_BIND", format!("127.0.0.1:{port}")));
        if !extra.iter().any(|(k, _)| *k == "RULES__WORKER__CONSUMER") {
            env.push((
                "RULES__WORKER__CONSUMER",
                format!("w{}-{}", self.workers.len(), port),
            ));
        }
        let process = Process::start("rules-worker", &env)?;
        self.workers.push(process);
        self.http_ports.push(port);
        crate::wait_http_ok(
            &format!("http://127.0.0.1:{port}/health/ready"),
            Duration::from_secs(20),
        )
        .await
    }

    /// Waits until every worker has `n` rules in its index (a rule change arrives
    /// asynchronously: poll, never sleep).
    pub async fn wait_rules_loaded(&self, n: u64) -> anyhow::Result<()> {
        wait_rules_loaded(&self.http_ports, n, Duration::from_secs(15)).await
    }

    /// Stores a rule directly (as the API would) and returns its id. The worker picks
    /// it up through the change notification.
    pub async fn add_rule(&self, body: Value) -> anyhow::Result<Uuid> {
        insert_rule(&mut self.db.conn().await?, body).await
    }

    /// Rows of `table` (of one rule, when given) in the test database.
    pub async fn count(&self, table: &str, rule_id: Option<Uuid>) -> anyhow::Result<i64> {
        count_rows(&mut self.db.conn().await?, table, rule_id).await
    }

    /// Sends an event in the JSON form; returns its id.
    pub async fn send(&self, event_type: &str, data: Value) -> anyhow::Result<Uuid> {
        let id = Uuid::new_v4();
        self.send_with_id(id, event_type, data).await?;
        Ok(id)
    }

    pub async fn send_with_id(
        &self,
        id: Uuid,
        event_type: &str,
        data: Value,
    ) -> anyhow::Result<()> {
        let event = json!({"id": id, "type": event_type, "livestream_id": LS, "data": data});
        self.send_fields(&[("event", event.to_string())]).await
    }

    pub async fn send_fields(&self, fields: &[(&str, String)]) -> anyhow::Result<()> {
        let mut conn = self.keys.conn().await?;
        let mut cmd = redis::cmd("XADD");
        cmd.arg(self.stream()).arg("*");
        for (k, v) in fields {
            cmd.arg(*k).arg(v);
        }
        let _: String = cmd.query_async(&mut conn).await?;
        Ok(())
    }

    /// Number of executions recorded (optionally of one rule).
    pub async fn executions(
        &self,
        rule_id: Option<Uuid>,
    ) -> anyhow::Result<Vec<(Uuid, Uuid, String, Value)>> {
        use diesel::{ExpressionMethods, QueryDsl};
        use rules_store::db::schema::rule_executions as e;
        let mut conn = self.db.conn().await?;
        let mut q = e::table
            .select((e::rule_id, e::event_id, e::status, e::result))
            .into_boxed();
        if let Some(r) = rule_id {
            q = q.filter(e::rule_id.eq(r));
        }
        Ok(q.order(e::executed_at.asc()).load(&mut conn).await?)
    }

    /// Summed counters of a rule: (matched, executed, suppressed, succeeded, failed).
    pub async fn counters(&self, rule_id: Uuid) -> anyhow::Result<(i64, i64, i64, i64, i64)> {
        use diesel::{ExpressionMethods, QueryDsl};
        use rules_store::db::schema::rule_stats_minute as s;
        let mut conn = self.db.conn().await?;
        let rows: Vec<(i64, i64, i64, i64, i64)> = s::table
            .filter(s::rule_id.eq(rule_id))
            .select((
                s::matched,
                s::executed,
                s::suppressed_by_cooldown,
                s::succeeded,
                s::failed,
            ))
            .load(&mut conn)
            .await?;
        Ok(rows.into_iter().fold((0, 0, 0, 0, 0), |a, r| {
            (a.0 + r.0, a.1 + r.1, a.2 + r.2, a.3 + r.3, a.4 + r.4)
        }))
    }

    /// Entries of a stream as Redis holds them (names and values as bytes).
    pub async fn read_stream_raw(
        &self,
        stream: &str,
    ) -> anyhow::Result<Vec<rules_store::streams::StreamEntry>> {
        let mut conn = self.keys.conn().await?;
        Ok(rules_store::streams::range_all(&mut conn, stream, 100_000).await?)
    }

    /// Creates the consumer group on the input stream (as a worker would), at its
    /// end: the events sent from now on wait for a worker's first read.
    pub async fn create_group(&self) -> anyhow::Result<()> {
        let mut conn = self.keys.conn().await?;
        rules_store::streams::ensure_group(&mut conn, &self.stream(), "rule-engine", "$").await?;
        Ok(())
    }

    /// Entries of a stream: (id, fields sorted by name), as text (lossy).
    pub async fn read_stream(
        &self,
        stream: &str,
    ) -> anyhow::Result<Vec<(String, Vec<(String, String)>)>> {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        Ok(self
            .read_stream_raw(stream)
            .await?
            .into_iter()
            .map(|entry| {
                let mut fields: Vec<(String, String)> = match entry.body {
                    rules_store::streams::Body::Fields(f) => {
                        f.iter().map(|(k, v)| (text(k), text(v))).collect()
                    }
                    _ => Vec::new(),
                };
                fields.sort();
                (entry.id.to_string(), fields)
            })
            .collect())
    }

    /// The group's pending count and lag on the input stream.
    pub async fn pending_and_lag(&self) -> anyhow::Result<(usize, Option<usize>)> {
        let mut conn = self.keys.conn().await?;
        let info: redis::streams::StreamInfoGroupsReply = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(self.stream())
            .query_async(&mut conn)
            .await?;
        let g = info
            .groups
            .into_iter()
            .find(|g| g.name == "rule-engine")
            .ok_or_else(|| anyhow::anyhow!("no group"))?;
        Ok((g.pending, g.lag))
    }

    /// Runs SQL on the test database.
    pub async fn sql(&self, sql: &str) -> anyhow::Result<()> {
        let mut conn = self.db.conn().await?;
        diesel::sql_query(sql).execute(&mut conn).await?;
        Ok(())
    }
}

impl Drop for Harness {
    /// Stops the workers before the Redis keys and the database go: a worker still
    /// running would recreate a deleted stream when it finds its group gone.
    fn drop(&mut self) {
        for worker in &mut self.workers {
            let _ = worker.child.start_kill();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for worker in &mut self.workers {
            while matches!(worker.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Stores a rule (livestream [`LS`] unless the body names one) through `conn`, as the
/// API would; returns its id.
pub async fn insert_rule(
    conn: &mut diesel_async::AsyncPgConnection,
    mut body: Value,
) -> anyhow::Result<Uuid> {
    if body.get("livestream_id").is_none() {
        body["livestream_id"] = json!(LS);
    }
    let spec = rules_core::parse_rule_spec(&body).map_err(|e| anyhow::anyhow!("{e}"))?;
    let now = chrono::Utc::now();
    let rule = rules_core::Rule {
        id: Uuid::now_v7(),
        spec,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    rules_store::db::rules::insert(conn, &rules_store::db::rules::RuleRow::from_rule(&rule))
        .await?;
    Ok(rule.id)
}

/// Rows of `table` (of one rule, when given) through `conn`.
pub async fn count_rows(
    conn: &mut diesel_async::AsyncPgConnection,
    table: &str,
    rule_id: Option<Uuid>,
) -> anyhow::Result<i64> {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let row: N = diesel::sql_query(format!(
        "SELECT count(*) AS n FROM {table} WHERE $1::uuid IS NULL OR rule_id = $1"
    ))
    .bind::<diesel::sql_types::Nullable<diesel::sql_types::Uuid>, _>(rule_id)
    .get_result(conn)
    .await?;
    Ok(row.n)
}

/// Polls `check` until it returns true or `limit` passes.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let start = Instant::now();
    loop {
        if check().await? {
            return Ok(());
        }
        if start.elapsed() > limit {
            anyhow::bail!("condition not met within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
