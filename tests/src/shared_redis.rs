//! The Redis a test talks to: the shared one (one server, or a Redis Cluster when
//! `make test-cluster` runs the suites against one) or a server of the test's own.
//!
//! `TEST_REDIS_URL` names the shared server (default the machine's, db 0);
//! `TEST_REDIS_CLUSTER`, when set, lists a cluster's seed URLs, comma-separated, and
//! takes precedence: every suite that uses the shared Redis then runs on the cluster,
//! and the api and workers it starts get `RULES__REDIS__CLUSTER=true`.

use anyhow::Context as _;
use rules_store::config::RedisSettings;
use rules_store::redis::Link;
use std::time::Duration;

/// Where a test's Redis is and whether it is a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisUnderTest {
    /// A server's URL, or a cluster's seed URLs, comma-separated.
    pub url: String,
    pub cluster: bool,
}

impl RedisUnderTest {
    /// The Redis the tests share.
    pub fn shared() -> Self {
        match std::env::var("TEST_REDIS_CLUSTER") {
            Ok(seeds) if !seeds.trim().is_empty() => Self {
                url: seeds,
                cluster: true,
            },
            _ => Self::server(
                std::env::var("TEST_REDIS_URL")
                    .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into()),
            ),
        }
    }

    /// One server at `url` (a test's own, for faults).
    pub fn server(url: String) -> Self {
        Self {
            url,
            cluster: false,
        }
    }

    /// The environment that points a service binary at this Redis.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("REDIS_URL", self.url.clone()),
            ("RULES__REDIS__CLUSTER", self.cluster.to_string()),
        ]
    }

    /// Settings of a connection to it, bounds as generous as a loaded machine needs.
    pub fn settings(&self) -> RedisSettings {
        RedisSettings {
            url: self.url.clone(),
            cluster: self.cluster,
            pool_size: 2,
            acquire_timeout_ms: 10_000,
            connect_timeout_ms: 5_000,
            response_timeout_ms: 10_000,
        }
    }

    /// A connection of its own (on a cluster, a cluster client routing by slot).
    pub async fn conn(&self) -> anyhow::Result<Link> {
        rules_store::redis::dedicated(
            &self.settings(),
            Duration::from_secs(5),
            Some(Duration::from_secs(10)),
        )
        .await
        .with_context(|| format!("connect to the test Redis {}", self.url))
    }

    /// Deletes every key matching `pattern` (`KEYS` syntax), on every master of a
    /// cluster, one `DEL` per key in one pipeline per node (keys of different slots never
    /// share a command).
    /// Blocking: for `Drop`, on a thread of its own.
    pub fn delete_matching(&self, pattern: &str) -> anyhow::Result<()> {
        let nodes: Vec<String> = if self.cluster {
            rules_store::redis::cluster_seeds(&self.url)
                .into_iter()
                .map(str::to_owned)
                .collect()
        } else {
            vec![self.url.clone()]
        };
        let pattern = pattern.to_owned();
        let cluster = self.cluster;
        std::thread::spawn(move || -> anyhow::Result<()> {
            for node in nodes {
                let mut conn = redis::Client::open(node.as_str())?
                    .get_connection_with_timeout(Duration::from_secs(5))?;
                if cluster {
                    // A replica lists its master's keys and refuses to delete them.
                    let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut conn)?;
                    let is_master = matches!(role.first(),
                        Some(redis::Value::BulkString(b)) if b.as_slice() == b"master");
                    if !is_master {
                        continue;
                    }
                }
                let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg(&pattern).query(&mut conn)?;
                if keys.is_empty() {
                    continue;
                }
                let mut pipe = redis::pipe();
                for key in keys {
                    pipe.cmd("DEL").arg(key).ignore();
                }
                pipe.query::<()>(&mut conn)?;
            }
            Ok(())
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the thread deleting {} panicked", self.url))?
    }
}
