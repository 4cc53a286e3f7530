//! The benchmarks that run a real worker: a database of their own (created,
//! migrated, dropped), streams of their own, the `rules-worker` binary next to this
//! one.

use anyhow::{bail, Context};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use redis::aio::MultiplexedConnection;
use rules_core::Event;
use rules_store::db::rules::{insert_many, RuleRow};
use rules_store::db::PgTarget;
use rules_store::streams;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use uuid::Uuid;

use crate::{load, rate, Source};

#[derive(clap::Args, Clone)]
pub struct WorkerArgs {
    /// PostgreSQL server; a database `rules_bench_<random>` is created on it and dropped.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    database_url: String,
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379/0")]
    redis_url: String,
    /// The worker binary; default: `rules-worker` next to this one.
    #[arg(long)]
    worker_bin: Option<PathBuf>,
    /// Extra worker settings, `KEY=VALUE` (e.g. `RULES__WORKER__BATCH_SIZE=1000`).
    #[arg(long = "worker-env")]
    worker_env: Vec<String>,
    /// Run on this existing database of the server (the one `KEEP=1 make
    /// bench-history` keeps, `rules_bench_history`, say) instead of a fresh one:
    /// migrated, the run's rules added and deleted after; the database, what it
    /// held and what the run recorded are kept (the worker's retention is set to
    /// keep every day). Its own rules are loaded too.
    #[arg(long)]
    on_database: Option<String>,
}

/// What the drain runs against beyond the workload itself.
#[derive(clap::Args, Clone)]
pub struct DrainShape {
    /// Executions written into the log before the drain (generated in PostgreSQL,
    /// over the run's rules): the drain on a grown database.
    #[arg(long, default_value_t = 0)]
    grow_executions: u64,
    /// Days the grown executions are spread over, back from now (each day its
    /// partition of the decision log): today's partition holds its share only.
    #[arg(long, default_value_t = 7)]
    grow_days: u32,
    /// Share of the events (0–1) made to fire: each livestream gets a rule matching
    /// any event with `data.bench_fire`, set on that share of events, evenly spread.
    #[arg(long)]
    fire_rate: Option<f64>,
    /// Worker processes draining the backlog together (one consumer group); a list
    /// (`1,2,4`) runs one drain per count, each on a fresh database and stream, and
    /// ends with the scale-out table.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    workers: Vec<usize>,
}

/// `retention.executions_days` of a worker on a kept database (`--on-database`):
/// a century, so that nothing it holds is dropped.
const KEEP_EVERY_DAY: u32 = 36_500;

/// The worker's retention on the bench's database: its own (made for the run,
/// dropped after), or one that is kept, whose days a worker at its default
/// retention (30 days, applied at its start) would drop.
fn retention_env(made: bool) -> Option<(&'static str, String)> {
    (!made).then(|| {
        (
            "RULES__RETENTION__EXECUTIONS_DAYS",
            KEEP_EVERY_DAY.to_string(),
        )
    })
}

struct Setup {
    admin_url: String,
    db_name: String,
    /// Made for this run (dropped at the end), or given (`--on-database`: kept).
    made: bool,
    /// The run's rules (deleted at the end from a database that is kept).
    rule_ids: Vec<Uuid>,
    db_url: String,
    redis: MultiplexedConnection,
    stream: String,
    out: String,
    dead: String,
}

impl Setup {
    async fn new(args: &WorkerArgs, rules: &[(Uuid, Value)]) -> anyhow::Result<Self> {
        let mut admin = url::Url::parse(&args.database_url).context("DATABASE_URL")?;
        admin.set_path("/postgres");
        let made = args.on_database.is_none();
        let db_name = args
            .on_database
            .clone()
            .unwrap_or_else(|| format!("rules_bench_{}", Uuid::new_v4().simple()));
        let mut db = admin.clone();
        db.set_path(&format!("/{db_name}"));
        if made {
            let mut conn = AsyncPgConnection::establish(admin.as_str())
                .await
                .context("connect to PostgreSQL")?;
            diesel::sql_query(format!("CREATE DATABASE \"{db_name}\""))
                .execute(&mut conn)
                .await?;
        }
        rules_store::db::migrations::run_pending(&PgTarget::new(db.as_str(), None)?).await?;
        let prefix = format!("bench:{}", Uuid::new_v4().simple());
        let out = format!("{prefix}:out");
        let now = chrono::Utc::now();
        // Fresh ids per run: Redis keeps claims and cooldowns keyed by rule id for a
        // while, and a second run must not inherit the first one's.
        let rows: Vec<RuleRow> = rules
            .iter()
            .map(|(_, body)| (Uuid::now_v7(), body))
            .filter_map(|(id, body)| {
                let mut body = body.clone();
                // Every rule publishes to the bench's own stream, with the event's time.
                body["actions"] = json!([{"type": "publish", "stream": out,
                    "payload": {"text": "{{ event.data.user.name }} triggered {{ rule.name }}", "at": "{{ event.occurred_at }}"}}]);
                let spec = rules_core::parse_rule_spec(&body).ok()?;
                Some(RuleRow::from_rule(&rules_core::Rule { id, spec, version: 1, created_at: now, updated_at: now }))
            })
            .collect();
        let mut bench = AsyncPgConnection::establish(db.as_str()).await?;
        let started = Instant::now();
        insert_many(&mut bench, &rows).await?;
        eprintln!(
            "seeded {} rules in {:.1}s",
            rows.len(),
            started.elapsed().as_secs_f64()
        );
        let redis = redis::Client::open(args.redis_url.as_str())?
            .get_multiplexed_async_connection()
            .await?;
        let setup = Self {
            admin_url: admin.to_string(),
            db_name,
            made,
            rule_ids: rows.iter().map(|r| r.id).collect(),
            db_url: db.to_string(),
            redis,
            stream: format!("{prefix}:events"),
            out,
            dead: format!("{prefix}:dead"),
        };
        let mut r = setup.redis.clone();
        streams::ensure_group(&mut r, &setup.stream, "rule-engine", "$").await?;
        Ok(setup)
    }

    /// Stores one more rule, as given (its actions kept).
    async fn add_rule(&mut self, body: Value) -> anyhow::Result<()> {
        let spec = rules_core::parse_rule_spec(&body).map_err(|e| anyhow::anyhow!("{e}"))?;
        let now = chrono::Utc::now();
        let row = RuleRow::from_rule(&rules_core::Rule {
            id: Uuid::now_v7(),
            spec,
            version: 1,
            created_at: now,
            updated_at: now,
        });
        let mut conn = AsyncPgConnection::establish(&self.db_url).await?;
        insert_many(&mut conn, std::slice::from_ref(&row)).await?;
        self.rule_ids.push(row.id);
        Ok(())
    }

    /// Writes `events` (`streams::add_all`); the id Redis gave each, in order.
    async fn xadd(&self, events: &[Event]) -> anyhow::Result<Vec<streams::EntryId>> {
        let mut conn = self.redis.clone();
        Ok(streams::add_all(&mut conn, &self.stream, &as_entries(events)?).await?)
    }

    fn start_worker(&self, args: &WorkerArgs) -> anyhow::Result<Child> {
        Ok(self.start_worker_on_port(args)?.0)
    }

    /// Starts the worker; returns it and its HTTP port (health, `/metrics`).
    fn start_worker_on_port(&self, args: &WorkerArgs) -> anyhow::Result<(Child, u16)> {
        let bin = match &args.worker_bin {
            Some(b) => b.clone(),
            None => std::env::current_exe()?.with_file_name("rules-worker"),
        };
        if !bin.is_file() {
            bail!("{} not found: build it (cargo build --release -p rules-worker) or pass --worker-bin", bin.display());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut cmd = Command::new(bin);
        cmd.env("DATABASE_URL", &self.db_url)
            .env("REDIS_URL", &args.redis_url)
            .env("RULES__WORKER__STREAMS", &self.stream)
            .env("RULES__WORKER__DEAD_LETTER_STREAM", &self.dead)
            .env("RULES__WORKER__HTTP_BIND", format!("127.0.0.1:{port}"))
            .env("RULES__LOG__FILTER", "warn")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if let Some((key, value)) = retention_env(self.made) {
            cmd.env(key, value);
        }
        for kv in &args.worker_env {
            let (k, v) = kv.split_once('=').context("--worker-env takes KEY=VALUE")?;
            cmd.env(k, v);
        }
        Ok((cmd.spawn()?, port))
    }

    /// (lag, pending, entries read) of the group on the bench's stream.
    async fn progress(&self) -> anyhow::Result<(usize, usize, usize)> {
        group_progress(&mut self.redis.clone(), &self.stream).await
    }

    /// Executions recorded at or after `since` (today's partition, on a kept log).
    async fn executions(&self, since: chrono::DateTime<chrono::Utc>) -> anyhow::Result<i64> {
        self.scalar(&format!(
            "SELECT count(*) AS n FROM rule_executions WHERE executed_at >= '{}'",
            since.to_rfc3339()
        ))
        .await
    }

    /// The server's WAL position in bytes (`pg_current_wal_lsn`): two readings give
    /// what was written to the log between them, by every database of the server.
    async fn wal_bytes(&self) -> anyhow::Result<i64> {
        self.scalar("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::int8 AS n")
            .await
    }

    /// The bigint `n` of a one-row query on the bench's database.
    async fn scalar(&self, sql: &str) -> anyhow::Result<i64> {
        scalar(&self.db_url, sql).await
    }

    async fn teardown(self) -> anyhow::Result<()> {
        let mut r = self.redis.clone();
        let _: () = redis::cmd("DEL")
            .arg(&self.stream)
            .arg(&self.out)
            .arg(&self.dead)
            .query_async(&mut r)
            .await?;
        self.forget_gate_state(&mut r).await?;
        if !self.made {
            let mut conn = AsyncPgConnection::establish(&self.db_url).await?;
            diesel::sql_query("DELETE FROM rules WHERE id = ANY($1)")
                .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(&self.rule_ids)
                .execute(&mut conn)
                .await?;
            return Ok(());
        }
        let mut conn = AsyncPgConnection::establish(&self.admin_url).await?;
        diesel::sql_query(format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.db_name
        ))
        .execute(&mut conn)
        .await?;
        Ok(())
    }
}

/// The bigint `n` of a one-row query on the database of `url`.
async fn scalar(url: &str, sql: &str) -> anyhow::Result<i64> {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = AsyncPgConnection::establish(url).await?;
    Ok(diesel::sql_query(sql).get_result::<N>(&mut conn).await?.n)
}

/// Adds a rule per livestream matching any event with `data.bench_fire`, and sets it
/// on `rate` of the events, evenly spread.
fn make_fire(rules: &mut Vec<(Uuid, Value)>, events: &mut [Event], rate: f64) {
    let livestreams: std::collections::BTreeSet<String> = rules
        .iter()
        .filter_map(|(_, r)| r["livestream_id"].as_str().map(str::to_owned))
        .collect();
    for ls in livestreams {
        rules.push((
            Uuid::new_v4(),
            json!({"livestream_id": ls, "name": "bench fire",
                   "trigger_config": {"event_types": ["*"],
                                      "condition": {"field": "data.bench_fire", "op": "eq", "value": true}},
                   "actions": [{"type": "log", "message": "fire"}]}),
        ));
    }
    for (i, event) in events.iter_mut().enumerate() {
        let fires = (i as f64 * rate).floor() != ((i + 1) as f64 * rate).floor();
        if fires {
            let mut data = event.data().to_value();
            data["bench_fire"] = json!(true);
            *event = Event::new(
                event.id,
                event.event_type(),
                event.livestream_id,
                event.occurred_at,
                data,
            );
        }
    }
}

impl Setup {
    /// Writes `n` executions of the run's rules into the log (in PostgreSQL, a
    /// million per statement), as a database that has been running for a while
    /// holds; then VACUUM ANALYZE, as autovacuum would have, and a CHECKPOINT, so
    /// the drain measured next does not pay for the growth (its hint bits, its
    /// visibility map, its dirty pages) as a settled database would not.
    async fn grow_executions(&self, n: u64, days: u32) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut conn = AsyncPgConnection::establish(&self.db_url).await?;
        // The grown rows span the last `days` days: their days' partitions first
        // (made as of the day before the first, up to tomorrow; nothing dropped).
        let days = i32::try_from(days.max(1))?;
        diesel::sql_query(
            "SELECT count(*) FROM rules_maintain_log($1 + 30, $1 + 2, current_date - $1 - 1)",
        )
        .bind::<diesel::sql_types::Integer, _>(days)
        .execute(&mut conn)
        .await?;
        let mut left = n;
        while left > 0 {
            let chunk = left.min(1_000_000);
            diesel::sql_query(
                "WITH r AS (SELECT array_agg(id) AS ids, array_agg(livestream_id) AS ls, \
                                   count(*)::int AS n FROM rules), \
                 grown AS ( \
                   SELECT gen_random_uuid() AS id, r.ids[1 + g % r.n] AS rule_id, \
                          gen_random_uuid() AS event_id, r.ls[1 + g % r.n] AS livestream_id, \
                          t.at AS executed_at, 'succeeded' AS status, 3 AS duration_ms, \
                          '{\"actions\": []}'::jsonb AS result, \
                          (t.at AT TIME ZONE 'UTC')::date AS event_day \
                   FROM generate_series(1, $1) AS g, r, \
                        LATERAL (SELECT now() - (g % ($2 * 86400)) * interval '1 second' AS at) AS t \
                 ), keys AS ( \
                   INSERT INTO rule_execution_keys (rule_id, event_id, event_day, execution_id) \
                   SELECT rule_id, event_id, event_day, id FROM grown \
                 ) \
                 INSERT INTO rule_executions \
                   (id, rule_id, event_id, livestream_id, executed_at, status, duration_ms, result, \
                    event_day) \
                 SELECT * FROM grown",
            )
            .bind::<diesel::sql_types::Integer, _>(i32::try_from(chunk)?)
            .bind::<diesel::sql_types::Integer, _>(days)
            .execute(&mut conn)
            .await?;
            left -= chunk;
        }
        diesel::sql_query("VACUUM (ANALYZE) rule_executions, rule_execution_keys")
            .execute(&mut conn)
            .await?;
        if let Err(e) = diesel::sql_query("CHECKPOINT").execute(&mut conn).await {
            // Superusers and pg_checkpoint only: the drain is then measured as is.
            eprintln!("no CHECKPOINT after the growth ({e})");
        }
        eprintln!(
            "grew the execution log by {n} rows over {days} days in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// Deletes the gate's keys of this run's rules (`re:{<rule id>}:…`: decisions,
    /// cooldowns, thresholds): they would otherwise stay in the shared Redis for an
    /// hour, millions of them after a few runs.
    async fn forget_gate_state(
        &self,
        r: &mut redis::aio::MultiplexedConnection,
    ) -> anyhow::Result<()> {
        // The run's own rules only: a kept database's rules are not the run's.
        let ids: std::collections::HashSet<String> =
            self.rule_ids.iter().map(Uuid::to_string).collect();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg("re:{*")
                .arg("COUNT")
                .arg(10_000)
                .query_async(r)
                .await?;
            let ours: Vec<&String> = keys
                .iter()
                .filter(|k| k.get(4..40).is_some_and(|id| ids.contains(id)))
                .collect();
            if !ours.is_empty() {
                let _: () = redis::cmd("UNLINK").arg(ours).query_async(r).await?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }
}

async fn stop(mut child: Child) -> anyhow::Result<()> {
    if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
        // A syscall, not the `kill` program (absent on minimal systems).
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
    Ok(())
}

/// What one drain measured.
struct Drained {
    workers: usize,
    events_per_second: f64,
    cpu: Option<crate::cpu::PerEvent>,
}

pub async fn drain(source: &Source, args: &WorkerArgs, shape: &DrainShape) -> anyhow::Result<()> {
    let (mut rules, mut events) = load(source)?;
    if let Some(rate) = shape.fire_rate {
        anyhow::ensure!(
            (0.0..=1.0).contains(&rate),
            "--fire-rate is a share, 0 to 1"
        );
        make_fire(&mut rules, &mut events, rate);
    }
    anyhow::ensure!(
        !shape.workers.is_empty() && shape.workers.iter().all(|n| *n > 0),
        "--workers takes counts of at least 1"
    );
    let mut results = Vec::with_capacity(shape.workers.len());
    for &workers in &shape.workers {
        if shape.workers.len() > 1 {
            println!("--- {workers} worker(s)");
        }
        results.push(drain_with(&rules, &events, args, shape, workers).await?);
    }
    if results.len() > 1 {
        print_scale_out(&results);
    }
    Ok(())
}

/// One drain of `events` by `workers` worker processes, on a fresh database and stream.
async fn drain_with(
    rules: &[(Uuid, Value)],
    events: &[Event],
    args: &WorkerArgs,
    shape: &DrainShape,
    workers: usize,
) -> anyhow::Result<Drained> {
    let setup = Setup::new(args, rules).await?;
    if shape.grow_executions > 0 {
        setup
            .grow_executions(shape.grow_executions, shape.grow_days)
            .await?;
    }
    // What the run records is what was executed after this (a kept database, or
    // the grown executions, hold older rows).
    let recorded_since = chrono::Utc::now();
    let started = Instant::now();
    setup.xadd(events).await?;
    eprintln!(
        "backlog of {} events written in {:.1}s",
        events.len(),
        started.elapsed().as_secs_f64()
    );
    let mut children = Vec::with_capacity(workers);
    let mut ports = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (child, port) = setup.start_worker_on_port(args)?;
        children.push(child);
        ports.push(port);
    }
    let pids: Vec<Option<u32>> = children.iter().map(Child::id).collect();
    let spawned = Instant::now();
    let mut first_read: Option<Instant> = None;
    let mut redis = setup.redis.clone();
    let redis_pid = crate::cpu::redis_pid(&mut redis).await;
    let mut cpu_before = None;
    let mut wal_before = None;
    let waited: anyhow::Result<()> = async {
        loop {
            let (lag, pending, read) = setup.progress().await?;
            if first_read.is_none() && read > 0 {
                first_read = Some(Instant::now());
                cpu_before = Some(crate::cpu::sample(&pids, redis_pid));
                wal_before = setup.wal_bytes().await.ok();
            }
            if read >= events.len() && lag == 0 && pending == 0 {
                return Ok(());
            }
            exited(&mut children)?;
            if spawned.elapsed() > Duration::from_secs(600) {
                bail!("not drained after 10 minutes (lag {lag}, pending {pending})");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    .await;
    if let Err(e) = waited {
        // The database and streams are the run's own: gone with it, as after a drain.
        for child in children {
            let _ = stop(child).await;
        }
        setup.teardown().await?;
        return Err(e);
    }
    let done = Instant::now();
    let cpu_after = crate::cpu::sample(&pids, redis_pid);
    let from_first = done - first_read.unwrap_or(spawned);
    let executions = setup.executions(recorded_since).await?;
    let events_per_second = rate(events.len(), from_first);
    println!("drained {} events in {:.2}s: {:.0} events/s (from the first read; {:.2}s from process start)",
        events.len(), from_first.as_secs_f64(), events_per_second, (done - spawned).as_secs_f64());
    println!(
        "executions recorded: {executions} ({:.1}% of events fired)",
        executions as f64 * 100.0 / events.len().max(1) as f64
    );
    let cpu = cpu_before.map(|before| crate::cpu::per_event(before, cpu_after, events.len()));
    if let Some(cpu) = &cpu {
        println!("{cpu}");
    }
    if let (Some(before), Ok(after)) = (wal_before, setup.wal_bytes().await) {
        let bytes = (after - before).max(0) as f64;
        println!(
            "PostgreSQL WAL written: {:.1} MiB, {:.0} bytes per event, {:.0} per execution",
            bytes / (1 << 20) as f64,
            bytes / events.len().max(1) as f64,
            bytes / executions.max(1) as f64
        );
    }
    match stage_times(&ports).await {
        Ok(line) => println!("{line}"),
        Err(e) => eprintln!("batch stage times unavailable: {e:#}"),
    }
    for child in children {
        stop(child).await?;
    }
    setup.teardown().await?;
    Ok(Drained {
        workers,
        events_per_second,
        cpu,
    })
}

/// Fails when a worker has exited: one that cannot start (a setting it refuses, say,
/// which it printed) or that died would otherwise leave the drain waiting out its
/// ten minutes.
fn exited(children: &mut [Child]) -> anyhow::Result<()> {
    for child in children {
        if let Some(status) = child.try_wait()? {
            bail!("a worker exited before the backlog was drained ({status}); its output is above");
        }
    }
    Ok(())
}

/// The scale-out table: per worker count (repeats allowed: `1,2,4,1,2,4`), the
/// (lower) median run's events/s and CPU, against one worker's.
fn print_scale_out(results: &[Drained]) {
    let mut counts: Vec<usize> = results.iter().map(|r| r.workers).collect();
    counts.sort_unstable();
    counts.dedup();
    let median = |workers: usize| -> Option<(&Drained, Vec<f64>)> {
        let mut runs: Vec<&Drained> = results.iter().filter(|r| r.workers == workers).collect();
        runs.sort_by(|a, b| a.events_per_second.total_cmp(&b.events_per_second));
        let all = runs.iter().map(|r| r.events_per_second).collect();
        // The lower median: with two runs, the slower one.
        runs.get(runs.len().saturating_sub(1) / 2)
            .map(|m| (*m, all))
    };
    let one = median(1).map(|(m, _)| m.events_per_second);
    println!(
        "workers | events/s (lower median) | × one worker | CPU µs/event: workers, Redis, PostgreSQL | machine idle | runs"
    );
    for workers in counts {
        let Some((m, all)) = median(workers) else {
            continue;
        };
        let speedup = one.map_or_else(
            || "-".to_owned(),
            |o| format!("{:.2}", m.events_per_second / o.max(1e-9)),
        );
        let (cpu, idle) = m.cpu.as_ref().map_or_else(
            || ("-".to_owned(), "-".to_owned()),
            |c| {
                (
                    format!(
                        "{:.1}, {:.1}, {:.1}",
                        c.worker_us, c.redis_us, c.postgres_us
                    ),
                    format!("{:.0}%", c.idle_percent),
                )
            },
        );
        let runs: Vec<String> = all.iter().map(|r| format!("{r:.0}")).collect();
        println!(
            "{workers:>7} | {:>17.0} | {speedup:>12} | {cpu} | {idle} | {}",
            m.events_per_second,
            runs.join(", ")
        );
    }
}

/// The worker's stages as batches went through them (`batch_stage_seconds` from its
/// `/metrics`): see [`stage_summary`].
async fn stage_times(ports: &[u16]) -> anyhow::Result<String> {
    // reqwest is built without a TLS provider of its own (the workspace picks ring).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut texts = Vec::with_capacity(ports.len());
    for port in ports {
        texts.push(
            reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
                .await?
                .error_for_status()?
                .text()
                .await?,
        );
    }
    stage_summary(&texts)
}

/// The stages of a batch, in the order it goes through them.
const STAGES: [&str; 8] = [
    "parse",
    "match",
    "skip_recorded",
    "admit",
    "gate",
    "dispatch",
    "record",
    "ack",
];

/// The bound of the histograms' bucket past which a batch counts as slow in a stage
/// (seconds, as the worker's `/metrics` writes it).
const SLOW_IN_A_STAGE: &str = "0.0025";

/// From the worker's `/metrics` texts, summed over the workers: the mean time per
/// batch in each stage, then how many batches took longer than 2.5 ms in it. The
/// second line tells a stage that is slow by itself (its mean) from one that only
/// holds the batches caught in a stall of the process (a stage of microseconds with
/// batches past 2.5 ms: page faults, a thread waiting for a core).
fn stage_summary(texts: &[String]) -> anyhow::Result<String> {
    let value = |series: &str| -> Option<f64> {
        texts
            .iter()
            .map(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix(series))
                    .and_then(|v| v.trim().parse::<f64>().ok())
            })
            .sum()
    };
    let mut means = Vec::new();
    let mut slow = Vec::new();
    for stage in STAGES {
        let (Some(sum), Some(count)) = (
            value(&format!("batch_stage_seconds_sum{{stage=\"{stage}\"}} ")),
            value(&format!("batch_stage_seconds_count{{stage=\"{stage}\"}} ")),
        ) else {
            continue;
        };
        means.push(format!(
            "{stage} {:.2} ms ×{count}",
            sum * 1000.0 / count.max(1.0)
        ));
        if let Some(within) = value(&format!(
            "batch_stage_seconds_bucket{{stage=\"{stage}\",le=\"{SLOW_IN_A_STAGE}\"}} "
        )) {
            slow.push(format!("{stage} {}", (count - within).max(0.0)));
        }
    }
    anyhow::ensure!(!means.is_empty(), "no batch_stage_seconds in /metrics");
    let mut summary = format!("mean per batch (×times): {}", means.join(", "));
    if !slow.is_empty() {
        summary.push_str(&format!(
            "\nbatches over 2.5 ms in a stage: {}",
            slow.join(", ")
        ));
    }
    Ok(summary)
}

/// `event` again under a new id, for `livestream`, at `at`.
fn fresh_copy(event: &Event, livestream: Uuid, at: chrono::DateTime<chrono::Utc>) -> Event {
    event.copy_as(Uuid::new_v4(), livestream, at)
}

/// A slow destination for `latency`: a share of the events go to a livestream of
/// its own whose rule calls a webhook answering after `delay`.
pub struct Slow {
    pub delay: Duration,
    pub share_percent: u64,
}

/// What `latency` sends: a steady rate for a while, optionally a slow destination
/// for a share of it and a backlog draining beside it.
pub struct Load {
    pub per_second: u64,
    pub seconds: u64,
    pub slow: Option<Slow>,
    /// Events written to a second stream of the worker's just before the pacing.
    pub backlog: usize,
    /// How often the producer writes (each write the interval's events).
    pub tick: Duration,
}

pub async fn latency(source: &Source, args: &WorkerArgs, load_spec: &Load) -> anyhow::Result<()> {
    let Load {
        per_second,
        seconds,
        ref slow,
        backlog,
        tick: tick_every,
    } = *load_spec;
    let (rules, events) = load(source)?;
    if events.is_empty() {
        bail!("no events");
    }
    let mut setup = Setup::new(args, &rules).await?;
    // The backlog's stream, read by the same worker; its group exists before the
    // entries are written so the worker reads them all.
    let backlog_stream = format!("{}:backlog", setup.stream);
    let mut worker_args = args.clone();
    if backlog > 0 {
        let mut r = setup.redis.clone();
        streams::ensure_group(&mut r, &backlog_stream, "rule-engine", "$").await?;
        worker_args.worker_env.push(format!(
            "RULES__WORKER__STREAMS={},{backlog_stream}",
            setup.stream
        ));
    }
    let slow_livestream = Uuid::new_v4();
    if let Some(slow) = slow {
        let port = crate::slow::start(slow.delay).await?;
        setup
            .add_rule(json!({
                "livestream_id": slow_livestream, "name": "slow destination",
                "trigger_config": {"event_types": ["*"]},
                "actions": [{"type": "webhook", "url": format!("http://127.0.0.1:{port}/hook"),
                             "timeout_ms": 30000}]
            }))
            .await?;
        // Loopback is the slow destination's address (the old name works for older workers).
        worker_args
            .worker_env
            .push("RULES__WORKER__WEBHOOK_ALLOW_PRIVATE=true".into());
        eprintln!(
            "slow destination: {} ms per call, {}% of the events",
            slow.delay.as_millis(),
            slow.share_percent
        );
    }
    let (worker, port) = setup.start_worker_on_port(&worker_args)?;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Reader: every published output carries its event's time. It blocks, so it
    // gets a connection of its own (a shared one would hold the producer's XADDs).
    // Its replies (up to 10,000 entries) may take longer than redis-rs's default
    // 500 ms on a loaded machine; a read that failed would be read again later and
    // its entries counted late.
    let mut reader = rules_store::redis::dedicated_connection(
        &args.redis_url,
        Duration::from_secs(1),
        Some(Duration::from_secs(30)),
    )
    .await?;
    let out = setup.out.clone();
    // The backlog's events, whose outputs are not the paced events' latency.
    let backlog_events: std::collections::HashSet<Uuid> = if backlog > 0 {
        let now = chrono::Utc::now();
        let backlog_batch: Vec<Event> = (0..backlog)
            .map(|i| {
                let e = &events[i % events.len()];
                fresh_copy(e, e.livestream_id, now)
            })
            .collect();
        let ids = backlog_batch.iter().map(|e| e.id).collect();
        let started = Instant::now();
        let mut r = setup.redis.clone();
        streams::add_all(&mut r, &backlog_stream, &as_entries(&backlog_batch)?).await?;
        eprintln!(
            "backlog of {backlog} events written to a second stream in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        ids
    } else {
        std::collections::HashSet::new()
    };
    let collect = tokio::spawn(async move {
        let mut latencies: Vec<u64> = Vec::new();
        // Each output's event and the millisecond of its id (Redis's clock).
        let mut published: Vec<(Uuid, u64)> = Vec::new();
        let mut failed_reads = 0u64;
        let mut last = streams::ReadAfter::Now;
        let deadline = Instant::now() + Duration::from_secs(seconds + 5);
        while Instant::now() < deadline {
            let entries = match streams::read(&mut reader, &out, last, 10_000, 200).await {
                Ok(entries) => entries,
                Err(e) => {
                    failed_reads += 1;
                    eprintln!("reading the outputs failed (read again): {e}");
                    Vec::new()
                }
            };
            {
                let now = chrono::Utc::now();
                for entry in entries {
                    last = streams::ReadAfter::Id(entry.id);
                    let field = |name: &[u8]| match &entry.body {
                        streams::Body::Fields(fields) => fields
                            .iter()
                            .find(|(k, _)| k == name)
                            .map(|(_, v)| v.as_slice()),
                        _ => None,
                    };
                    let Some(Ok(event_id)) = field(b"event_id").map(Uuid::try_parse_ascii) else {
                        continue;
                    };
                    if backlog_events.contains(&event_id) {
                        continue;
                    }
                    published.push((event_id, entry.id.ms));
                    let payload = field(b"payload").unwrap_or_default();
                    let at = serde_json::from_slice::<Value>(payload).ok().and_then(|p| {
                        p["at"]
                            .as_str()
                            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                    });
                    if let Some(at) = at {
                        latencies.push(
                            (now - at.with_timezone(&chrono::Utc))
                                .num_microseconds()
                                .unwrap_or(0)
                                .max(0) as u64,
                        );
                    }
                }
            }
        }
        (latencies, failed_reads, published)
    });

    // The CPU per paced event, without a backlog (beside one it is mostly the backlog's).
    let pids = [worker.id()];
    let redis_pid = crate::cpu::redis_pid(&mut setup.redis.clone()).await;
    let cpu_before = (backlog == 0).then(|| crate::cpu::sample(&pids, redis_pid));
    // Producer: a steady rate, in ticks, each event stamped when its tick starts.
    let per_tick = ((per_second as u128 * tick_every.as_millis()) / 1000).max(1) as usize;
    let mut tick = tokio::time::interval(tick_every);
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut sent = 0usize;
    let mut i = 0usize;
    // How long each tick's write took: the part of the latency that is the producer's.
    let mut writes: Vec<u64> = Vec::new();
    // Each paced event's id and the millisecond of its entry's id.
    let mut written: std::collections::HashMap<Uuid, u64> = std::collections::HashMap::new();
    while Instant::now() < end {
        tick.tick().await;
        let now = chrono::Utc::now();
        let batch: Vec<Event> = (0..per_tick)
            .map(|_| {
                let e = &events[i % events.len()];
                i += 1;
                let to_slow = slow
                    .as_ref()
                    .is_some_and(|s| (i as u64 % 100) < s.share_percent);
                let livestream = if to_slow {
                    slow_livestream
                } else {
                    e.livestream_id
                };
                fresh_copy(e, livestream, now)
            })
            .collect();
        let writing = Instant::now();
        let ids = setup.xadd(&batch).await?;
        writes.push(writing.elapsed().as_micros() as u64);
        for (event, id) in batch.iter().zip(ids) {
            written.insert(event.id, id.ms);
        }
        sent += batch.len();
    }
    // The outputs of the last events are a few milliseconds behind the producer's end.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let cpu = cpu_before
        .map(|before| crate::cpu::per_event(before, crate::cpu::sample(&pids, redis_pid), sent));
    let (mut latencies, failed_reads, published) = collect.await?;
    // Entry → published entry by their ids: Redis's clock at both ends, so neither
    // the producer's write nor this reader's is in it, to the millisecond (each id
    // is its millisecond's floor: ±1 ms).
    let times = entry_to_output(&published, &written);
    let mut in_redis: Vec<u64> = times.iter().map(|(_, took)| took * 1000).collect();
    in_redis.sort_unstable();
    let first_written = written.values().min().copied().unwrap_or(0);
    let stalls = stalls(&times, first_written, STALL_MS);
    if failed_reads > 0 {
        println!("{failed_reads} reads of the outputs failed and were read again (their entries count late)");
    }
    latencies.sort_unstable();
    writes.sort_unstable();
    let pct = |p: f64| percentile_ms(&latencies, p);
    println!(
        "sent {sent} events at {per_second}/s for {seconds}s; {} executions observed",
        latencies.len()
    );
    println!(
        "event → published action: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "entry → published entry, by their ids' milliseconds (Redis's clock; ±1 ms): p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        percentile_ms(&in_redis, 0.5),
        percentile_ms(&in_redis, 0.9),
        percentile_ms(&in_redis, 0.99),
        percentile_ms(&in_redis, 1.0)
    );
    if !stalls.is_empty() {
        let shown: Vec<String> = stalls
            .iter()
            .map(|s| {
                format!(
                    "+{:.2} s: {} ms ({} events)",
                    s.at_ms as f64 / 1000.0,
                    s.worst_ms,
                    s.events
                )
            })
            .collect();
        println!(
            "stalls (entries written within {STALL_GAP_MS} ms of each other whose outputs took over {STALL_MS} ms, by when the first was written): {}",
            shown.join(", ")
        );
    }
    println!(
        "the producer's write of a tick ({per_tick} events, stamped before it): p50 {:.1} ms, p99 {:.1} ms",
        percentile_ms(&writes, 0.5),
        percentile_ms(&writes, 0.99)
    );
    if let Some(cpu) = &cpu {
        println!("{cpu}");
    }
    if backlog > 0 {
        match group_progress(&mut setup.redis.clone(), &backlog_stream).await {
            Ok((left, _, _)) => println!(
                "backlog: {} of {backlog} events read by the end of the run",
                backlog.saturating_sub(left)
            ),
            Err(e) => eprintln!("backlog progress unavailable: {e:#}"),
        }
    }
    match stage_times(&[port]).await {
        Ok(line) => println!("{line}"),
        Err(e) => eprintln!("batch stage times unavailable: {e:#}"),
    }
    stop(worker).await?;
    let mut r = setup.redis.clone();
    let _: () = redis::cmd("DEL")
        .arg(&backlog_stream)
        .query_async(&mut r)
        .await?;
    setup.teardown().await
}

/// Entry → published latency (Redis's clock) above which an output counts as stalled.
const STALL_MS: u64 = 10;
/// Stalled entries written this close together are one stall.
const STALL_GAP_MS: u64 = 50;

/// One stretch of stalled outputs: when its first entry was written (from the
/// run's first entry), its worst entry → published time and how many it held.
struct Stall {
    at_ms: u64,
    worst_ms: u64,
    events: usize,
}

/// Each paced output's entry: when it was written and how long it took to its
/// output, in milliseconds by Redis's clock (both entries' ids).
fn entry_to_output(
    published: &[(Uuid, u64)],
    written: &std::collections::HashMap<Uuid, u64>,
) -> Vec<(u64, u64)> {
    published
        .iter()
        .filter_map(|(event, out_ms)| {
            let in_ms = *written.get(event)?;
            Some((in_ms, out_ms.saturating_sub(in_ms)))
        })
        .collect()
}

/// The stretches in which entries took over `over_ms` from their write to their
/// output (`times`, from [`entry_to_output`]), dated from `start`: when they
/// happen (every few seconds, say) points at what causes them.
fn stalls(times: &[(u64, u64)], start: u64, over_ms: u64) -> Vec<Stall> {
    let mut slow: Vec<(u64, u64)> = times
        .iter()
        .filter(|(_, took)| *took > over_ms)
        .map(|(at, took)| (at.saturating_sub(start), *took))
        .collect();
    slow.sort_unstable();
    let mut stalls: Vec<Stall> = Vec::new();
    let mut last_at = 0;
    for (at, took) in slow {
        match stalls.last_mut() {
            Some(stall) if at - last_at <= STALL_GAP_MS => {
                stall.worst_ms = stall.worst_ms.max(took);
                stall.events += 1;
            }
            _ => stalls.push(Stall {
                at_ms: at,
                worst_ms: took,
                events: 1,
            }),
        }
        last_at = at;
    }
    stalls
}

/// The `p` quantile (0–1) of sorted microseconds, in milliseconds.
fn percentile_ms(sorted_us: &[u64], p: f64) -> f64 {
    sorted_us
        .get(((sorted_us.len() as f64 * p) as usize).min(sorted_us.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0) as f64
        / 1000.0
}

/// (lag, pending, entries read) of the consumer group on `stream`.
async fn group_progress(
    conn: &mut MultiplexedConnection,
    stream: &str,
) -> anyhow::Result<(usize, usize, usize)> {
    let info: redis::streams::StreamInfoGroupsReply = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(stream)
        .query_async(conn)
        .await?;
    let group = info
        .groups
        .into_iter()
        .next()
        .context("no consumer group")?;
    Ok((
        group.lag.unwrap_or(0),
        group.pending,
        group.entries_read.unwrap_or(0),
    ))
}

pub async fn rss(source: &Source, args: &WorkerArgs) -> anyhow::Result<()> {
    let (rules, _) = load(source)?;
    let setup = Setup::new(args, &rules).await?;
    let worker = setup.start_worker(args)?;
    let pid = worker.id().context("worker pid")?;
    // Ready once it has joined the group and loaded the rules; then a little traffic.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    println!(
        "{} rules loaded: peak RSS {:.1} MB, current RSS {:.1} MB",
        rules.len(),
        field("VmHWM:") as f64 / 1024.0,
        field("VmRSS:") as f64 / 1024.0
    );
    stop(worker).await?;
    setup.teardown().await
}

/// Events as stream entries of the JSON form (one `event` field).
fn as_entries(events: &[Event]) -> anyhow::Result<Vec<streams::Fields>> {
    events
        .iter()
        .map(|e| Ok(vec![(b"event".to_vec(), serde_json::to_vec(e)?)]))
        .collect()
}

/// Writes the events to `stream` (pipelined) and prints the busiest livestream.
pub async fn fill(source: &Source, redis_url: &str, stream: &str) -> anyhow::Result<()> {
    let (_, events) = load(source)?;
    let mut conn = redis::Client::open(redis_url)?
        .get_multiplexed_async_connection()
        .await?;
    streams::add_all(&mut conn, stream, &as_entries(&events)?).await?;
    let mut counts = std::collections::HashMap::new();
    for e in &events {
        *counts.entry(e.livestream_id).or_insert(0usize) += 1;
    }
    let (busiest, n) = counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .unwrap_or_default();
    println!(
        "{} events written to {stream}; busiest livestream {busiest} ({n} events)",
        events.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bench's databases on the test server.
    async fn bench_databases(admin_url: &str) -> anyhow::Result<i64> {
        scalar(
            admin_url,
            "SELECT count(*) AS n FROM pg_database WHERE datname LIKE 'rules\\_bench\\_%'",
        )
        .await
    }

    /// A worker that exits at once (as one does on a setting it refuses) fails the
    /// drain at once, not after its ten minutes, and the run's database is dropped.
    #[tokio::test]
    async fn a_drain_whose_worker_exits_fails_at_once_and_cleans_up() -> anyhow::Result<()> {
        let args = WorkerArgs {
            database_url: std::env::var("TEST_DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
            redis_url: std::env::var("TEST_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into()),
            worker_bin: Some(PathBuf::from("/bin/false")),
            worker_env: Vec::new(),
            on_database: None,
        };
        let source = Source {
            rules: None,
            events: None,
            rule_count: 10,
            livestreams: 2,
            event_count: 20,
            seed: 7,
        };
        let shape = DrainShape {
            grow_executions: 0,
            grow_days: 1,
            fire_rate: None,
            workers: vec![1],
        };
        let before = bench_databases(&args.database_url).await?;
        let failed = tokio::time::timeout(Duration::from_secs(120), drain(&source, &args, &shape))
            .await
            .context("the drain waited on a worker that had exited")?;
        let error = format!("{:#}", failed.expect_err("the worker exited"));
        assert!(error.contains("a worker exited"), "{error}");
        assert_eq!(
            bench_databases(&args.database_url).await?,
            before,
            "its database is dropped"
        );
        Ok(())
    }

    #[test]
    fn stage_times_sum_the_workers_and_count_the_slow_batches() {
        let worker = |parse_sum: f64, fast: u64| {
            format!(
                "batch_stage_seconds_bucket{{stage=\"parse\",le=\"0.001\"}} {fast}\n\
                 batch_stage_seconds_bucket{{stage=\"parse\",le=\"0.0025\"}} {fast}\n\
                 batch_stage_seconds_bucket{{stage=\"parse\",le=\"+Inf\"}} 10\n\
                 batch_stage_seconds_sum{{stage=\"parse\"}} {parse_sum}\n\
                 batch_stage_seconds_count{{stage=\"parse\"}} 10\n"
            )
        };
        let summary = stage_summary(&[worker(0.01, 9), worker(0.03, 7)]).expect("a summary");
        assert_eq!(
            summary,
            "mean per batch (×times): parse 2.00 ms ×20\n\
             batches over 2.5 ms in a stage: parse 4"
        );
        assert!(stage_summary(&["other_metric 1\n".to_owned()]).is_err());
    }

    #[test]
    fn stalls_group_slow_outputs_written_close_together() {
        let id = Uuid::from_u128;
        let written: std::collections::HashMap<Uuid, u64> = [
            (id(1), 1_000),
            (id(2), 1_010),
            (id(3), 1_040),
            (id(4), 1_080),
            (id(5), 3_000),
            (id(6), 3_001),
        ]
        .into();
        // Each output's event and the millisecond it was published.
        let published: Vec<(Uuid, u64)> = vec![
            (id(1), 1_030), // 30 ms
            (id(2), 1_012), // fast: not a stall, yet it does not split one
            (id(3), 1_055), // 15 ms, 40 ms after a
            (id(4), 1_200), // 120 ms, 40 ms after c
            (id(5), 3_004), // fast
            (id(6), 3_020), // 19 ms, a stall of its own
            (id(99), 9_999),
        ];
        let found: Vec<(u64, u64, usize)> =
            stalls(&entry_to_output(&published, &written), 1_000, 10)
                .iter()
                .map(|s| (s.at_ms, s.worst_ms, s.events))
                .collect();
        assert_eq!(found, vec![(0, 120, 3), (2_001, 19, 1)]);
        let nothing_written = entry_to_output(&published, &std::collections::HashMap::new());
        assert!(stalls(&nothing_written, 0, 10).is_empty());
    }

    #[test]
    fn a_worker_on_a_kept_database_keeps_every_day_of_it() {
        assert_eq!(retention_env(true), None);
        let (key, value) = retention_env(false).expect("a retention for a kept database");
        let vars = [("DATABASE_URL", "postgres://x/y"), (key, value.as_str())]
            .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let settings = rules_store::Settings::load_from(&vars).expect("the worker accepts it");
        // The 90 days of issue 17's log, and years more.
        assert!(settings.retention.executions_days >= 3650);
    }
}
