//! Redis access: the shared connection pool, on one Redis or on a Redis Cluster.
//!
//! `redis.cluster = false` (the default): one server, `redis.url`, through
//! deadpool-redis's pool of multiplexed connections. `redis.cluster = true`:
//! `redis.url` lists seed nodes (comma-separated) and each pooled connection is
//! redis-rs's cluster client, which routes a command by its key's slot, follows
//! `MOVED`/`ASK` during a slot migration and reconnects after a failover. Callers do
//! not tell the two apart: both are a [`RedisConnection`] (pooled) or a [`Link`]
//! (a handle of its own), and every command the service sends works on both.
//!
//! Every key the service writes carries a hash tag (see `keys`), so a script or a
//! command never spans slots; a *pipeline* may (the gate decides a batch's pairs of
//! many rules in one), and on a cluster [`Link`] sends it as one pipeline per slot,
//! concurrently, with the replies put back in order. `CROSSSLOT` cannot come from
//! the service's own commands by construction.
//!
//! A blocking `XREADGROUP` must not hold a pooled connection (it would starve the
//! pool for its whole BLOCK); the worker opens a dedicated connection for reading.

use deadpool::managed;
use deadpool_redis::{Manager, PoolConfig, Runtime, Timeouts};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, IntoConnectionInfo, Pipeline, RedisFuture, Value};
use std::time::Duration;

use crate::config::RedisSettings;
use crate::wire::WireConnection;

/// Redis errors. The pool's errors are kept whole (not as text); their message is
/// shown inline, so they are not also reported as a source (which would print the
/// same cause twice in an error chain).
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("redis pool: {0}")]
    Pool(deadpool_redis::PoolError),
    #[error("redis pool configuration: {0}")]
    Build(deadpool_redis::CreatePoolError),
    #[error("redis: {0}")]
    Command(#[from] redis::RedisError),
    /// Redis answered, but not what the command or script answers.
    #[error("unexpected reply to {command}: {detail}")]
    Reply {
        command: &'static str,
        detail: String,
    },
}

impl From<deadpool_redis::PoolError> for RedisError {
    fn from(e: deadpool_redis::PoolError) -> Self {
        Self::Pool(e)
    }
}

impl From<deadpool_redis::CreatePoolError> for RedisError {
    fn from(e: deadpool_redis::CreatePoolError) -> Self {
        Self::Build(e)
    }
}

/// The process's pool of Redis connections: to one server or to a cluster.
#[derive(Clone)]
pub enum RedisPool {
    Single(deadpool_redis::Pool),
    Cluster(managed::Pool<ClusterManager>),
}

impl RedisPool {
    /// A connection from the pool, back in it when dropped.
    pub async fn get(&self) -> Result<RedisConnection, RedisError> {
        Ok(match self {
            Self::Single(pool) => RedisConnection::Single(pool.get().await?),
            Self::Cluster(pool) => RedisConnection::Cluster(pool.get().await?),
        })
    }

    /// Connections held, idle and awaited (the pool gauges).
    pub fn status(&self) -> managed::Status {
        match self {
            Self::Single(pool) => pool.status(),
            Self::Cluster(pool) => pool.status(),
        }
    }
}

/// Makes the pool's cluster connections: each one redis-rs's cluster client, with
/// the settings' connect and reply bounds; an idle one is checked with a PING
/// before it is handed out.
pub struct ClusterManager {
    client: ClusterClient,
}

impl managed::Manager for ClusterManager {
    type Type = ClusterConnection;
    type Error = redis::RedisError;

    async fn create(&self) -> Result<ClusterConnection, redis::RedisError> {
        self.client.get_async_connection().await
    }

    async fn recycle(
        &self,
        conn: &mut ClusterConnection,
        _: &managed::Metrics,
    ) -> managed::RecycleResult<redis::RedisError> {
        let _: String = redis::cmd("PING").query_async(conn).await?;
        Ok(())
    }
}

/// The pool of the process's Redis connections. Each connection is made with the
/// settings' connect and reply bounds: redis-rs's own defaults (1 s to connect, 500
/// ms for a reply) would fail a pipeline of a thousand gate scripts, or any command
/// while Redis fsyncs a large write, and every such failure is a retried batch or a
/// publish whose outcome is unknown.
pub fn build_pool(settings: &RedisSettings) -> Result<RedisPool, RedisError> {
    let mut pool = PoolConfig::new(settings.pool_size);
    pool.timeouts = Timeouts {
        wait: Some(Duration::from_millis(settings.acquire_timeout_ms)),
        create: Some(Duration::from_millis(settings.connect_timeout_ms)),
        recycle: Some(Duration::from_millis(settings.connect_timeout_ms)),
    };
    let built = if settings.cluster {
        let manager = ClusterManager {
            client: cluster_client(
                settings,
                Duration::from_millis(settings.connect_timeout_ms),
                Some(Duration::from_millis(settings.response_timeout_ms)),
            )?,
        };
        managed::Pool::builder(manager)
            .config(pool)
            .runtime(Runtime::Tokio1)
            .build()
            .map(RedisPool::Cluster)
    } else {
        let connection = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(settings.connect_timeout_ms)))
            .set_response_timeout(Some(Duration::from_millis(settings.response_timeout_ms)));
        let manager = Manager::new_with_config(settings.url.as_str(), connection)?;
        deadpool_redis::Pool::builder(manager)
            .config(pool)
            .runtime(Runtime::Tokio1)
            .build()
            .map(RedisPool::Single)
    };
    built.map_err(|e| RedisError::Build(deadpool_redis::CreatePoolError::Build(e)))
}

/// The seed nodes of `redis.url` when it names a cluster: comma-separated URLs.
pub fn cluster_seeds(url: &str) -> Vec<&str> {
    url.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

fn cluster_client(
    settings: &RedisSettings,
    connect: Duration,
    reply: Option<Duration>,
) -> Result<ClusterClient, RedisError> {
    let mut builder =
        ClusterClientBuilder::new(cluster_seeds(&settings.url)).connection_timeout(connect);
    if let Some(reply) = reply {
        builder = builder.response_timeout(reply);
    }
    Ok(builder.build()?)
}

/// A connection of its own (not pooled), for a caller whose commands must not share
/// one: a blocking read, or a harness measuring the service. `reply` bounds how long
/// a reply may take (`None`: no bound); redis-rs's own default, 500 ms, is too short
/// for a blocking read or a large reply on a loaded machine.
pub async fn dedicated_connection(
    url: &str,
    connect: Duration,
    reply: Option<Duration>,
) -> redis::RedisResult<MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(connect))
        .set_response_timeout(reply);
    redis::Client::open(url)?
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// [`dedicated_connection`] to the service's Redis as configured: on a cluster, a
/// cluster client of its own (its connection to each node is its own too, so a
/// blocking read holds up nobody else's commands).
pub async fn dedicated(
    settings: &RedisSettings,
    connect: Duration,
    reply: Option<Duration>,
) -> Result<Link, RedisError> {
    Ok(if settings.cluster {
        let client = cluster_client(settings, connect, reply)?;
        Link::Cluster(client.get_async_connection().await?)
    } else {
        Link::Single(dedicated_connection(&settings.url, connect, reply).await?)
    })
}

/// The connection a stream reader reads with: on one server over plain TCP, a
/// [`WireConnection`] (replies decoded by redis-protocol: a drain's largest single
/// cost in redis-rs's decoder); otherwise (a cluster, TLS, a Unix socket, RESP3)
/// what [`dedicated`] opens. Both answer every command of the crate alike.
pub enum Reader {
    Wire(WireConnection),
    Link(Link),
}

/// [`dedicated`], for a reader: see [`Reader`].
pub async fn dedicated_reader(
    settings: &RedisSettings,
    connect: Duration,
    reply: Option<Duration>,
) -> Result<Reader, RedisError> {
    if !settings.cluster {
        let info = settings.url.as_str().into_connection_info()?;
        if WireConnection::serves(&info) {
            return Ok(Reader::Wire(
                WireConnection::connect(&info, connect, reply).await?,
            ));
        }
    }
    Ok(Reader::Link(dedicated(settings, connect, reply).await?))
}

impl Reader {
    /// The connection it holds, whichever it is.
    fn connection(&self) -> &(dyn ConnectionLike + Send) {
        match self {
            Self::Wire(conn) => conn,
            Self::Link(conn) => conn,
        }
    }

    fn connection_mut(&mut self) -> &mut (dyn ConnectionLike + Send) {
        match self {
            Self::Wire(conn) => conn,
            Self::Link(conn) => conn,
        }
    }
}

impl crate::streams::EntryReader for Reader {
    fn read_entries<'a>(
        &'a mut self,
        cmd: &'a Cmd,
    ) -> futures_util::future::BoxFuture<'a, crate::streams::ReadResult> {
        match self {
            Self::Wire(conn) => conn.read_entries(cmd),
            Self::Link(conn) => Box::pin(crate::streams::read_as_values(conn, cmd)),
        }
    }
}

impl ConnectionLike for Reader {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        self.connection_mut().req_packed_command(cmd)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.connection_mut()
            .req_packed_commands(pipeline, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.connection().get_db()
    }
}

/// A pooled connection; dropping it gives it back.
pub enum RedisConnection {
    Single(deadpool_redis::Connection),
    Cluster(managed::Object<ClusterManager>),
}

impl RedisConnection {
    /// A handle on the same connection that outlives this lease (multiplexed
    /// connections are shared by cloning).
    pub fn link(&self) -> Link {
        match self {
            Self::Single(conn) => Link::Single((**conn).clone()),
            Self::Cluster(conn) => Link::Cluster((**conn).clone()),
        }
    }
}

/// A multiplexed connection of its own, to one server or to a cluster.
#[derive(Clone)]
pub enum Link {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

/// `ConnectionLike` for [`RedisConnection`] and [`Link`]: each variant dereferences
/// to the connection it holds, and [`LinkMut`] sends on it.
macro_rules! connection_like {
    ($type:ty) => {
        impl ConnectionLike for $type {
            fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
                self.as_link_mut().command(cmd)
            }

            fn req_packed_commands<'a>(
                &'a mut self,
                pipeline: &'a Pipeline,
                offset: usize,
                count: usize,
            ) -> RedisFuture<'a, Vec<Value>> {
                self.as_link_mut().commands(pipeline, offset, count)
            }

            fn get_db(&self) -> i64 {
                match self {
                    Self::Single(conn) => conn.get_db(),
                    Self::Cluster(conn) => conn.get_db(),
                }
            }
        }

        impl $type {
            fn as_link_mut(&mut self) -> LinkMut<'_> {
                match self {
                    Self::Single(conn) => LinkMut::Single(conn),
                    Self::Cluster(conn) => LinkMut::Cluster(conn),
                }
            }
        }
    };
}

connection_like!(RedisConnection);
connection_like!(Link);

/// A pooled connection or a link, borrowed: where both send their commands.
enum LinkMut<'a> {
    Single(&'a mut MultiplexedConnection),
    Cluster(&'a mut ClusterConnection),
}

impl<'a> LinkMut<'a> {
    fn command(self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn commands(
        self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => cluster_pipeline(conn, pipeline, offset, count),
        }
    }
}

/// Sends a pipeline on a cluster: as it is when its commands share a slot (or it is
/// a transaction, which must), otherwise as one pipeline per slot, concurrently,
/// each to the node serving it, with the replies put back in the pipeline's order.
fn cluster_pipeline<'a>(
    conn: &'a mut ClusterConnection,
    pipeline: &'a Pipeline,
    offset: usize,
    count: usize,
) -> RedisFuture<'a, Vec<Value>> {
    if pipeline.is_transaction() {
        return conn.req_packed_commands(pipeline, offset, count);
    }
    let groups = slot_groups(pipeline);
    if groups.len() <= 1 {
        return conn.req_packed_commands(pipeline, offset, count);
    }
    Box::pin(async move {
        let commands: Vec<&Cmd> = pipeline.cmd_iter().collect();
        let sends = groups.iter().map(|indices| {
            let mut part = redis::pipe();
            for &i in indices {
                part.add_command(commands[i].clone());
            }
            let mut conn = conn.clone();
            async move {
                let len = part.len();
                conn.req_packed_commands(&part, 0, len).await
            }
        });
        let replies = futures_util::future::try_join_all(sends).await?;
        let mut all = vec![Value::Nil; commands.len()];
        for (indices, values) in groups.iter().zip(replies) {
            if values.len() != indices.len() {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::Client,
                    "pipeline split by slot",
                    format!("{} replies for {} commands", values.len(), indices.len()),
                )));
            }
            for (&i, value) in indices.iter().zip(values) {
                all[i] = value;
            }
        }
        Ok(all.into_iter().skip(offset).take(count).collect())
    })
}

/// The pipeline's command positions grouped by the slot of each command's key, in
/// the order the slots first appear; a command without a key joins the first group.
fn slot_groups(pipeline: &Pipeline) -> Vec<Vec<usize>> {
    // A batch's gate pipeline holds a thousand commands over as many slots: the
    // group of a slot is found by hash, not by a scan of the groups so far.
    let mut group_of: std::collections::HashMap<u16, usize> = std::collections::HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, cmd) in pipeline.cmd_iter().enumerate() {
        let group = match command_key(cmd).map(key_slot) {
            None if !groups.is_empty() => 0,
            None => {
                groups.push(Vec::new());
                0
            }
            Some(slot) => *group_of.entry(slot).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            }),
        };
        groups[group].push(i);
    }
    groups
}

/// The first key of a command: after the script and the key count for the script
/// commands, else the first argument (every pipelined command the service sends).
fn command_key(cmd: &Cmd) -> Option<&[u8]> {
    let mut args = cmd.args_iter().map(|arg| match arg {
        redis::Arg::Simple(bytes) => bytes,
        _ => &[],
    });
    let name = args.next()?;
    let scripted = [
        &b"EVAL"[..],
        b"EVALSHA",
        b"EVAL_RO",
        b"EVALSHA_RO",
        b"FCALL",
        b"FCALL_RO",
    ]
    .iter()
    .any(|s| name.eq_ignore_ascii_case(s));
    if scripted {
        let _script = args.next()?;
        let keys: usize = std::str::from_utf8(args.next()?).ok()?.parse().ok()?;
        if keys == 0 {
            return None;
        }
    }
    args.next()
}

/// The cluster slot of a key (CLUSTER KEYSLOT): CRC16 of its hash tag, the text
/// between the first `{` and the next `}` when that is not empty, else of the key.
pub fn key_slot(key: &[u8]) -> u16 {
    let tag = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.iter()
                .position(|&b| b == b'}')
                .filter(|&len| len > 0)
                .map(|len| &rest[..len])
        })
        .unwrap_or(key);
    crc16::State::<crc16::XMODEM>::calculate(tag) % 16384
}

/// One multiplexed connection of the pool, shared by every caller of [`Self::get`]
/// until one of them [`Self::forget`]s it (after an I/O error; [`Self::run`] after
/// any error): commands that many
/// tasks issue at once (the publishes of a batch's executions) then go out together
/// in one write and come back in one read, where a connection each would cost a
/// round trip and a system call each. After a forget the next caller takes one
/// from the pool again, which checks an idle connection (PING) before handing it
/// out and replaces a dead one.
///
/// It also serves the acknowledgements (a pipeline per commit, two commits under
/// way at once): taken from the pool each time, a connection costs a round trip of
/// its own first (deadpool-redis checks it with `UNWATCH` and `PING` every time it
/// hands it out). The gate, one pipeline at a time, has an [`OwnConnection`].
pub struct SharedConnection {
    pool: RedisPool,
    current: std::sync::Mutex<Option<Link>>,
}

impl SharedConnection {
    pub fn new(pool: RedisPool) -> Self {
        Self {
            pool,
            current: std::sync::Mutex::new(None),
        }
    }

    /// The shared connection, taken from the pool when there is none.
    pub async fn get(&self) -> Result<Link, RedisError> {
        if let Some(conn) = self.lock().as_ref() {
            return Ok(conn.clone());
        }
        // Boxed: the pool's future is kilobytes, and inline it made the future of
        // every publish that size, though it is awaited only after a failure.
        let conn = Box::pin(self.pool.get()).await?.link();
        *self.lock() = Some(conn.clone());
        Ok(conn)
    }

    /// Runs `step` on the shared connection. An error forgets the connection, so the
    /// next call (a retry) takes a checked one from the pool: a multiplexed
    /// connection does not reconnect by itself, and one that failed may be dead.
    pub async fn run<T, E>(&self, step: impl AsyncFnOnce(&mut Link) -> Result<T, E>) -> Result<T, E>
    where
        E: From<RedisError>,
    {
        let mut link = self.get().await?;
        let result = step(&mut link).await;
        if result.is_err() {
            self.forget();
        }
        result
    }

    /// Stops sharing the current connection: the next [`Self::get`] takes another.
    pub fn forget(&self) {
        *self.lock() = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Link>> {
        // Holding an optional handle: a panic elsewhere cannot leave it inconsistent.
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A connection of one caller's own, for a step that sends one pipeline at a time
/// and waits for its replies (the gate: one batch at the gate at once). It is opened
/// when first needed, as [`dedicated_reader`] opens one: on one server over plain
/// TCP a [`WireConnection`], whose caller writes and reads the socket itself, so a
/// round trip wakes no other task (a multiplexed connection hands each command to
/// its driver task and the reply back) and its replies are decoded by
/// redis-protocol; on a cluster, over TLS or a Unix socket, a [`Link`] of its own.
/// After any error it is dropped, and the next call (a retry) opens another.
pub struct OwnConnection {
    settings: RedisSettings,
    current: tokio::sync::Mutex<Option<Reader>>,
}

impl OwnConnection {
    /// Opened on first use, within `redis.connect_timeout_ms`; each reply awaited
    /// at most `redis.response_timeout_ms`, as the pool's connections are.
    pub fn new(settings: RedisSettings) -> Self {
        Self {
            settings,
            current: tokio::sync::Mutex::new(None),
        }
    }

    /// Runs `step` on the connection (one step at a time); an error drops the
    /// connection, so the next call opens another.
    pub async fn run<T, E>(
        &self,
        step: impl AsyncFnOnce(&mut Reader) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<RedisError>,
    {
        let mut current = self.current.lock().await;
        let conn = match current.as_mut() {
            Some(conn) => conn,
            None => current.insert(
                dedicated_reader(
                    &self.settings,
                    Duration::from_millis(self.settings.connect_timeout_ms),
                    Some(Duration::from_millis(self.settings.response_timeout_ms)),
                )
                .await?,
            ),
        };
        let result = step(conn).await;
        if result.is_err() {
            *current = None;
        }
        result
    }
}

/// A round trip to Redis: start-up checks and readiness probes.
pub async fn ping(pool: &RedisPool) -> Result<(), RedisError> {
    let mut conn = pool.get().await?;
    let _: String = redis::cmd("PING").query_async(&mut conn).await?;
    Ok(())
}

/// The oldest Redis the service runs on: the gate decides a rule with neither
/// threshold nor cooldown with `SET … NX … GET`, which Redis accepts from 7.0.
pub const OLDEST_SERVER: (u32, u32) = (7, 0);

/// The Redis server's version, `(major, minor)`, from `INFO server`; on a cluster,
/// the oldest node's (the command reaches every node).
pub async fn server_version(pool: &RedisPool) -> Result<(u32, u32), RedisError> {
    let mut conn = pool.get().await?;
    let info: Value = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await?;
    let mut texts = Vec::new();
    info_texts(info, &mut texts);
    texts
        .iter()
        .filter_map(|t| version_in_info(t))
        .min()
        .ok_or_else(|| RedisError::Reply {
            command: "INFO server",
            detail: "no redis_version".into(),
        })
}

/// Every text in an `INFO` reply: one server's, or a cluster's map of them.
fn info_texts(value: Value, texts: &mut Vec<String>) {
    match value {
        Value::BulkString(bytes) => texts.push(String::from_utf8_lossy(&bytes).into_owned()),
        Value::SimpleString(text) => texts.push(text),
        Value::VerbatimString { text, .. } => texts.push(text),
        Value::Array(items) | Value::Set(items) => {
            items.into_iter().for_each(|v| info_texts(v, texts))
        }
        Value::Map(pairs) => pairs.into_iter().for_each(|(_, v)| info_texts(v, texts)),
        _ => {}
    }
}

/// `redis_version:7.0.15` → `(7, 0)`.
fn version_in_info(info: &str) -> Option<(u32, u32)> {
    let version = info
        .lines()
        .find_map(|line| line.trim().strip_prefix("redis_version:"))?;
    let mut parts = version.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_read_from_info() {
        let info = "# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\n";
        assert_eq!(version_in_info(info), Some((7, 0)));
        assert_eq!(version_in_info("redis_version:6.2.14\n"), Some((6, 2)));
        assert_eq!(version_in_info("# Server\nredis_mode:standalone\n"), None);
        let mut texts = Vec::new();
        let cluster = Value::Map(vec![
            (
                Value::SimpleString("a:7000".into()),
                Value::VerbatimString {
                    format: redis::VerbatimFormat::Text,
                    text: "redis_version:7.2.4\n".into(),
                },
            ),
            (
                Value::SimpleString("b:7001".into()),
                Value::BulkString(b"redis_version:6.2.1\n".to_vec()),
            ),
        ]);
        info_texts(cluster, &mut texts);
        assert_eq!(
            texts.iter().filter_map(|t| version_in_info(t)).min(),
            Some((6, 2))
        );
    }

    #[test]
    fn slots_are_those_redis_computes() {
        // Values from CLUSTER KEYSLOT (and the cluster specification's examples).
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"hello"), 866);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(
            key_slot(b"foo{}{bar}"),
            crc16::State::<crc16::XMODEM>::calculate(b"foo{}{bar}") % 16384
        );
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
    }

    #[test]
    fn a_pipeline_groups_by_the_slot_of_each_key() {
        let mut pipe = redis::pipe();
        pipe.cmd("XACK").arg("events:{0}").arg("g").arg("1-0");
        pipe.cmd("EVALSHA")
            .arg("abc")
            .arg(2)
            .arg("re:{r1}:d:x")
            .arg("re:{r1}:cd:y");
        pipe.cmd("XACK").arg("events:{0}").arg("g").arg("2-0");
        pipe.cmd("EVALSHA").arg("abc").arg(0).arg("argument");
        pipe.cmd("HMGET").arg("re:{r2}:cd:z").arg("s");
        assert_eq!(slot_groups(&pipe), vec![vec![0, 2, 3], vec![1], vec![4]]);
        assert_eq!(command_key(&redis::cmd("PING")), None);
    }
}
