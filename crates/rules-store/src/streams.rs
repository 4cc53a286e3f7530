//! Redis Streams plumbing shared by the worker and the tools that feed or inspect it.

use crate::redis::RedisError;

/// Creates the consumer group on `stream` (and the stream itself, MKSTREAM) when
/// absent. A new group starts at `$`: it sees what is produced after it exists, and
/// never replays a stream's history on a fresh deployment. BUSYGROUP (the group
/// exists already) is success.
pub async fn ensure_group<C>(conn: &mut C, stream: &str, group: &str) -> Result<(), RedisError>
where
    C: redis::aio::ConnectionLike + Send,
{
    ensure_group_from(conn, stream, group, "$").await
}

/// Like [`ensure_group`], with the id a newly created group starts after (`$`: new
/// entries only; `0`: everything in the stream).
pub async fn ensure_group_from<C>(
    conn: &mut C,
    stream: &str,
    group: &str,
    start: &str,
) -> Result<(), RedisError>
where
    C: redis::aio::ConnectionLike + Send,
{
    let created: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(group)
        .arg(start)
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match created {
        Ok(()) => {
            tracing::info!(stream, group, "consumer group created");
            Ok(())
        }
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        Err(e) => Err(e.into()),
    }
}
