//! Servers a test starts itself, on free ports in a temporary directory, so faults
//! (a restart, a kill, an outage) never touch the machine's own services.

use anyhow::Context as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use uuid::Uuid;

use crate::free_port;

/// A `redis-server` of the test's own, persisting every write (AOF, fsync always),
/// so a restart keeps the streams; killed when dropped.
pub struct OwnRedis {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
    /// Whether the next start appends every write to its AOF (otherwise it only
    /// loads `dump.rdb`, if there is one).
    append_only: bool,
}

impl OwnRedis {
    pub fn start() -> anyhow::Result<Self> {
        Self::start_on(free_port()?)
    }

    /// On a given port (one a process under test already waits for).
    pub fn start_on(port: u16) -> anyhow::Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("rules-e2e-redis-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let mut redis = Self {
            port,
            dir,
            child: None,
            append_only: true,
        };
        redis.spawn()?;
        Ok(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Makes the server answer nothing for `seconds` (`DEBUG SLEEP`, as a long fsync
    /// or a slow script would), from a connection of its own; returns once the pause
    /// is under way, with the task that ends with it.
    pub async fn pause(
        &self,
        seconds: f64,
    ) -> anyhow::Result<tokio::task::JoinHandle<redis::RedisResult<()>>> {
        let mut conn =
            rules_store::redis::dedicated_connection(&self.url(), Duration::from_secs(1), None)
                .await?;
        let pause = tokio::spawn(async move {
            redis::cmd("DEBUG")
                .arg("SLEEP")
                .arg(seconds)
                .query_async::<()>(&mut conn)
                .await
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(pause)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendfsync", "always"])
            // DEBUG RELOAD: a test can make it load its data again, as after a restart.
            .args(["--enable-debug-command", "local"])
            .args(["--appendonly", if self.append_only { "yes" } else { "no" }])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start redis-server (make services installs it)")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "redis-server did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Starts it again on the same port and directory (its AOF restores the data).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill()?;
        self.spawn()
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Waits (bounded) for a server asked to stop (`SHUTDOWN`) to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        if let Some(child) = self.child.as_mut() {
            while child.try_wait()?.is_none() {
                anyhow::ensure!(Instant::now() < deadline, "redis-server still running");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.child = None;
        Ok(())
    }

    /// Starts it again if it is not running (after a `SHUTDOWN`), from its files.
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.child.is_none(), "redis-server is running");
        self.spawn()
    }

    /// Kills it and starts it empty: what a server without persistence comes back as.
    pub fn restart_empty(&mut self) -> anyhow::Result<()> {
        self.kill()?;
        self.clear_dir()?;
        self.spawn()
    }

    /// Copies the current data set (a synchronous `SAVE`) to `to`.
    pub fn snapshot(&self, to: &std::path::Path) -> anyhow::Result<()> {
        let client = redis::Client::open(self.url())?;
        let mut conn = client.get_connection()?;
        redis::cmd("SAVE").query::<()>(&mut conn)?;
        std::fs::copy(self.dir.join("dump.rdb"), to).context("copy dump.rdb")?;
        Ok(())
    }

    /// Kills it and starts it from the older snapshot `from` (a restore from backup),
    /// appending to a fresh AOF from then on.
    pub fn restore(&mut self, from: &std::path::Path) -> anyhow::Result<()> {
        self.kill()?;
        self.clear_dir()?;
        std::fs::copy(from, self.dir.join("dump.rdb")).context("restore dump.rdb")?;
        self.append_only = false;
        self.spawn()?;
        self.append_only = true;
        let client = redis::Client::open(self.url())?;
        let mut conn = client.get_connection()?;
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("appendonly")
            .arg("yes")
            .query::<()>(&mut conn)?;
        Ok(())
    }

    fn clear_dir(&self) -> anyhow::Result<()> {
        std::fs::remove_dir_all(&self.dir)?;
        std::fs::create_dir_all(&self.dir)?;
        Ok(())
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A PostgreSQL cluster of the test's own (`initdb` + `pg_ctl` from Debian's
/// `/usr/lib/postgresql/<version>/bin`, as the `postgres` user when the test runs as
/// root), in a temporary directory on a free port, trust authentication; stopped and
/// removed when dropped. Restarted, stopped and started by the test, never the
/// machine's own server.
pub struct OwnPostgres {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
    /// uid and gid to run as (the `postgres` user when the test is root).
    user: Option<(u32, u32)>,
    /// Whether the server was given a certificate (`ssl=on`).
    tls: bool,
}

impl OwnPostgres {
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(None)
    }

    /// A cluster serving TLS with the given certificate chain and key (PEM), and
    /// plain connections too (trust authentication either way): the client's
    /// `sslmode` decides.
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> anyhow::Result<Self> {
        Self::start_with(Some((cert_pem, key_pem)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> anyhow::Result<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .context("PostgreSQL binaries in /usr/lib/postgresql (make services installs them)")?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("pg_ctl").exists())
            .max()
            .context("no /usr/lib/postgresql/<version>/bin/pg_ctl")?;
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!("rules-e2e-pg-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let user = if id(&["-u"])? == 0 {
            let uid = id(&["-u", "postgres"])?;
            let gid = id(&["-g", "postgres"])?;
            let status = Command::new("chown")
                .arg(format!("{uid}:{gid}"))
                .arg(&dir)
                .status()?;
            anyhow::ensure!(status.success(), "chown {}", dir.display());
            Some((uid, gid))
        } else {
            None
        };
        let pg = Self {
            port,
            dir,
            bin,
            user,
            tls: tls.is_some(),
        };
        pg.run(
            "initdb",
            &[
                "-D",
                "data",
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        if let Some((cert, key)) = tls {
            pg.write_owned("data/server.crt", cert, 0o644)?;
            // PostgreSQL refuses a key others can read.
            pg.write_owned("data/server.key", key, 0o600)?;
        }
        pg.start_server()?;
        Ok(pg)
    }

    /// Writes a file in the cluster's directory, owned by the server's user.
    fn write_owned(&self, relative: &str, text: &str, mode: u32) -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.dir.join(relative);
        std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
        if let Some((uid, gid)) = self.user {
            std::os::unix::fs::chown(&path, Some(uid), Some(gid))?;
        }
        Ok(())
    }

    /// The URL of database `name` on it.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    fn run(&self, program: &str, args: &[&str]) -> anyhow::Result<()> {
        use std::os::unix::process::CommandExt as _;
        let mut cmd = Command::new(self.bin.join(program));
        cmd.args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some((uid, gid)) = self.user {
            cmd.uid(uid).gid(gid);
        }
        let out = cmd.output().with_context(|| format!("run {program}"))?;
        anyhow::ensure!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start_server(&self) -> anyhow::Result<()> {
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        if self.tls {
            options.push_str(" -c ssl=on");
        }
        self.run(
            "pg_ctl",
            &[
                "-D", "data", "-l", "log", "-w", "-t", "30", "-o", &options, "start",
            ],
        )
    }

    /// Stops it: `immediate` is a crash (no checkpoint, connections cut), `fast` an
    /// orderly stop.
    pub fn stop(&self, mode: &str) -> anyhow::Result<()> {
        self.run("pg_ctl", &["-D", "data", "-m", mode, "-w", "stop"])
    }

    /// A crash and a start again.
    pub fn restart(&self) -> anyhow::Result<()> {
        self.stop("immediate")?;
        self.start_server()
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self.stop("immediate");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `id <args>` as a number.
fn id(args: &[&str]) -> anyhow::Result<u32> {
    let out = Command::new("id").args(args).output().context("run id")?;
    anyhow::ensure!(out.status.success(), "id {args:?} failed");
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
}

/// A Redis Cluster of the test's own: `scripts/cluster.sh` (the one that `make
/// cluster` runs) with three masters on free loopback ports and a temporary
/// directory; stopped and removed when dropped.
pub struct OwnCluster {
    pub base_port: u16,
    /// Replicas per master.
    pub replicas: u16,
    dir: PathBuf,
}

impl OwnCluster {
    pub const MASTERS: u16 = 3;

    /// Three masters, no replicas.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with_replicas(0)
    }

    /// Three masters with `replicas` replicas each (a failover needs one).
    pub fn start_with_replicas(replicas: u16) -> anyhow::Result<Self> {
        let nodes = Self::MASTERS * (1 + replicas);
        let mut last_error = String::from("no free range of ports was found");
        let (mut candidates, mut starts) = (0, 0);
        // Bases from 2,000 to 10,999, buses (port + 10,000) below 21,000: clear of
        // the kernel's ephemeral ports (from 32,768), which parallel tests' free_port
        // hands out, and of `make test-cluster`'s cluster (21,000 to 32,705). Ports
        // in use there (another test's cluster, a machine service) are skipped.
        while candidates < 500 && starts < 10 {
            candidates += 1;
            let base = 2_000 + (Uuid::new_v4().as_u128() % 9_000) as u16;
            // Each node also listens on its port + 10000 (the cluster bus).
            let ports = (0..nodes).flat_map(|i| [base + i, base + i + 10_000]);
            if !ports.into_iter().all(port_is_free) {
                continue;
            }
            starts += 1;
            let cluster = Self {
                base_port: base,
                replicas,
                dir: std::env::temp_dir()
                    .join(format!("rules-e2e-cluster-{base}-{}", std::process::id())),
            };
            let out = cluster.script("start")?;
            if out.status.success() {
                return Ok(cluster);
            }
            last_error = String::from_utf8_lossy(&out.stderr).into_owned();
        }
        anyhow::bail!(
            "no Redis Cluster could be started ({candidates} port ranges tried, {starts} \
             started): {last_error}"
        )
    }

    /// The cluster's directory (removed when it stops): a place for the logs of
    /// the processes a test runs against it.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// The seed URLs, one per node.
    pub fn urls(&self) -> Vec<String> {
        (0..Self::MASTERS * (1 + self.replicas))
            .map(|i| format!("redis://127.0.0.1:{}", self.base_port + i))
            .collect()
    }

    /// Fails over, gracefully (`CLUSTER FAILOVER` on its replica, which first
    /// catches up), the master serving `key`'s slot; returns the new master's port.
    pub async fn fail_over_master_of(&self, key: &str) -> anyhow::Result<u16> {
        let (_, replica) = self.master_and_replica(key).await?;
        let mut conn = self.node(replica.port).await?;
        let _: String = redis::cmd("CLUSTER")
            .arg("FAILOVER")
            .query_async(&mut conn)
            .await?;
        Ok(replica.port)
    }

    /// Kills (SIGKILL) the master serving `key`'s slot once its replica has every
    /// write the master had when asked (so what is lost is what arrives after);
    /// returns the port of that replica, which the cluster promotes once the master
    /// has been unreachable for the node timeout (2 s).
    pub async fn kill_master_of(&self, key: &str) -> anyhow::Result<u16> {
        let (master, replica) = self.master_and_replica(key).await?;
        let offset = |info: String, field: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(field)?.trim().parse::<u64>().ok())
                .with_context(|| format!("no {field} in {info}"))
        };
        let info = |port| async move {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query_async(&mut self.node(port).await?)
                .await?;
            anyhow::Ok(info)
        };
        let written = offset(info(master.port).await?, "master_repl_offset:")?;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while offset(info(replica.port).await?, "slave_repl_offset:")? < written {
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "the replica {} did not catch up",
                replica.port
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.kill_node(master.port)?;
        Ok(replica.port)
    }

    /// Kills (SIGKILL) the master serving `key`'s slot, whatever its replicas;
    /// returns its port. On a cluster without replicas the slot stays unserved.
    pub async fn kill_master_serving(&self, key: &str) -> anyhow::Result<u16> {
        let port = self.master_port_of(key).await?;
        self.kill_node(port)?;
        Ok(port)
    }

    fn kill_node(&self, port: u16) -> anyhow::Result<()> {
        let pid_file = self.dir.join(port.to_string()).join("redis.pid");
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .with_context(|| format!("read {}", pid_file.display()))?
            .trim()
            .parse()?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .with_context(|| format!("SIGKILL the node on {port}"))?;
        Ok(())
    }

    /// Moves `key`'s slot, and every key in it, from the master serving it to
    /// another master, as `redis-cli --cluster reshard` does: the slot `IMPORTING` on
    /// the target and `MIGRATING` on the source, its keys moved by `MIGRATE`, `batch`
    /// at a time with a pause of `pause` between batches (so clients meet the slot
    /// half moved: `ASK` and `TRYAGAIN`), then the slot given to the target on every
    /// master.
    pub async fn migrate_slot_of(
        &self,
        key: &str,
        batch: usize,
        pause: Duration,
    ) -> anyhow::Result<Migration> {
        let slot = rules_store::redis::key_slot(key.as_bytes());
        let nodes = self.nodes().await?;
        let source = master_of(&nodes, slot)?;
        let target = nodes
            .iter()
            .find(|n| n.master_id.is_none() && n.id != source.id)
            .context("no other master")?;
        let setslot = |state: &'static str, id: &str| {
            let mut cmd = redis::cmd("CLUSTER");
            cmd.arg("SETSLOT").arg(slot).arg(state).arg(id);
            cmd
        };
        let mut to = self.node(target.port).await?;
        let mut from = self.node(source.port).await?;
        let mut moved = 0;
        let () = setslot("IMPORTING", &source.id)
            .query_async(&mut to)
            .await?;
        let () = setslot("MIGRATING", &target.id)
            .query_async(&mut from)
            .await?;
        loop {
            let keys: Vec<Vec<u8>> = redis::cmd("CLUSTER")
                .arg("GETKEYSINSLOT")
                .arg(slot)
                .arg(batch)
                .query_async(&mut from)
                .await?;
            if keys.is_empty() {
                break;
            }
            moved += keys.len();
            // No REPLACE: a key on both nodes would be a client writing the wrong one.
            let () = redis::cmd("MIGRATE")
                .arg("127.0.0.1")
                .arg(target.port)
                .arg("")
                .arg(0)
                .arg(10_000)
                .arg("KEYS")
                .arg(keys)
                .query_async(&mut from)
                .await
                .with_context(|| format!("MIGRATE slot {slot}"))?;
            tokio::time::sleep(pause).await;
        }
        let () = setslot("NODE", &target.id).query_async(&mut to).await?;
        let () = setslot("NODE", &target.id).query_async(&mut from).await?;
        for other in nodes
            .iter()
            .filter(|n| n.master_id.is_none() && n.id != source.id && n.id != target.id)
        {
            let () = setslot("NODE", &target.id)
                .query_async(&mut self.node(other.port).await?)
                .await?;
        }
        Ok(Migration {
            from: source.port,
            to: target.port,
            keys: moved,
        })
    }

    /// The master serving `key`'s slot and a replica of it.
    async fn master_and_replica(&self, key: &str) -> anyhow::Result<(ClusterNode, ClusterNode)> {
        let slot = rules_store::redis::key_slot(key.as_bytes());
        let nodes = self.nodes().await?;
        let master = master_of(&nodes, slot)?;
        let replica = nodes
            .iter()
            .find(|n| n.master_id.as_deref() == Some(master.id.as_str()))
            .with_context(|| format!("the master of slot {slot} has no replica"))?;
        Ok((master.clone(), replica.clone()))
    }

    /// The port of the master serving `key`'s slot.
    pub async fn master_port_of(&self, key: &str) -> anyhow::Result<u16> {
        let slot = rules_store::redis::key_slot(key.as_bytes());
        Ok(master_of(&self.nodes().await?, slot)?.port)
    }

    /// The cluster's nodes as the first node that answers sees them (`CLUSTER
    /// NODES`; a killed node answers nothing).
    async fn nodes(&self) -> anyhow::Result<Vec<ClusterNode>> {
        let mut last_error = None;
        for port in (0..Self::MASTERS * (1 + self.replicas)).map(|i| self.base_port + i) {
            let table = async {
                let table: String = redis::cmd("CLUSTER")
                    .arg("NODES")
                    .query_async(&mut self.node(port).await?)
                    .await?;
                anyhow::Ok(table)
            };
            match table.await {
                Ok(table) => return table.lines().map(ClusterNode::parse).collect(),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("the cluster has no nodes")))
    }

    async fn node(&self, port: u16) -> anyhow::Result<redis::aio::MultiplexedConnection> {
        Ok(rules_store::redis::dedicated_connection(
            &format!("redis://127.0.0.1:{port}"),
            Duration::from_secs(1),
            Some(Duration::from_secs(10)),
        )
        .await?)
    }

    fn script(&self, command: &str) -> anyhow::Result<std::process::Output> {
        Command::new(crate::workspace_root().join("scripts/cluster.sh"))
            .arg(command)
            .env("BASE_PORT", self.base_port.to_string())
            .env("MASTERS", Self::MASTERS.to_string())
            .env("REPLICAS", self.replicas.to_string())
            .env("CLUSTER_DIR", &self.dir)
            .stdin(Stdio::null())
            .output()
            .context("scripts/cluster.sh")
    }
}

/// A slot moved by [`OwnCluster::migrate_slot_of`].
#[derive(Debug)]
pub struct Migration {
    /// The port of the master that served it.
    pub from: u16,
    /// The port of the master serving it now.
    pub to: u16,
    /// How many keys moved with it.
    pub keys: usize,
}

/// A line of `CLUSTER NODES`:
/// `<id> <ip:port@bus> <flags> <master id or -> <ping> <pong> <epoch> <link> <slots…>`.
#[derive(Clone)]
struct ClusterNode {
    id: String,
    port: u16,
    /// Its master's id when it is a replica.
    master_id: Option<String>,
    /// The slot ranges it serves (a master), inclusive.
    slots: Vec<(u16, u16)>,
}

impl ClusterNode {
    fn parse(line: &str) -> anyhow::Result<Self> {
        let fields: Vec<&str> = line.split(' ').collect();
        anyhow::ensure!(fields.len() >= 8, "not a CLUSTER NODES line: {line}");
        let port = fields[1]
            .split(['@', ':'])
            .nth(1)
            .context("node address")?
            .parse()?;
        // Ranges "a-b" or single slots; "[slot->-id]" marks a migration in progress.
        let slots = fields[8..]
            .iter()
            .filter(|range| !range.starts_with('['))
            .map(|range| {
                let mut bounds = range.split('-').map(str::parse::<u16>);
                match (bounds.next(), bounds.next()) {
                    (Some(a), Some(b)) => Ok((a?, b?)),
                    (Some(a), None) => {
                        let a = a?;
                        Ok((a, a))
                    }
                    _ => anyhow::bail!("slot range {range}"),
                }
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            id: fields[0].to_owned(),
            port,
            master_id: (fields[3] != "-").then(|| fields[3].to_owned()),
            slots,
        })
    }
}

/// The master serving `slot`.
fn master_of(nodes: &[ClusterNode], slot: u16) -> anyhow::Result<&ClusterNode> {
    nodes
        .iter()
        .find(|n| n.master_id.is_none() && n.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
        .with_context(|| format!("no master serves slot {slot}"))
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = self.script("stop");
    }
}

fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}
