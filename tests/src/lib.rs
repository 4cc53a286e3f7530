//! Helpers for the end-to-end tests: an isolated database per test, unique Redis
//! keys, and the real binaries started as child processes.
//!
//! Every test gets its own database, created from a migrated template
//! (`CREATE DATABASE … TEMPLATE …`, as crates.io's test-db does) and dropped
//! `WITH (FORCE)` when the test ends, so tests run in parallel under nextest without
//! sharing state. The template's name carries a hash of the migrations, so editing a
//! migration makes a fresh one. Its creation is serialised by an advisory lock.

pub mod browser;
pub mod chaos;
pub mod receiver;
mod reset_front;
pub mod services;
mod shared_redis;
pub mod worker;

pub use shared_redis::RedisUnderTest;

use anyhow::{bail, Context};
use diesel::sql_types::{BigInt, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use rules_store::db::PgTarget;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// A succeeded execution of `rule_id` for `event_id` on `day`, as the recorder writes
/// one (its id the pair's `rules_core::execution_id`, no actions).
pub fn execution_row(
    rule_id: uuid::Uuid,
    event_id: uuid::Uuid,
    day: chrono::NaiveDate,
) -> rules_store::db::executions::ExecutionRow {
    rules_store::db::executions::ExecutionRow {
        id: rules_core::execution_id(rule_id, event_id),
        rule_id,
        event_id,
        livestream_id: uuid::Uuid::new_v4(),
        executed_at: chrono::Utc::now(),
        status: rules_core::Status::Succeeded,
        duration_ms: 3,
        result: rules_store::db::raw_json::RawJson::from_value(&serde_json::json!({"actions": []})),
        event_day: day,
    }
}

/// The server the tests create their databases on; the maintenance database is used.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The shared Redis's URL (a cluster's seed URLs when the suites run on one: see
/// [`RedisUnderTest::shared`]).
pub fn redis_url() -> String {
    RedisUnderTest::shared().url
}

/// A URL for database `name` on the test server.
fn url_for(name: &str) -> anyhow::Result<String> {
    let mut url = url::Url::parse(&admin_url())?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

const TEMPLATE_LOCK: i64 = 0x7275_6c65_735f_7464; // "rules_td"

/// A database of the test's own, dropped when this value is.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    /// A fresh database with every migration applied.
    pub async fn migrated() -> anyhow::Result<Self> {
        let template = ensure_template().await?;
        Self::create(Some(&template)).await
    }

    /// A fresh, empty database (for testing the migrations themselves).
    pub async fn empty() -> anyhow::Result<Self> {
        Self::create(None).await
    }

    async fn create(template: Option<&str>) -> anyhow::Result<Self> {
        let name = format!("rules_test_{}", uuid::Uuid::new_v4().simple());
        let sql = match template {
            Some(t) => format!("CREATE DATABASE \"{name}\" TEMPLATE \"{t}\""),
            None => format!("CREATE DATABASE \"{name}\""),
        };
        let mut admin = admin_conn().await?;
        // A concurrent CREATE from the same template can briefly see it "in use".
        let mut attempt = 0;
        loop {
            match diesel::sql_query(&sql).execute(&mut admin).await {
                Ok(_) => break,
                Err(e)
                    if attempt < 20 && e.to_string().contains("being accessed by other users") =>
                {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                }
                Err(e) => return Err(e).context("create test database"),
            }
        }
        Ok(Self {
            url: url_for(&name)?,
            name,
        })
    }

    pub async fn conn(&self) -> anyhow::Result<AsyncPgConnection> {
        Ok(AsyncPgConnection::establish(&self.url).await?)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside async; a short-lived runtime on its own thread does the work.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let mut admin = admin_conn().await?;
                diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut admin)
                    .await?;
                anyhow::Ok(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

async fn admin_conn() -> anyhow::Result<AsyncPgConnection> {
    AsyncPgConnection::establish(&admin_url())
        .await
        .with_context(|| {
            format!(
                "connect to the test server {} (is PostgreSQL running? `make services`)",
                admin_url()
            )
        })
}

/// A row of one bigint `n` (`SELECT count(*) AS n ...`).
#[derive(QueryableByName)]
pub struct Count {
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

/// A row of one text `name`.
#[derive(QueryableByName)]
pub struct Name {
    #[diesel(sql_type = Text)]
    pub name: String,
}

/// Creates the migrated template database once per migration set and UTC day (the
/// decision log's partitions are made relative to the day of the migration).
async fn ensure_template() -> anyhow::Result<String> {
    let name = format!(
        "rules_test_template_{:016x}_{}",
        migrations_hash()?,
        chrono::Utc::now().format("%Y%m%d")
    );
    let mut admin = admin_conn().await?;
    diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<BigInt, _>(TEMPLATE_LOCK)
        .execute(&mut admin)
        .await?;
    let result = async {
        let exists = diesel::sql_query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
            .bind::<Text, _>(&name)
            .get_result::<Count>(&mut admin)
            .await?
            .n
            > 0;
        if !exists {
            let building = format!("{name}_building");
            diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"
            ))
            .execute(&mut admin)
            .await?;
            diesel::sql_query(format!("CREATE DATABASE \"{building}\""))
                .execute(&mut admin)
                .await?;
            rules_store::db::migrations::run_pending(&PgTarget::new(&url_for(&building)?, None)?)
                .await?;
            // Renamed only once complete, so a crash never leaves a half-built template.
            diesel::sql_query(format!(
                "ALTER DATABASE \"{building}\" RENAME TO \"{name}\""
            ))
            .execute(&mut admin)
            .await?;
        }
        anyhow::Ok(())
    }
    .await;
    let _ = diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<BigInt, _>(TEMPLATE_LOCK)
        .execute(&mut admin)
        .await;
    result.map(|()| name)
}

fn migrations_hash() -> anyhow::Result<u64> {
    let dir = workspace_root().join("migrations");
    let mut files = Vec::new();
    for entry in walk(&dir)? {
        files.push((entry.clone(), std::fs::read(&entry)?));
    }
    files.sort();
    let mut hasher = DefaultHasher::new();
    for (path, content) in files {
        path.strip_prefix(&dir).unwrap_or(&path).hash(&mut hasher);
        content.hash(&mut hasher);
    }
    Ok(hasher.finish())
}

fn walk(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(walk(&path)?);
        } else {
            out.push(path);
        }
    }
    Ok(out)
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// A key prefix of the test's own, so parallel tests never share Redis keys.
pub fn unique_prefix(label: &str) -> String {
    format!("test:{label}:{}", uuid::Uuid::new_v4().simple())
}

/// Deletes every Redis key under `prefix` when dropped.
pub struct RedisKeys {
    pub prefix: String,
    /// The Redis they live on: the shared one, or a test's own.
    pub redis: RedisUnderTest,
}

impl RedisKeys {
    pub fn new(label: &str) -> Self {
        Self::on(label, RedisUnderTest::shared())
    }

    /// Keys on `redis` (a test's own server).
    pub fn on(label: &str, redis: RedisUnderTest) -> Self {
        Self {
            prefix: unique_prefix(label),
            redis,
        }
    }

    pub fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }

    pub async fn conn(&self) -> anyhow::Result<rules_store::redis::Link> {
        self.redis.conn().await
    }
}

impl Drop for RedisKeys {
    fn drop(&mut self) {
        if let Err(e) = self.redis.delete_matching(&format!("{}*", self.prefix)) {
            eprintln!("warning: could not delete the keys {}*: {e:#}", self.prefix);
        }
    }
}

/// The API key the tests configure.
pub const TEST_KEY: &str = "test-key-0123456789abcdef";

/// Environment of a `rules-api` on 127.0.0.1:`port` over database `db_url`, with
/// [`TEST_KEY`] unless `keys` is false, plus `extra`.
pub fn api_env(
    db_url: &str,
    port: u16,
    keys: bool,
    extra: &[(&'static str, String)],
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("DATABASE_URL", db_url.to_owned()),
        ("RULES__API__BIND", format!("127.0.0.1:{port}")),
    ];
    env.extend(RedisUnderTest::shared().env());
    if keys {
        env.push(("RULES_API_KEYS", TEST_KEY.to_owned()));
    }
    env.extend(extra.iter().cloned());
    env
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Path of a workspace binary built by `cargo build` (the Makefile builds them first):
/// beside the running executable (`rules-chaos` in `target/<profile>/`), or one level
/// up from it (a test in `target/<profile>/deps/`).
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let beside = exe.parent().context("executable has no directory")?;
    if beside.join(name).is_file() {
        return Ok(beside.join(name));
    }
    let dir = beside
        .parent()
        .context("test executable has no target directory")?;
    let path = dir.join(name);
    if !path.is_file() {
        bail!(
            "{} is not built; run `cargo build --workspace --bins` (make test does)",
            path.display()
        );
    }
    Ok(path)
}

/// Sends SIGTERM to process `pid` (a syscall: no `kill` program needed).
pub fn signal_terminate(pid: u32) -> anyhow::Result<()> {
    let pid = i32::try_from(pid).context("pid out of range")?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .with_context(|| format!("SIGTERM to {pid}"))
}

/// A running binary; killed when dropped if still running.
pub struct Process {
    pub child: Child,
    pub name: String,
}

impl Process {
    /// Starts binary `name` with only the given environment (plus PATH), logs captured.
    pub fn start(name: &str, env: &[(&str, String)]) -> anyhow::Result<Self> {
        Self::start_with_args(name, &[], env)
    }

    pub fn start_with_args(
        name: &str,
        args: &[&str],
        env: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        Self::spawn(name, args, env, Stdio::piped(), Stdio::piped())
    }

    /// Starts binary `name` writing its output to the file `log` (appended), for a
    /// process that runs long enough to fill a pipe nobody reads.
    pub fn start_logged(name: &str, env: &[(&str, String)], log: &Path) -> anyhow::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("open {}", log.display()))?;
        Self::spawn(name, &[], env, file.try_clone()?.into(), file.into())
    }

    fn spawn(
        name: &str,
        args: &[&str],
        env: &[(&str, String)],
        stdout: Stdio,
        stderr: Stdio,
    ) -> anyhow::Result<Self> {
        let mut cmd = Command::new(binary(name)?);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RULES__LOG__FORMAT", "json")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(true);
        Ok(Self {
            child: cmd.spawn().with_context(|| format!("start {name}"))?,
            name: name.to_owned(),
        })
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub async fn terminate(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let pid = self.child.id().context("process already exited")?;
        signal_terminate(pid)?;
        self.wait(Duration::from_secs(30)).await
    }

    pub async fn wait(&mut self, limit: Duration) -> anyhow::Result<std::process::ExitStatus> {
        tokio::time::timeout(limit, self.child.wait())
            .await
            .with_context(|| format!("{} did not exit within {limit:?}", self.name))?
            .context("wait")
    }

    /// Everything the process wrote, once it has exited.
    pub async fn output(mut self) -> anyhow::Result<(String, String)> {
        use tokio::io::AsyncReadExt;
        let mut out = String::new();
        let mut err = String::new();
        if let Some(mut s) = self.child.stdout.take() {
            s.read_to_string(&mut out).await?;
        }
        if let Some(mut s) = self.child.stderr.take() {
            s.read_to_string(&mut err).await?;
        }
        Ok((out, err))
    }
}

/// An HTTP client for tests (TLS set up as the worker does, with ring).
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// Polls `url` until it answers 200 or `limit` passes.
pub async fn wait_http_ok(url: &str, limit: Duration) -> anyhow::Result<()> {
    let client = http_client();
    let start = Instant::now();
    loop {
        if let Ok(response) = client.get(url).send().await {
            if response.status().as_u16() == 200 {
                return Ok(());
            }
        }
        if start.elapsed() > limit {
            bail!("{url} did not answer 200 within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
