//! One scenario's world: its own database on the run's PostgreSQL, its own stream
//! keys on the run's Redis, the release api and the workers over them, and the
//! producer that queues its events.

use anyhow::Context as _;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use redis::aio::MultiplexedConnection;
use rules_core::CompiledRule;
use rules_store::db::PgTarget;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use uuid::Uuid;

use super::Cluster;
use crate::{free_port, http_client, wait_http_ok, Process, TEST_KEY};

/// The livestream the faults are aimed at.
pub const AFFECTED: Uuid = Uuid::from_u128(0x0e2a_9c1b_0000_4000_8000_0000_0000_00a1);
/// The livestream whose latency is watched during the fault.
pub const UNAFFECTED: Uuid = Uuid::from_u128(0x0e2a_9c1b_0000_4000_8000_0000_0000_00b2);

pub const GROUP: &str = "rule-engine";

/// A worker of the scenario; `process` is `None` once it was killed or stopped.
pub struct Worker {
    pub process: Option<Process>,
    pub consumer: String,
    pub port: u16,
    /// Peak resident memory (VmHWM, KiB), read before it stopped.
    pub peak_rss_kib: Option<u64>,
}

pub struct Stage {
    pub name: String,
    pub db_url: String,
    pub redis_url: String,
    prefix: String,
    api: Process,
    api_port: u16,
    pub workers: Vec<Worker>,
    /// The rules as the reference sees them (compiled from what was created).
    pub rules: Vec<CompiledRule>,
    /// The probe's rule (on [`UNAFFECTED`]).
    pub probe_rule: Option<Uuid>,
    /// Every event the producer's `XADD` was acknowledged for, in order.
    pub sent: Vec<Uuid>,
    /// Worker settings of this scenario, beyond the common ones.
    pub worker_env: Vec<(&'static str, String)>,
    log_dir: std::path::PathBuf,
    redis: Option<MultiplexedConnection>,
}

impl Stage {
    /// A fresh database (migrated) and the api over it.
    pub async fn new(cluster: &Cluster, name: &str) -> anyhow::Result<Self> {
        let db = format!("chaos_{}", name.replace('-', "_"));
        let mut admin = AsyncPgConnection::establish(&cluster.pg.url("postgres")).await?;
        diesel::sql_query(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
            .execute(&mut admin)
            .await?;
        diesel::sql_query(format!("CREATE DATABASE {db}"))
            .execute(&mut admin)
            .await?;
        let db_url = cluster.pg.url(&db);
        rules_store::db::migrations::run_pending(&PgTarget::new(&db_url, None)?).await?;
        let log_dir = cluster.dir.join(name);
        std::fs::create_dir_all(&log_dir)?;
        let api_port = free_port()?;
        let redis_url = cluster.redis.url();
        let api = Process::start_logged(
            "rules-api",
            &[
                ("DATABASE_URL", db_url.clone()),
                ("REDIS_URL", redis_url.clone()),
                ("RULES__API__BIND", format!("127.0.0.1:{api_port}")),
                ("RULES_API_KEYS", TEST_KEY.to_owned()),
                ("RULES__WEBHOOK__ALLOW_PRIVATE", "true".into()),
            ],
            &log_dir.join("api.log"),
        )?;
        wait_http_ok(
            &format!("http://127.0.0.1:{api_port}/health/ready"),
            Duration::from_secs(30),
        )
        .await?;
        Ok(Self {
            name: name.to_owned(),
            db_url,
            redis_url,
            prefix: format!("chaos:{name}"),
            api,
            api_port,
            workers: Vec::new(),
            rules: Vec::new(),
            probe_rule: None,
            sent: Vec::new(),
            worker_env: Vec::new(),
            log_dir,
            redis: None,
        })
    }

    pub fn stream(&self) -> String {
        format!("{}:events", self.prefix)
    }

    pub fn dead_letter(&self) -> String {
        format!("{}:dead", self.prefix)
    }

    pub fn out(&self) -> String {
        format!("{}:out", self.prefix)
    }

    /// The path of this scenario's calls on the target receiver.
    pub fn target_path(&self) -> String {
        format!("/{}/a", self.name)
    }

    pub fn probe_path(&self) -> String {
        format!("/{}/probe", self.name)
    }

    /// A connection to the run's Redis, made again after it failed.
    pub async fn redis(&mut self) -> anyhow::Result<&mut MultiplexedConnection> {
        if self.redis.is_none() {
            self.redis = Some(harness_connection(&self.redis_url).await?);
        }
        self.redis.as_mut().context("no Redis connection")
    }

    /// Forgets the connection (after a Redis fault).
    pub fn reconnect(&mut self) {
        self.redis = None;
    }

    /// Creates a rule through the api (livestream [`AFFECTED`] unless the body names
    /// one) and keeps it for the reference.
    pub async fn create_rule(&mut self, mut body: Value) -> anyhow::Result<Uuid> {
        if body.get("livestream_id").is_none() {
            body["livestream_id"] = json!(AFFECTED);
        }
        let response = http_client()
            .post(self.api_url("/api/rules"))
            .bearer_auth(TEST_KEY)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let created: Value = response.json().await?;
        anyhow::ensure!(status.as_u16() == 201, "create rule: {status} {created}");
        let id: Uuid = created["id"]
            .as_str()
            .context("created rule has no id")?
            .parse()?;
        let rule = CompiledRule::from_json(id, 1, &body).map_err(|e| anyhow::anyhow!("{e}"))?;
        self.rules.push(rule);
        Ok(id)
    }

    /// Disables a rule through the api (a merge patch).
    pub async fn disable_rule(&mut self, id: Uuid) -> anyhow::Result<()> {
        let response = http_client()
            .patch(self.api_url(&format!("/api/rules/{id}")))
            .bearer_auth(TEST_KEY)
            .header("content-type", "application/merge-patch+json")
            .body(r#"{"enabled": false}"#)
            .send()
            .await?;
        let status = response.status();
        anyhow::ensure!(
            status.is_success(),
            "disable rule: {status} {}",
            response.text().await?
        );
        self.rules.retain(|r| r.id() != id);
        Ok(())
    }

    fn api_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.api_port)
    }

    /// A webhook rule calling `url` for every donation, the event id in the body.
    pub fn webhook_rule(name: &str, url: &str, extra: Value) -> Value {
        let rule = json!({
            "name": name,
            "trigger_config": {"event_types": ["donation.received"]},
            "actions": [{"type": "webhook", "url": url, "timeout_ms": 2000,
                         "body": {"event": "{{ event.id }}", "sent_ms": "{{ event.data.sent_ms }}"}}]
        });
        crate::worker::with_keys(rule, extra)
    }

    /// Starts a worker under `consumer` and waits until it is ready and has loaded
    /// the rules.
    pub async fn start_worker(&mut self, consumer: &str) -> anyhow::Result<usize> {
        let port = free_port()?;
        let mut env: Vec<(&str, String)> = vec![
            ("DATABASE_URL", self.db_url.clone()),
            ("REDIS_URL", self.redis_url.clone()),
            ("RULES__WORKER__STREAMS", self.stream()),
            ("RULES__WORKER__DEAD_LETTER_STREAM", self.dead_letter()),
            ("RULES__WORKER__CONSUMER", consumer.to_owned()),
            ("RULES__WORKER__HTTP_BIND", format!("127.0.0.1:{port}")),
            ("RULES__WORKER__BLOCK_MS", "200".into()),
            ("RULES__WORKER__BATCH_SIZE", "100".into()),
            ("RULES__WORKER__CLAIM_IDLE_MS", "2000".into()),
            ("RULES__WORKER__CLAIM_INTERVAL_MS", "500".into()),
            ("RULES__WORKER__RECONCILE_SECONDS", "5".into()),
            ("RULES__WEBHOOK__ALLOW_PRIVATE", "true".into()),
            ("RULES__WEBHOOK__BREAKER_COOLOFF_SECONDS", "2".into()),
            ("RULES__DATABASE__CONNECT_TIMEOUT_MS", "1000".into()),
            ("RULES__DATABASE__ACQUIRE_TIMEOUT_MS", "1000".into()),
            ("RULES__REDIS__CONNECT_TIMEOUT_MS", "1000".into()),
            ("RULES__REDIS__ACQUIRE_TIMEOUT_MS", "1000".into()),
        ];
        for (k, v) in &self.worker_env {
            env.retain(|(e, _)| e != k);
            env.push((k, v.clone()));
        }
        let log = self.log_dir.join(format!("worker-{consumer}.log"));
        let process = Process::start_logged("rules-worker", &env, &log)?;
        self.workers.push(Worker {
            process: Some(process),
            consumer: consumer.to_owned(),
            port,
            peak_rss_kib: None,
        });
        let ready = format!("http://127.0.0.1:{port}/health/ready");
        wait_http_ok(&ready, Duration::from_secs(30)).await?;
        let rules = self.rules.len() as u64;
        crate::worker::wait_rules_loaded(&[port], rules, Duration::from_secs(15)).await?;
        Ok(self.workers.len() - 1)
    }

    /// Waits until every running worker has `n` rules loaded.
    pub async fn wait_rules_loaded(&self, n: u64, limit: Duration) -> anyhow::Result<()> {
        let ports: Vec<u16> = self
            .workers
            .iter()
            .filter(|w| w.process.is_some())
            .map(|w| w.port)
            .collect();
        crate::worker::wait_rules_loaded(&ports, n, limit).await
    }

    /// The id of the rule named `name` (the scenario's main rule is `alert`).
    pub fn rule_named(&self, name: &str) -> anyhow::Result<Uuid> {
        self.rules
            .iter()
            .find(|r| r.rule().spec.name == name)
            .map(|r| r.id())
            .with_context(|| format!("no rule named {name}"))
    }

    /// SIGKILL to worker `i`, as a crash or an OOM kill would.
    pub async fn kill_worker(&mut self, i: usize) -> anyhow::Result<()> {
        let worker = self.workers.get_mut(i).context("no such worker")?;
        if let Some(mut process) = worker.process.take() {
            worker.peak_rss_kib = peak_rss_kib(&process);
            process.child.start_kill()?;
            process.wait(Duration::from_secs(10)).await?;
        }
        Ok(())
    }

    /// Workers that were started and have exited by themselves (none should).
    pub fn exited_workers(&mut self) -> Vec<String> {
        self.workers
            .iter_mut()
            .filter_map(|w| {
                let p = w.process.as_mut()?;
                match p.child.try_wait() {
                    Ok(Some(status)) => Some(format!("{} exited: {status}", w.consumer)),
                    _ => None,
                }
            })
            .collect()
    }

    /// Stops every worker (SIGTERM) and the api, keeping each worker's peak memory.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        for worker in &mut self.workers {
            if let Some(mut process) = worker.process.take() {
                worker.peak_rss_kib = peak_rss_kib(&process);
                process.terminate().await?;
            }
        }
        self.api.terminate().await?;
        Ok(())
    }

    /// Peak resident memory of the workers (KiB), the largest.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        self.workers
            .iter()
            .filter_map(|w| w.process.as_ref().and_then(peak_rss_kib).or(w.peak_rss_kib))
            .max()
    }

    /// The JSON envelope of a donation to `livestream`.
    pub fn donation(id: Uuid, livestream: Uuid, i: usize, user: usize) -> String {
        json!({
            "id": id, "type": "donation.received", "livestream_id": livestream,
            "data": {"amount": 10 + i, "user": {"name": format!("u{user}")},
                     "sent_ms": chrono::Utc::now().timestamp_millis()}
        })
        .to_string()
    }

    /// Queues `n` donations to the affected livestream (pipelined, 500 per round
    /// trip), each from one of `users` users; returns their ids.
    pub async fn send_backlog(&mut self, n: usize, users: usize) -> anyhow::Result<Vec<Uuid>> {
        let stream = self.stream();
        let mut ids = Vec::with_capacity(n);
        let mut i = 0;
        while i < n {
            let chunk: Vec<(Uuid, String)> = (i..n.min(i + 500))
                .map(|k| {
                    let id = Uuid::new_v4();
                    (id, Self::donation(id, AFFECTED, k, k % users.max(1)))
                })
                .collect();
            let mut pipe = redis::pipe();
            for (_, event) in &chunk {
                pipe.cmd("XADD")
                    .arg(&stream)
                    .arg("*")
                    .arg("event")
                    .arg(event)
                    .ignore();
            }
            pipe.query_async::<()>(self.redis().await?).await?;
            i += chunk.len();
            ids.extend(chunk.into_iter().map(|(id, _)| id));
        }
        self.sent.extend_from_slice(&ids);
        Ok(ids)
    }

    /// Sends one donation of `user` to the affected livestream.
    pub async fn send_one(&mut self, user: usize) -> anyhow::Result<Uuid> {
        let id = Uuid::new_v4();
        let stream = self.stream();
        let event = Self::donation(id, AFFECTED, self.sent.len(), user);
        redis::cmd("XADD")
            .arg(&stream)
            .arg("*")
            .arg("event")
            .arg(event)
            .query_async::<String>(self.redis().await?)
            .await?;
        self.sent.push(id);
        Ok(id)
    }

    /// Creates the group at the start of the stream (before a backlog is queued, as
    /// a deployed worker would have).
    pub async fn create_group(&mut self) -> anyhow::Result<()> {
        let stream = self.stream();
        rules_store::streams::ensure_group(self.redis().await?, &stream, GROUP, "0").await?;
        Ok(())
    }

    /// Decided pairs recorded so far (executions, suppressions, threshold counts),
    /// the probe's rule's apart.
    pub async fn decided(&self) -> anyhow::Result<i64> {
        #[derive(diesel::QueryableByName)]
        struct Total {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = AsyncPgConnection::establish(&self.db_url).await?;
        let total: Total = diesel::sql_query(
            "SELECT (SELECT count(*) FROM rule_executions WHERE rule_id <> $1) \
                  + (SELECT count(*) FROM rule_suppressions WHERE rule_id <> $1) \
                  + (SELECT count(*) FROM rule_threshold_counts WHERE rule_id <> $1) AS n",
        )
        .bind::<diesel::sql_types::Uuid, _>(self.probe_rule.unwrap_or_default())
        .get_result(&mut conn)
        .await?;
        Ok(total.n)
    }

    /// The status recorded for (`rule`, `event`), once the execution is recorded.
    pub async fn decided_event(&self, rule: Uuid, event: Uuid) -> anyhow::Result<Option<String>> {
        use diesel::{ExpressionMethods, OptionalExtension, QueryDsl};
        use rules_store::db::schema::rule_executions as e;
        let mut conn = AsyncPgConnection::establish(&self.db_url).await?;
        Ok(e::table
            .filter(e::rule_id.eq(rule))
            .filter(e::event_id.eq(event))
            .select(e::status)
            .first(&mut conn)
            .await
            .optional()?)
    }

    /// How many of `events` the rule `rule` executed successfully.
    pub async fn succeeded(&self, rule: Uuid, events: &[Uuid]) -> anyhow::Result<i64> {
        use diesel::{ExpressionMethods, QueryDsl};
        use rules_store::db::schema::rule_executions as e;
        let mut conn = AsyncPgConnection::establish(&self.db_url).await?;
        Ok(e::table
            .filter(e::rule_id.eq(rule))
            .filter(e::event_id.eq_any(events))
            .filter(e::status.eq("succeeded"))
            .count()
            .get_result(&mut conn)
            .await?)
    }

    /// Waits until `decided()` passes `n` (the point to strike mid-drain).
    pub async fn wait_decided(&self, n: i64, limit: Duration) -> anyhow::Result<()> {
        crate::worker::eventually(limit, || async {
            Ok(self.decided().await.unwrap_or(0) >= n)
        })
        .await
        .with_context(|| format!("{}: {n} decisions not reached", self.name))
    }

    /// Whether the group has read every entry and none is pending.
    pub async fn settled(&mut self) -> anyhow::Result<bool> {
        let stream = self.stream();
        let conn = self.redis().await?;
        let groups: redis::streams::StreamInfoGroupsReply = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&stream)
            .query_async(conn)
            .await?;
        let Some(group) = groups.groups.into_iter().find(|g| g.name == GROUP) else {
            return Ok(false);
        };
        let last: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(&stream)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(conn)
            .await?;
        let last_id = last.ids.into_iter().next().map(|e| e.id);
        Ok(group.pending == 0 && last_id.is_none_or(|id| id == group.last_delivered_id))
    }

    /// Polls until [`Self::settled`]; the time it took.
    pub async fn wait_settled(&mut self, limit: Duration) -> anyhow::Result<Duration> {
        let start = Instant::now();
        loop {
            match self.settled().await {
                Ok(true) => return Ok(start.elapsed()),
                Ok(false) => {}
                Err(_) => self.reconnect(),
            }
            anyhow::ensure!(
                start.elapsed() < limit,
                "{}: still pending or unread after {limit:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// VmHWM of a running process, KiB.
fn peak_rss_kib(process: &Process) -> Option<u64> {
    let pid = process.child.id()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The harness's own connection to a run's Redis: connecting gives up after 2 s (a
/// Redis being restarted), but a reply may take up to 30 s. redis-rs gives up on a
/// reply after 500 ms by default, which a pipeline of 500 XADDs to a Redis that
/// fsyncs every write (the runs' `appendfsync always`) can take on a loaded machine:
/// the harness then failed a run before its fault (CI, 2026-12-02: `timed out`).
pub async fn harness_connection(url: &str) -> anyhow::Result<MultiplexedConnection> {
    rules_store::redis::dedicated_connection(
        url,
        Duration::from_secs(2),
        Some(Duration::from_secs(30)),
    )
    .await
    .context("connect to Redis")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply slower than redis-rs's default 500 ms (a `DEBUG SLEEP` of the server
    /// here) still reaches the harness.
    #[tokio::test]
    async fn the_harness_waits_for_a_slow_reply() -> anyhow::Result<()> {
        let redis = crate::services::OwnRedis::start()?;
        let mut conn = harness_connection(&redis.url()).await?;
        let pause = redis.pause(0.8).await?;
        let pong: String = redis::cmd("PING").query_async(&mut conn).await?;
        assert_eq!(pong, "PONG");
        pause.await??;
        Ok(())
    }
}
