//! The scenarios: each sets up its rules and traffic, strikes once mid-drain, and
//! hands back its row.

use anyhow::Context as _;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use super::probe::{self, Probe};
use super::report::{Allowances, Row};
use super::stage::{Stage, GROUP, UNAFFECTED};
use super::{verdict, Cluster};
use crate::receiver::Behaviour;

type Outcome<'a> = Pin<Box<dyn Future<Output = anyhow::Result<Row>> + 'a>>;

/// A scenario: its name, whether CI runs it, and what it does.
pub struct Scenario {
    pub name: &'static str,
    pub in_ci: bool,
    pub run: for<'a> fn(&'a mut Cluster) -> Outcome<'a>,
}

/// Every scenario, in the order they run.
pub fn all() -> Vec<Scenario> {
    macro_rules! s {
        ($name:literal, $ci:literal, $f:ident) => {
            Scenario {
                name: $name,
                in_ci: $ci,
                run: |c| Box::pin($f(c, $name)),
            }
        };
    }
    vec![
        s!("worker-kill-with-replica", true, worker_kill_with_replica),
        s!(
            "worker-kill-replaced-later",
            false,
            worker_kill_replaced_later
        ),
        s!("worker-kill-same-name", true, worker_kill_same_name),
        s!(
            "kill-during-slow-cooldown-action",
            true,
            kill_during_slow_cooldown
        ),
        s!(
            "kill-during-slow-threshold-action",
            false,
            kill_during_slow_threshold
        ),
        s!("postgres-crash-restart", true, postgres_crash_restart),
        s!("postgres-stopped", false, postgres_stopped),
        s!(
            "postgres-connections-terminated",
            false,
            postgres_terminated
        ),
        s!("redis-shutdown", true, redis_shutdown),
        s!("redis-kill-9", false, redis_kill),
        s!("redis-restart-empty", true, redis_restart_empty),
        s!("redis-older-snapshot", false, redis_older_snapshot),
        s!("redis-group-destroyed", false, redis_group_destroyed),
        s!("receiver-hangs", false, receiver_hangs),
        s!("receiver-answers-500", true, receiver_fails),
        s!("receiver-resets-connections", true, receiver_resets),
        s!("receiver-slow", false, receiver_slow),
        s!("burst-before-workers", false, burst),
        s!("poison-entry", true, poison),
        s!("harness-notices-a-lost-decision", true, harness_self_check),
    ]
}

/// A scenario under way: the stage, the probe, the fault's times.
struct Run {
    stage: Stage,
    probe: Option<Probe>,
    fault: String,
    started: Instant,
    fault_from_ms: i64,
    fault_end: Option<Instant>,
    /// For a strike mid-drain: decisions recorded when it struck, and the backlog.
    strike: Option<(i64, usize)>,
    /// Events the main rule must have executed successfully (sent after a
    /// destination recovered).
    must_succeed: Vec<uuid::Uuid>,
    notes: Vec<String>,
}

impl Run {
    /// The stage with the probe's rule and `rules` on the affected livestream, the
    /// group created, the probe running.
    async fn begin(
        cluster: &Cluster,
        name: &str,
        rules: Vec<serde_json::Value>,
    ) -> anyhow::Result<Self> {
        reset_redis(cluster).await?;
        cluster.target.set_behaviour(Behaviour::Healthy);
        let mut stage = Stage::new(cluster, name).await?;
        let probe_rule = stage
            .create_rule(Stage::webhook_rule(
                "probe",
                &cluster.probe.url(&stage.probe_path()),
                json!({"livestream_id": UNAFFECTED}),
            ))
            .await?;
        stage.probe_rule = Some(probe_rule);
        for rule in rules {
            stage.create_rule(rule).await?;
        }
        stage.create_group().await?;
        let probe = Some(Probe::start(&stage));
        Ok(Self {
            stage,
            probe,
            fault: String::new(),
            started: Instant::now(),
            fault_from_ms: 0,
            fault_end: None,
            strike: None,
            must_succeed: Vec::new(),
            notes: Vec::new(),
        })
    }

    /// The main rule: a webhook to the target for every donation.
    fn main_rule(cluster: &Cluster, name: &str) -> serde_json::Value {
        Stage::webhook_rule(
            "alert",
            &cluster.target.url(&format!("/{name}/a")),
            json!({}),
        )
    }

    fn fault_starts(&mut self, what: &str) {
        self.fault = what.to_owned();
        self.fault_from_ms = chrono::Utc::now().timestamp_millis();
    }

    /// Remembers how far the drain of `backlog` events was when the fault struck,
    /// so the row can check that it struck inside it.
    async fn strikes_mid_drain(&mut self, backlog: usize) -> anyhow::Result<()> {
        self.strike = Some((self.stage.decided().await?, backlog));
        Ok(())
    }

    fn fault_ends(&mut self) {
        self.fault_end = Some(Instant::now());
    }

    /// Waits until settled, compares, judges.
    async fn finish(self, cluster: &Cluster, allow: Allowances) -> anyhow::Result<Row> {
        self.finish_then(cluster, allow, false).await
    }

    /// [`Self::finish`]; with `rule_changes`, once the figures are taken, also checks
    /// that rules created and disabled now take effect ([`rules_change_after`]).
    async fn finish_then(
        mut self,
        cluster: &Cluster,
        allow: Allowances,
        rule_changes: bool,
    ) -> anyhow::Result<Row> {
        // Settled with the probe still running (its entries take milliseconds), so its
        // latency covers the whole recovery; then once more without it.
        self.stage.wait_settled(Duration::from_secs(300)).await?;
        let settled = Instant::now();
        let probe_sent = match self.probe.take() {
            Some(p) => p.stop().await,
            None => Vec::new(),
        };
        self.stage.wait_settled(Duration::from_secs(60)).await?;
        let recovery = self.fault_end.map(|end| settled - end);
        let drain = settled - self.started;
        let until_ms = chrono::Utc::now().timestamp_millis();
        let target_path = self.stage.target_path();
        let probe_path = self.stage.probe_path();
        let calls: Vec<_> = cluster
            .target
            .received()
            .into_iter()
            .filter(|c| c.path == target_path)
            .chain(
                cluster
                    .probe
                    .received()
                    .into_iter()
                    .filter(|c| c.path == probe_path),
            )
            .collect();
        let counts = verdict::compare(&mut self.stage, &probe_sent, &calls).await?;
        let probe_calls: Vec<_> = calls
            .iter()
            .filter(|c| c.path == probe_path)
            .cloned()
            .collect();
        let latency = probe::latency(&probe_sent, &probe_calls, self.fault_from_ms, until_ms);
        let mut failures: Vec<String> = self.stage.exited_workers();
        if let Some((decided, backlog)) = self.strike {
            if decided >= backlog as i64 {
                failures.push(format!(
                    "the fault struck after the drain ({decided} of {backlog} decided)"
                ));
            } else {
                self.notes
                    .push(format!("struck when {decided} of {backlog} were decided"));
            }
        }
        if !self.must_succeed.is_empty() {
            let main = self.stage.rule_named("alert")?;
            let ok = self.stage.succeeded(main, &self.must_succeed).await?;
            let n = self.must_succeed.len();
            if ok == n as i64 {
                self.notes.push(format!(
                    "after the destination recovered: {ok} of {n} new events succeeded"
                ));
            } else {
                failures.push(format!(
                    "after the destination recovered only {ok} of {n} new events succeeded"
                ));
            }
        }
        if rule_changes {
            if let Err(e) = rules_change_after(cluster, &mut self).await {
                failures.push(format!("{e:#}"));
            }
        }
        let peak_rss_kib = self.stage.peak_rss_kib();
        if let Err(e) = self.stage.stop().await {
            failures.push(format!("stopping: {e:#}"));
        }
        let mut row = Row {
            scenario: self.stage.name.clone(),
            fault: self.fault,
            counts,
            recovery,
            drain,
            probe: latency,
            peak_rss_kib,
            notes: self.notes,
            failures,
        };
        row.judge(allow);
        Ok(row)
    }
}

/// The run's own Redis emptied between scenarios (breakers, rate keys, streams).
async fn reset_redis(cluster: &Cluster) -> anyhow::Result<()> {
    let client = redis::Client::open(cluster.redis.url())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    redis::cmd("FLUSHALL").query_async::<()>(&mut conn).await?;
    Ok(())
}

const LONG: Duration = Duration::from_secs(120);

/// A drain of the backlog with `workers` workers started (named `w0`, `w1`, ...),
/// waiting until a quarter of it is decided: the moment to strike.
async fn drain_until_a_quarter(
    cluster: &mut Cluster,
    name: &str,
    workers: usize,
) -> anyhow::Result<Run> {
    drain_until(cluster, name, workers, 4).await
}

/// The same, waiting until `1 / part` of the backlog is decided.
async fn drain_until(
    cluster: &mut Cluster,
    name: &str,
    workers: usize,
    part: i64,
) -> anyhow::Result<Run> {
    let mut run = Run::begin(cluster, name, vec![Run::main_rule(cluster, name)]).await?;
    let n = cluster.scale.backlog;
    // Small batches: the drain lasts long enough for the fault to land inside it.
    run.stage
        .worker_env
        .push(("RULES__WORKER__BATCH_SIZE", "20".into()));
    run.stage.send_backlog(n, 50).await?;
    run.started = Instant::now();
    for i in 0..workers {
        run.stage.start_worker(&format!("w{i}")).await?;
    }
    run.stage.wait_decided(n as i64 / part, LONG).await?;
    run.strikes_mid_drain(n).await?;
    Ok(run)
}

async fn worker_kill_with_replica(cluster: &mut Cluster, name: &str) -> anyhow::Result<Row> {
    let mut run = drain_until_a_quarter(cluster, name, 2).await?;
    run.fault_starts("kill -9 of one of two workers mid-drain");
    run.stage.kill_worker(0).await?;
    run.fault_ends();
    run.finish(cluster, Allowances::default()).await
}

async fn worker_kill_replaced_later(cluster: &mut Cluster, name: &str) -> anyhow::Result<Row> {
    let mut run = drain_until_a_quarter(cluster, name, 1).await?;
    run.fault_starts("kill -9 of the only worker mid-drain; another started 5 s later");
    run.stage.kill_worker(0).await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    run.stage.start_worker("w-new").await?;
    run.fault_ends();
    run.finish(cluster, Allowances::default()).await
}

async fn worker_kill_same_name(cluster: &mut Cluster, name: &str) -> anyhow::Result<Row> {
    let mut run = drain_until_a_quarter(cluster, name, 1).await?;
    run.fault_starts("kill -9 of the only worker mid-drain, restarted under the same name");
    run.stage.kill_worker(0).await?;
    run.stage.start_worker("w0").await?;
    run.fault_ends();
    run.finish(cluster, Allowances::default()).await
}

/// A call of this scenario has reached the target (an action is in flight).
async fn wait_call(cluster: &Cluster, run: &Run, n: usize) -> anyhow::Result<()> {
    let path = run.stage.target_path();
    crate::worker::eventually(Duration::from_secs(30), || async {
        Ok(cluster
            .target
            .received()
            .iter()
            .filter(|c| c.path == path)
            .count()
            >= n)
    })
    .await
    .context("the slow action never started")
}

async fn kill_during_slow_cooldown(cluster: &mut Cluster, name: &str) -> anyhow::Result<Row> {
    let rule = Stage::webhook_rule(
        "thanks",
        &cluster.target.url(&format!("/{name}/a")),
        json!({"cooldown_seconds": 2, "cooldown_key": "data.user.name"}),
    );
    let mut run = Run::begin(cluster, name, vec![rule]).await?;
    cluster
        .target
        .set_behaviour(Behaviour::Slow(Duration::from_millis(2500)));
    run.stage.start_worker("w0").await?;
    run.stage.send_one(1).await?;
    run.stage.send_one(1).await?; // inside the cooldown: suppressed
    wait_call(cluster, &run, 1).await?;
    run.fault_starts(
        "kill -9 during a 2.5 s webhook of a 2 s cooldown rule; a new event of the key and a new worker 3 s later",
    );
    run.stage.kill_worker(0).await?;
    cluster.target.set_behaviour(Behaviour::Healthy);
    tokio::time::sleep(Duration::from_secs(3)).await;
    run.stage.send_one(1).await?; // after the cooldown: executed
    run.stage.start_worker("w1").await?;
    run.fault_ends();
    run.finish(cluster, Allowances::default()).await
}

async fn kill_during_slow_threshold(cluster: &mut Cluster, name: &str) -> anyhow::Result<Row> {
    let rule = Stage::webhook_rule(
        "streak",
        &cluster.target.url(&format!("/{name}/a")),
        json!({"trigger_config": {"event_types": ["donation.received"],
                                  "threshold": {"count": 2, "window_seconds": 2}}}),
    );
    let mut run = Run::begin(cluster, name, vec![rule]).await?;
    cluster
        .target
        .set_behaviour(Behaviour::Slow(Duration::from_millis(2500)));
    run.stage.start_worker("w0").await?;
    run.stage.send_one(1).await?; // counted
    run.stage.send_one(1).await?; // fires
    wait_call(cluster, &run, 1).await?;
    run.fault_starts(
        "kill -9 during the 2.5 s webhook of a 2-in-2 s threshold's firing; a new worker 3 s later",
    );
    run.stage.kill_worker(0).await?;
    cluster.target.set_behaviour(Behaviour::Healthy);
    tokio::time::sleep(Duration::from_secs(3)).await;
    run.stage.start_worker("w1").await?;
    run.fault_ends();
    run.finish(cluster, Allowances::default()).await
}

/// After a PostgreSQL fault: a rule created and the main rule disabled through the
/// api take effect on the next events. Returns the note, or fails.
async fn rules_change_after(cluster: &Cluster, run: &mut Run) -> anyhow::Result<()> {
    let main = run.stage.rule_named("alert")?;
    let after_path = format!("/{}/after", run.stage.name);
    let created = Instant::now();
    let after = run
        .stage
        .create_rule(Stage::webhook_rule(
            "after",
            &cluster.target.url(&after_path),
            json!({}),
        ))
        .await?;
    // Each change reaches every worker (polled through their health ports): the new
    // rule first, then the disabled one.
    let rules = run.stage.rules.len() as u64;
    run.stage.wait_rules_loaded(rules, LONG).await?;
    let arrived = created.elapsed();
    run.stage.disable_rule(main).await?;
    run.stage.wait_rules_loaded(rules - 1, LONG).await?;
    let ids = run.stage.send_backlog(20, 5).await?;
    run.stage.wait_settled(LONG).await?;
    let mut conn = AsyncPgConnection::establish(&run.stage.db_url).await?;
    let by_main = crate::worker::count_rows(&mut conn, "rule_executions", Some(main)).await?;
    let by_after = crate::worker::count_rows(&mut conn, "rule_executions", Some(after)).await?;
    let backlog = cluster.scale.backlog as i64;
    anyhow::ensure!(
        by_after == ids.len() as i64 && by_main == backlog,
        "after the fault: the new rule executed {by_after} of {} times, the disabled one {} extra times",
        ids.len(),
        by_main - backlog
    );
    run.notes.push(format!(
        "a rule created after the fault reached every worker in {} ms and executed {by_after} of {} new events; the rule disabled after it none",
        arrived.as_millis(),
        ids.len()
    ));
    Ok(())
}

async fn postgres_crash_restart(cluster: &mut Cluster, name: &str) -> anyhow::Result<Row> {
    let mut run = drain_until_a_quarter(cluster, name, 2).await?;
    run.fault_starts(
        "PostgreSQL crashed (pg_ctl stop -m immediate) and started mid-drain, two workers",
    );
    cluster.pg.restart()?;
    run.fault_ends();
    postgres_finish(cluster, run).await
}

async fn postgres_stopped(cluster: &mut Cluster, name: &str) -> anyhow::Result<Row> {
    let mut run = drain_until_a_quarter(cluster, name, 2).await?;
    let outage = cluster.scale.pg_outage;
    run.fault_starts(&format!(
        "PostgreSQL stopped (-m fast) for {} s mid-drain, two workers",
        outage.as_secs()
    ));
    cluster.pg.stop("fast")?;
    tokio::time::sleep(outage).await;
    cluster.pg.start_server()?;
    run.fault_ends();
    postgres_finish(cluster, run).await
}

async fn postgres_terminated(cluster: &mut Cluster, name: &str) -> anyhow::Result<Row> {
    let mut run = drain_until_a_quarter(cluster, name, 2).await?;
    run.fault_starts("pg_terminate_backend of every worker and api connection mid-drain");
    let mut admin = AsyncPgConnection::establish(&cluster.pg.url("postgres")).await?;
    diesel::sql_query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'",
    )
    .execute(&mut admin)
    .await?;
    run.fault_ends();
    postgres_finish(cluster, run).await
}

/// The verdict of a PostgreSQL scenario, then rule changes made after it.
async fn postgres_finish(cluster: &mut Cluster, run: Run) -> anyhow::Result<Row> {
    run.finish_then(cluster, Allowances::default(), true).await
}

/// Waits until the run's Redis answers again.
async fn redis_back(cluster: &Cluster, run: &mut Run) -> anyhow::Result<()> {
    run.stage.reconnect();
    let url = cluster.redis.url();
    crate::worker::eventually(LONG, || async {
        let client = redis::Client::open(url.as_str())?;
        Ok(client.get_multiplexed_async_connection().await.is_ok())
    })
    .await
}

async fn redis_shutdown(cluster: &mut Cluster, name: &str) -> anyhow::Result<Row> {
    let mut run = drain_until_a_quarter(cluster, name, 2).await?;
    run.fault_starts("Redis SHUTDOWN (AOF, fsync always) mid-drain, started again 2 s later");
    let client = redis::Client::open(cluster.redis.url())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    // The server closes the connection instead of answering.
    let _ = redis::cmd("SHUTDOWN").query_async::<()>(&mut conn).await;
    cluster.redis.wait_exit(Duration::from_secs(30))?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.redis.start_again()?;
    redis_back(cluster, &mut run).await?;
    run.fault_ends();
    run.finish(cluster, Allowances::default()).await
}

async fn redis_kill(cluster: &mut Cluster, name: &str) -> anyhow::Result<Row> {
    let mut run = drain_until_a_quarter(cluster, name, 2).await?;
    run.fault_starts("Redis kill -9 (AOF, fsync always) mid-drain, started again 2 s later");
    cluster.redis.kill()?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.redis.start_again()?;
    redis_back(cluster, &mut run).await?;
    run.fault_ends();
    run.finish(cluster, Allowances::default()).await
}

async fn redis_restart_empty(cluster: &mut Cluster, name: &str) -> anyhow::Result<Row> {
    let mut run = drain_until_a_quarter(cluster, name, 2).await?;
    run.fault_starts(
        "Redis killed mid-drain and started empty (no persistence); new events after it",
    );
    cluster.redis.restart_empty()?;
    redis_back(cluster, &mut run).await?;
    run.fault_ends();
    // What arrives after the loss is processed (the workers recreate the group).
    run.stage
        .send_backlog(cluster.scale.backlog / 4, 50)
        .await?;
    run.finish(cluster, Allowances::BROKER_LOSS).await
}

async fn redis_older_snapshot(cluster: &mut Cluster, name: &str) -> anyhow::Result<Row> {
    let mut run = drain_until(cluster, name, 2, 8).await?;
    let n = cluster.scale.backlog;
    let snapshot = cluster.dir.join(format!("{name}.rdb"));
    cluster.redis.snapshot(&snapshot)?;
    run.stage.wait_decided(n as i64 / 2, LONG).await?;
    run.strikes_mid_drain(n).await?;
    run.fault_starts(
        "Redis restored from a snapshot taken 3/8 of the drain earlier (stream, group and gate state go back); new events after it",
    );
    cluster.redis.restore(&snapshot)?;
    redis_back(cluster, &mut run).await?;
    run.fault_ends();
    run.stage.send_backlog(n / 4, 50).await?;
    run.finish(cluster, Allowances::BROKER_LOSS).await
}

async fn redis_group_destroyed(cluster: &mut Cluster, name: &str) -> anyhow::Result<Row> {
    let mut run = drain_until_a_quarter(cluster, name, 2).await?;
    run.fault_starts("XGROUP DESTROY of the consumer group mid-drain, the stream kept");
    let stream = run.stage.stream();
    redis::cmd("XGROUP")
        .arg("DESTROY")
        .arg(&stream)
        .arg(GROUP)
        .query_async::<i64>(run.stage.redis().await?)
        .await?;
    run.fault_ends();
    run.finish(cluster, Allowances::default()).await
}

/// The target misbehaves for the scale's fault time while the backlog drains.
async fn receiver_fault(
    cluster: &mut Cluster,
    name: &str,
    behaviour: Behaviour,
    what: &str,
) -> anyhow::Result<Row> {
    let mut run = Run::begin(cluster, name, vec![Run::main_rule(cluster, name)]).await?;
    let n = cluster.scale.backlog / 5;
    run.stage.start_worker("w0").await?;
    run.stage.start_worker("w1").await?;
    run.started = Instant::now();
    let fault = cluster.scale.receiver_fault;
    run.fault_starts(&format!("{what} for {} s, {n} events", fault.as_secs()));
    cluster.target.set_behaviour(behaviour);
    // Spread over the fault: events keep arriving while the destination misbehaves.
    let until = tokio::time::Instant::now() + fault;
    let rounds = (fault.as_millis() / 100).max(1) as usize;
    for _ in 0..rounds {
        run.stage.send_backlog(n.div_ceil(rounds), 50).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep_until(until).await;
    cluster.target.set_behaviour(Behaviour::Healthy);
    run.fault_ends();
    // Recovery: one new event at a time until one succeeds (the breaker, open during
    // the fault, lets calls through again after its 2 s cool-off).
    let back = first_success_after(&mut run).await?;
    // From then on every new event reaches the destination.
    run.must_succeed = run.stage.send_backlog(50, 50).await?;
    let mut row = run.finish(cluster, Allowances::FAILED).await?;
    row.recovery = Some(back);
    Ok(row)
}

/// Sends one event at a time to the main rule until one's execution succeeds; the
/// time since the fault ended.
async fn first_success_after(run: &mut Run) -> anyhow::Result<Duration> {
    let end = run.fault_end.context("the fault has not ended")?;
    let main = run.stage.rule_named("alert")?;
    loop {
        anyhow::ensure!(end.elapsed() < LONG, "no call succeeded after the fault");
        let id = run.stage.send_one(0).await?;
        let decided = Instant::now();
        while run.stage.decided_event(main, id).await?.is_none() {
            anyhow::ensure!(decided.elapsed() < LONG, "event {id} never decided");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if run.stage.succeeded(main, &[id]).await? == 1 {
            return Ok(end.elapsed());
        }
    }
}

async fn receiver_hangs(cluster: &mut Cluster, name: &str) -> anyhow::Result<Row> {
    receiver_fault(
        cluster,
        name,
        Behaviour::Hangs,
        "the destination hangs (2 s timeout)",
    )
    .await
}

async fn receiver_fails(cluster: &mut Cluster, name: &str) -> anyhow::Result<Row> {
    receiver_fault(
        cluster,
        name,
        Behaviour::Fails(500),
        "the destination answers 500",
    )
    .await
}

async fn receiver_resets(cluster: &mut Cluster, name: &str) -> anyhow::Result<Row> {
    receiver_fault(
        cluster,
        name,
        Behaviour::ResetsConnections,
        "the destination resets every connection",
    )
    .await
}

async fn receiver_slow(cluster: &mut Cluster, name: &str) -> anyhow::Result<Row> {
    let row = receiver_fault(
        cluster,
        name,
        Behaviour::Slow(Duration::from_millis(1500)),
        "the destination answers after 1.5 s",
    )
    .await?;
    Ok(fail_if(
        row,
        |c| c.failed > 0,
        "a slow but working destination failed executions",
    ))
}

fn fail_if(mut row: Row, bad: impl Fn(&verdict::Counts) -> bool, what: &str) -> Row {
    if bad(&row.counts) {
        row.failures.push(what.to_owned());
    }
    row
}

async fn burst(cluster: &mut Cluster, name: &str) -> anyhow::Result<Row> {
    let mut run = Run::begin(cluster, name, Vec::new()).await?;
    let out = run.stage.out();
    run.stage
        .create_rule(json!({
            "name": "alert",
            "trigger_config": {"event_types": ["donation.received"]},
            "actions": [{"type": "publish", "stream": out,
                         "payload": {"text": "{{ event.data.user.name }} donated {{ event.data.amount }}"}}]
        }))
        .await?;
    let n = cluster.scale.burst;
    run.stage
        .worker_env
        .push(("RULES__WORKER__PUBLISH_MAXLEN", (2 * n).to_string()));
    run.stage
        .worker_env
        .push(("RULES__WORKER__BATCH_SIZE", "1000".into()));
    run.stage.send_backlog(n, 1000).await?;
    run.fault_starts(&format!(
        "{n} events queued before two workers start (publish rule)"
    ));
    run.started = Instant::now();
    run.stage.start_worker("w0").await?;
    run.stage.start_worker("w1").await?;
    run.fault_ends();
    let mut row = run.finish(cluster, Allowances::default()).await?;
    row.recovery = None;
    row.notes.push(format!(
        "drained {n} events in {:.1} s ({:.0} events/s), peak RSS of a worker {} KiB",
        row.drain.as_secs_f64(),
        n as f64 / row.drain.as_secs_f64(),
        row.peak_rss_kib.unwrap_or(0)
    ));
    Ok(row)
}

async fn poison(cluster: &mut Cluster, name: &str) -> anyhow::Result<Row> {
    let mut run = Run::begin(cluster, name, vec![Run::main_rule(cluster, name)]).await?;
    run.stage.send_backlog(500, 50).await?;
    run.fault_starts("one entry with a non-UTF-8 field name among 1,000 valid ones");
    let stream = run.stage.stream();
    redis::cmd("XADD")
        .arg(&stream)
        .arg("*")
        .arg(&b"ev\xffent"[..])
        .arg("{}")
        .query_async::<String>(run.stage.redis().await?)
        .await?;
    run.stage.send_backlog(500, 50).await?;
    run.started = Instant::now();
    run.stage.start_worker("w0").await?;
    run.stage.start_worker("w1").await?;
    run.fault_ends();
    run.finish(
        cluster,
        Allowances {
            dead_letters: 1,
            ..Allowances::default()
        },
    )
    .await
}

/// The harness itself: a clean drain, then one recorded execution deleted behind the
/// service's back. The verdict must report it lost (a harness that cannot fail would
/// pass every scenario).
async fn harness_self_check(cluster: &mut Cluster, name: &str) -> anyhow::Result<Row> {
    let mut run = Run::begin(cluster, name, vec![Run::main_rule(cluster, name)]).await?;
    run.stage.send_backlog(200, 50).await?;
    run.stage.start_worker("w0").await?;
    run.stage.wait_settled(LONG).await?;
    run.fault_starts("one recorded execution deleted after the drain (the harness must notice)");
    let mut conn = AsyncPgConnection::establish(&run.stage.db_url).await?;
    diesel::sql_query(
        "DELETE FROM rule_executions WHERE id = (SELECT id FROM rule_executions \
         WHERE rule_id <> $1 LIMIT 1)",
    )
    .bind::<diesel::sql_types::Uuid, _>(run.stage.probe_rule.unwrap_or_default())
    .execute(&mut conn)
    .await?;
    let mut row = run.finish(cluster, Allowances::default()).await?;
    let noticed =
        row.counts.lost == 1 && row.counts.foreign_effects == 1 && row.failures.len() == 2;
    row.failures = if noticed {
        row.notes
            .push("the deleted execution was reported lost and its webhook call foreign".into());
        Vec::new()
    } else {
        vec![format!(
            "the harness did not report the deleted execution exactly (lost {}, foreign {}, {:?})",
            row.counts.lost, row.counts.foreign_effects, row.failures
        )]
    };
    Ok(row)
}
