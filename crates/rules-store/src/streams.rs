//! The Redis Streams protocol, in one place: entry ids, binary-safe entries, and the
//! commands the worker, the backtest and the load tool use (group creation,
//! XREADGROUP, XPENDING, XCLAIM, XACK, XRANGE/XREVRANGE, XADD).
//!
//! Replies are read as raw [`redis::Value`]s, or on the reader's own connection as
//! the reply's frames ([`ReplyNode`]), and decoded here entry by entry, names and
//! values as bytes: an entry that is not what a producer should send (a field
//! name that is not UTF-8, say) is decoded like any other and judged later by the
//! event parser, and never makes the rest of its reply unreadable.

use chrono::{DateTime, TimeZone, Utc};
use futures_util::future::BoxFuture;
use redis::Value;
use std::fmt;
use std::str::FromStr;

use crate::redis::RedisError;

/// A stream entry id, `<milliseconds>-<sequence>`, ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId {
    pub ms: u64,
    pub seq: u64,
}

impl EntryId {
    /// The first id at or after `time` (sequence 0); `None` before 1970.
    pub fn first_at(time: DateTime<Utc>) -> Option<Self> {
        let ms = u64::try_from(time.timestamp_millis()).ok()?;
        Some(Self { ms, seq: 0 })
    }

    /// The last possible id of `time`'s millisecond; `None` before 1970.
    pub fn last_at(time: DateTime<Utc>) -> Option<Self> {
        let ms = u64::try_from(time.timestamp_millis()).ok()?;
        Some(Self { ms, seq: u64::MAX })
    }

    /// The time Redis gave the entry when it was added.
    pub fn time(&self) -> Option<DateTime<Utc>> {
        let ms = i64::try_from(self.ms).ok()?;
        Utc.timestamp_millis_opt(ms).single()
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.spell(&mut [0; ID_TEXT_MAX]))
    }
}

/// The longest id's text: two u64 of at most 20 digits each, and the dash.
const ID_TEXT_MAX: usize = 41;

impl EntryId {
    /// Its text, `<ms>-<seq>`, written into `text` without the formatting machinery:
    /// its command argument, its `Display` (`to_string`) and the gate's token.
    fn spell<'t>(&self, text: &'t mut [u8; ID_TEXT_MAX]) -> &'t str {
        let (mut ms, mut seq) = (itoa::Buffer::new(), itoa::Buffer::new());
        let (ms, seq) = (ms.format(self.ms), seq.format(self.seq));
        let end = ms.len() + 1 + seq.len();
        text[..ms.len()].copy_from_slice(ms.as_bytes());
        text[ms.len()] = b'-';
        text[ms.len() + 1..end].copy_from_slice(seq.as_bytes());
        // Digits and a dash: always UTF-8.
        std::str::from_utf8(&text[..end]).unwrap_or_default()
    }
}

/// An id as a command's argument, `<ms>-<seq>`, written without an allocation or
/// the formatting machinery: an XACK names a commit's thousands of ids (formatting
/// them with `to_string` was 2.5% of a drain's worker instructions).
impl redis::ToRedisArgs for EntryId {
    fn write_redis_args<W>(&self, out: &mut W)
    where
        W: ?Sized + redis::RedisWrite,
    {
        out.write_arg(self.spell(&mut [0; ID_TEXT_MAX]).as_bytes());
    }
}

/// A text that is not a stream entry id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a stream entry id: {0:?}")]
pub struct BadEntryId(pub String);

impl FromStr for EntryId {
    type Err = BadEntryId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadEntryId(text.chars().take(64).collect());
        let (ms, seq) = text.split_once('-').unwrap_or((text, "0"));
        Ok(Self {
            ms: ms.parse().map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
        })
    }
}

/// An entry's fields as Redis holds them: names and values as bytes, in order.
pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// What a reply holds for one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Fields(Fields),
    /// The id is still pending but the entry was deleted (XDEL, trimming): there is
    /// nothing to process, only to acknowledge.
    Deleted,
    /// Redis answered something that is not a list of fields (it should not).
    Malformed(String),
}

/// One stream entry as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    pub id: EntryId,
    pub body: Body,
}

/// The gate's name for the entry `id` of `stream` (the `token` of a decision): the
/// worker's and the backtest's.
pub fn token(stream: &str, id: EntryId) -> String {
    let mut text = [0; ID_TEXT_MAX];
    let id = id.spell(&mut text);
    let mut token = String::with_capacity(stream.len() + 1 + id.len());
    token.push_str(stream);
    token.push('/');
    token.push_str(id);
    token
}

/// Errors of the stream commands.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Redis(#[from] RedisError),
    #[error("unexpected reply to {command}: {detail}")]
    Reply {
        command: &'static str,
        detail: String,
    },
}

impl From<redis::RedisError> for StreamError {
    fn from(e: redis::RedisError) -> Self {
        Self::Redis(e.into())
    }
}

impl StreamError {
    /// The Redis error code (`NOGROUP`, `BUSYGROUP`, ...), if Redis answered one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Redis(RedisError::Command(e)) => e.code(),
            _ => None,
        }
    }
}

fn reply_error(command: &'static str, detail: impl Into<String>) -> StreamError {
    StreamError::Reply {
        command,
        detail: detail.into(),
    }
}

/// A node of a reply as the decoders below read it: redis-rs's [`Value`], or a frame
/// of the reader's own connection ([`crate::wire`]), decoded straight into entries
/// without building `Value`s first (a drain's reads spent 9% of the worker building
/// them). One decoder for both, so they cannot disagree.
pub trait ReplyNode: Sized + fmt::Debug {
    type Items: ExactSizeIterator<Item = Self>;
    fn is_nil(&self) -> bool;
    /// The items of an array (or set); the node back when it is not one.
    fn into_items(self) -> Result<Self::Items, Self>;
    /// The pairs of a map (RESP3); the node back when it is not one.
    fn into_pairs(self) -> Result<Vec<(Self, Self)>, Self>;
    /// A string's bytes (an integer's digits); `None` for anything else.
    fn into_bytes(self) -> Option<Vec<u8>>;
}

impl ReplyNode for Value {
    type Items = std::vec::IntoIter<Value>;

    fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    fn into_items(self) -> Result<Self::Items, Self> {
        match self {
            Value::Array(v) | Value::Set(v) => Ok(v.into_iter()),
            other => Err(other),
        }
    }

    fn into_pairs(self) -> Result<Vec<(Self, Self)>, Self> {
        match self {
            Value::Map(pairs) => Ok(pairs),
            other => Err(other),
        }
    }

    fn into_bytes(self) -> Option<Vec<u8>> {
        match self {
            Value::BulkString(b) => Some(b),
            Value::SimpleString(s) => Some(s.into_bytes()),
            Value::Int(i) => Some(i.to_string().into_bytes()),
            Value::VerbatimString { text, .. } => Some(text.into_bytes()),
            _ => None,
        }
    }
}

/// The two items of a two-item list (`[id, fields]`, `[name, entries]`).
fn two<I: ExactSizeIterator>(mut items: I) -> Option<(I::Item, I::Item)> {
    match (items.len(), items.next(), items.next()) {
        (2, Some(a), Some(b)) => Some((a, b)),
        _ => None,
    }
}

fn text<N: ReplyNode>(node: N) -> Option<String> {
    node.into_bytes().and_then(|b| String::from_utf8(b).ok())
}

fn body<N: ReplyNode>(node: N) -> Body {
    if node.is_nil() {
        return Body::Deleted;
    }
    match node.into_items() {
        Ok(mut flat) => {
            if flat.len() % 2 != 0 {
                return Body::Malformed(format!("{} field items (odd)", flat.len()));
            }
            let pairs = flat.len() / 2;
            fields(
                std::iter::from_fn(|| Some((flat.next()?, flat.next()?))),
                pairs,
            )
        }
        Err(node) => match node.into_pairs() {
            Ok(pairs) => {
                let n = pairs.len();
                fields(pairs.into_iter(), n)
            }
            Err(other) => Body::Malformed(format!("{:.80}", format!("{other:?}"))),
        },
    }
}

/// The fields of an entry from its `n` (name, value) pairs.
fn fields<N: ReplyNode>(pairs: impl Iterator<Item = (N, N)>, n: usize) -> Body {
    let mut fields = Vec::with_capacity(n);
    for (k, v) in pairs {
        match (k.into_bytes(), v.into_bytes()) {
            (Some(k), Some(v)) => fields.push((k, v)),
            _ => return Body::Malformed("a field that is not a string".into()),
        }
    }
    Body::Fields(fields)
}

/// Decodes a list of entries (XRANGE, XREVRANGE, XCLAIM, and each stream of an
/// XREADGROUP reply). Only a reply that is not a list at all, or an id that is not
/// an id, is an error; any entry's content is decoded on its own.
pub fn parse_entries<N: ReplyNode>(
    command: &'static str,
    node: N,
) -> Result<Vec<StreamEntry>, StreamError> {
    if node.is_nil() {
        return Ok(Vec::new());
    }
    let list = node
        .into_items()
        .map_err(|_| reply_error(command, "not a list of entries"))?;
    let mut entries = Vec::with_capacity(list.len());
    for item in list {
        // XCLAIM answers nil for an id it could not claim (deleted meanwhile).
        let Ok(pair) = item.into_items() else {
            continue;
        };
        let (id, fields) =
            two(pair).ok_or_else(|| reply_error(command, "an entry that is not [id, fields]"))?;
        let id = text(id).ok_or_else(|| reply_error(command, "an entry id that is not text"))?;
        let id = id
            .parse()
            .map_err(|e: BadEntryId| reply_error(command, e.to_string()))?;
        entries.push(StreamEntry {
            id,
            body: body(fields),
        });
    }
    Ok(entries)
}

/// An XREADGROUP/XREAD reply: entries per stream name.
pub type ReadReply = Vec<(String, Vec<StreamEntry>)>;

/// Decodes an XREADGROUP/XREAD reply: entries per stream name (nil: nothing new).
pub fn parse_read_reply<N: ReplyNode>(node: N) -> Result<ReadReply, StreamError> {
    const COMMAND: &str = "XREADGROUP";
    if node.is_nil() {
        return Ok(Vec::new());
    }
    let per_stream: Vec<(N, N)> = match node.into_items() {
        Ok(streams) => streams
            .map(|s| {
                s.into_items()
                    .ok()
                    .and_then(two)
                    .ok_or_else(|| reply_error(COMMAND, "a stream that is not [name, entries]"))
            })
            .collect::<Result<_, StreamError>>()?,
        Err(node) => node
            .into_pairs()
            .map_err(|_| reply_error(COMMAND, "not a list of streams"))?,
    };
    per_stream
        .into_iter()
        .map(|(name, entries)| {
            let name =
                text(name).ok_or_else(|| reply_error(COMMAND, "a stream name that is not text"))?;
            Ok((name, parse_entries(COMMAND, entries)?))
        })
        .collect()
}

/// A connection XREADGROUP replies are read on: any, through redis-rs's `Value`s
/// ([`read_as_values`]); the reader's own ([`crate::wire::WireConnection`]), straight
/// from the reply's frames.
pub trait EntryReader: redis::aio::ConnectionLike + Send {
    /// Sends `cmd` (an XREADGROUP or XREAD) and decodes its reply.
    fn read_entries<'a>(&'a mut self, cmd: &'a redis::Cmd) -> BoxFuture<'a, ReadResult>;
}

/// What [`EntryReader::read_entries`] answers.
pub type ReadResult = Result<ReadReply, StreamError>;

/// [`EntryReader::read_entries`] through redis-rs's `Value`s.
pub async fn read_as_values<C>(conn: &mut C, cmd: &redis::Cmd) -> ReadResult
where
    C: redis::aio::ConnectionLike + Send,
{
    let reply: Value = cmd.query_async(conn).await?;
    parse_read_reply(reply)
}

impl EntryReader for redis::aio::MultiplexedConnection {
    fn read_entries<'a>(&'a mut self, cmd: &'a redis::Cmd) -> BoxFuture<'a, ReadResult> {
        Box::pin(read_as_values(self, cmd))
    }
}

/// Creates the consumer group on `stream` (and the stream itself, MKSTREAM) when
/// absent, starting after `start` (`$`: only what is produced from now on, so a fresh
/// deployment never replays a stream's history; `0`: everything in the stream).
/// BUSYGROUP (the group exists already) is success.
pub async fn ensure_group<C>(
    conn: &mut C,
    stream: &str,
    group: &str,
    start: &str,
) -> Result<(), StreamError>
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
            tracing::info!(stream, group, start, "consumer group created");
            Ok(())
        }
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Where an XREADGROUP starts on each stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    /// Entries never delivered to any consumer (`>`).
    New,
    /// This consumer's own pending entries after `id` (`0` for all).
    OwnPendingAfter(EntryId),
}

/// XREADGROUP on `streams`, `count` entries at most per stream, blocking up to
/// `block_ms` for new entries when given.
pub async fn read_group<C>(
    conn: &mut C,
    group: &str,
    consumer: &str,
    streams: &[&str],
    from: ReadFrom,
    count: usize,
    block_ms: Option<u64>,
) -> ReadResult
where
    C: EntryReader,
{
    let mut cmd = redis::cmd("XREADGROUP");
    cmd.arg("GROUP")
        .arg(group)
        .arg(consumer)
        .arg("COUNT")
        .arg(count);
    if let Some(ms) = block_ms {
        cmd.arg("BLOCK").arg(ms);
    }
    cmd.arg("STREAMS").arg(streams);
    let start = match from {
        ReadFrom::New => ">".to_owned(),
        ReadFrom::OwnPendingAfter(id) => id.to_string(),
    };
    for _ in streams {
        cmd.arg(&start);
    }
    conn.read_entries(&cmd).await
}

/// One entry of the group's pending list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub id: EntryId,
    pub consumer: String,
    pub idle_ms: u64,
    /// Deliveries so far.
    pub deliveries: u64,
}

/// XPENDING (extended form): up to `count` pending entries idle at least `idle_ms`,
/// after `after` (exclusive; `None` from the start), of one consumer or of all.
pub async fn pending<C>(
    conn: &mut C,
    stream: &str,
    group: &str,
    idle_ms: u64,
    after: Option<EntryId>,
    count: usize,
    consumer: Option<&str>,
) -> Result<Vec<Pending>, StreamError>
where
    C: redis::aio::ConnectionLike + Send,
{
    let mut cmd = redis::cmd("XPENDING");
    cmd.arg(stream).arg(group).arg("IDLE").arg(idle_ms);
    match after {
        Some(id) => cmd.arg(format!("({id}")),
        None => cmd.arg("-"),
    };
    cmd.arg("+").arg(count);
    if let Some(c) = consumer {
        cmd.arg(c);
    }
    let rows: Vec<(String, String, u64, u64)> = cmd.query_async(conn).await?;
    rows.into_iter()
        .map(|(id, consumer, idle_ms, deliveries)| {
            Ok(Pending {
                id: id
                    .parse()
                    .map_err(|e: BadEntryId| reply_error("XPENDING", e.to_string()))?,
                consumer,
                idle_ms,
                deliveries,
            })
        })
        .collect()
}

/// XCLAIM: takes `ids` for `consumer` if still idle at least `min_idle_ms`. Entries
/// deleted meanwhile are dropped from the pending list by Redis and not returned.
pub async fn claim<C>(
    conn: &mut C,
    stream: &str,
    group: &str,
    consumer: &str,
    min_idle_ms: u64,
    ids: &[EntryId],
) -> Result<Vec<StreamEntry>, StreamError>
where
    C: redis::aio::ConnectionLike + Send,
{
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut cmd = redis::cmd("XCLAIM");
    cmd.arg(stream).arg(group).arg(consumer).arg(min_idle_ms);
    for id in ids {
        cmd.arg(id);
    }
    let reply: Value = cmd.query_async(conn).await?;
    parse_entries("XCLAIM", reply)
}

/// Resets the idle time of this consumer's own `ids` without reading them (XCLAIM
/// JUSTID to itself): the heartbeat of entries still being worked on.
pub async fn touch<C>(
    conn: &mut C,
    stream: &str,
    group: &str,
    consumer: &str,
    ids: &[EntryId],
) -> Result<(), StreamError>
where
    C: redis::aio::ConnectionLike + Send,
{
    if ids.is_empty() {
        return Ok(());
    }
    let mut cmd = redis::cmd("XCLAIM");
    cmd.arg(stream).arg(group).arg(consumer).arg(0);
    for id in ids {
        cmd.arg(id);
    }
    cmd.arg("JUSTID");
    let _: Value = cmd.query_async(conn).await?;
    Ok(())
}

/// XACK of `ids` per stream, one pipeline.
pub async fn ack<C>(
    conn: &mut C,
    group: &str,
    by_stream: &[(&str, Vec<EntryId>)],
) -> Result<(), StreamError>
where
    C: redis::aio::ConnectionLike + Send,
{
    let mut pipe = redis::pipe();
    for (stream, ids) in by_stream {
        if ids.is_empty() {
            continue;
        }
        let cmd = pipe.cmd("XACK").arg(*stream).arg(group);
        for id in ids {
            cmd.arg(id);
        }
        cmd.ignore();
    }
    pipe.query_async::<()>(conn).await?;
    Ok(())
}

/// XREVRANGE: up to `count` entries from `end` down to `start`, both inclusive
/// unless `end_exclusive`, newest first.
pub async fn range_rev<C>(
    conn: &mut C,
    stream: &str,
    end: EntryId,
    end_exclusive: bool,
    start: EntryId,
    count: usize,
) -> Result<Vec<StreamEntry>, StreamError>
where
    C: redis::aio::ConnectionLike + Send,
{
    let end = if end_exclusive {
        format!("({end}")
    } else {
        end.to_string()
    };
    let reply: Value = redis::cmd("XREVRANGE")
        .arg(stream)
        .arg(end)
        .arg(start.to_string())
        .arg("COUNT")
        .arg(count)
        .query_async(conn)
        .await?;
    parse_entries("XREVRANGE", reply)
}

/// XRANGE of the whole stream, oldest first, up to `count` entries.
pub async fn range_all<C>(
    conn: &mut C,
    stream: &str,
    count: usize,
) -> Result<Vec<StreamEntry>, StreamError>
where
    C: redis::aio::ConnectionLike + Send,
{
    let reply: Value = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(count)
        .query_async(conn)
        .await?;
    parse_entries("XRANGE", reply)
}

/// Where a plain XREAD starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAfter {
    /// Only entries added from now on (`$`).
    Now,
    /// Entries after this id.
    Id(EntryId),
}

/// XREAD (no group) of one stream, `count` entries at most, blocking up to
/// `block_ms`: what a consumer outside the service (a test, the load tool) reads.
pub async fn read<C>(
    conn: &mut C,
    stream: &str,
    after: ReadAfter,
    count: usize,
    block_ms: u64,
) -> Result<Vec<StreamEntry>, StreamError>
where
    C: redis::aio::ConnectionLike + Send,
{
    let after = match after {
        ReadAfter::Now => "$".to_owned(),
        ReadAfter::Id(id) => id.to_string(),
    };
    let reply: Value = redis::cmd("XREAD")
        .arg("COUNT")
        .arg(count)
        .arg("BLOCK")
        .arg(block_ms)
        .arg("STREAMS")
        .arg(stream)
        .arg(after)
        .query_async(conn)
        .await?;
    Ok(parse_read_reply(reply)?
        .into_iter()
        .flat_map(|(_, entries)| entries)
        .collect())
}

/// XADDs of many entries to `stream`, pipelined a thousand at a time (no MAXLEN:
/// producers and tools filling a stream); the id Redis gave each, in order.
pub async fn add_all<C>(
    conn: &mut C,
    stream: &str,
    entries: &[Fields],
) -> Result<Vec<EntryId>, StreamError>
where
    C: redis::aio::ConnectionLike + Send,
{
    let mut ids = Vec::with_capacity(entries.len());
    for chunk in entries.chunks(1_000) {
        let mut pipe = redis::pipe();
        for fields in chunk {
            let cmd = pipe.cmd("XADD").arg(stream).arg("*");
            for (k, v) in fields {
                cmd.arg(k.as_slice()).arg(v.as_slice());
            }
        }
        let written: Vec<String> = pipe.query_async(conn).await?;
        for id in written {
            ids.push(
                id.parse()
                    .map_err(|e: BadEntryId| reply_error("XADD", e.to_string()))?,
            );
        }
    }
    Ok(ids)
}

/// XADD with an approximate MAXLEN; the new entry's id.
pub async fn add<C>(
    conn: &mut C,
    stream: &str,
    maxlen: u64,
    fields: &[(&[u8], &[u8])],
) -> Result<EntryId, StreamError>
where
    C: redis::aio::ConnectionLike + Send,
{
    let mut cmd = redis::cmd("XADD");
    cmd.arg(stream).arg("MAXLEN").arg("~").arg(maxlen).arg("*");
    for (k, v) in fields {
        cmd.arg(*k).arg(*v);
    }
    let id: String = cmd.query_async(conn).await?;
    id.parse()
        .map_err(|e: BadEntryId| reply_error("XADD", e.to_string()))
}

/// The prefix under which a dead letter keeps the original entry's fields, so no
/// producer field can shadow `reason`, `source_stream` or `source_id`.
pub const DEAD_LETTER_FIELD_PREFIX: &[u8] = b"entry.";

/// One entry to dead-letter and why.
pub struct DeadLetter<'a> {
    pub stream: &'a str,
    pub id: EntryId,
    pub fields: &'a [(Vec<u8>, Vec<u8>)],
    pub reason: &'a str,
}

/// Copies entries to the dead-letter stream, one pipeline: `reason`,
/// `source_stream`, `source_id`, then each original field as `entry.<name>`.
pub async fn dead_letter<C>(
    conn: &mut C,
    dead_letter_stream: &str,
    maxlen: u64,
    letters: &[DeadLetter<'_>],
) -> Result<(), StreamError>
where
    C: redis::aio::ConnectionLike + Send,
{
    if letters.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for letter in letters {
        let id = letter.id.to_string();
        let cmd = pipe
            .cmd("XADD")
            .arg(dead_letter_stream)
            .arg("MAXLEN")
            .arg("~")
            .arg(maxlen)
            .arg("*")
            .arg("reason")
            .arg(letter.reason)
            .arg("source_stream")
            .arg(letter.stream)
            .arg("source_id")
            .arg(id);
        for (k, v) in letter.fields {
            let mut name = DEAD_LETTER_FIELD_PREFIX.to_vec();
            name.extend_from_slice(k);
            cmd.arg(name).arg(v.as_slice());
        }
        cmd.ignore();
    }
    pipe.query_async::<()>(conn).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &[u8]) -> Value {
        Value::BulkString(s.to_vec())
    }

    #[test]
    fn entry_ids_round_trip_and_order() {
        let a: EntryId = "1764000000000-5".parse().expect("id");
        assert_eq!(
            a,
            EntryId {
                ms: 1_764_000_000_000,
                seq: 5
            }
        );
        assert_eq!(a.to_string(), "1764000000000-5");
        assert!(a < "1764000000000-6".parse().expect("id"));
        assert!(a < "1764000000001-0".parse().expect("id"));
        assert_eq!("17".parse::<EntryId>(), Ok(EntryId { ms: 17, seq: 0 }));
        assert!("garbage".parse::<EntryId>().is_err());
        assert!("1-x".parse::<EntryId>().is_err());
        assert_eq!(a.time().map(|t| t.timestamp()), Some(1_764_000_000));
        let before_epoch = Utc.timestamp_opt(-10, 0).single().expect("time");
        assert_eq!(EntryId::first_at(before_epoch), None);
    }

    #[test]
    fn an_id_as_an_argument_and_as_text_is_ms_dash_seq() {
        use redis::ToRedisArgs;
        for id in [
            EntryId { ms: 0, seq: 0 },
            EntryId {
                ms: 1_764_000_000_000,
                seq: 5,
            },
            EntryId {
                ms: u64::MAX,
                seq: u64::MAX,
            },
        ] {
            let text = format!("{}-{}", id.ms, id.seq);
            assert_eq!(id.to_redis_args(), vec![text.clone().into_bytes()]);
            assert_eq!(id.to_string(), text);
            assert_eq!(token("events:0", id), format!("events:0/{text}"));
        }
    }

    #[test]
    fn a_non_utf8_field_name_spoils_only_its_own_entry() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk(b"events"),
            Value::Array(vec![
                Value::Array(vec![
                    bulk(b"1-0"),
                    Value::Array(vec![bulk(b"\xff"), bulk(b"x")]),
                ]),
                Value::Array(vec![
                    bulk(b"1-1"),
                    Value::Array(vec![bulk(b"event"), bulk(b"{}")]),
                ]),
                Value::Array(vec![bulk(b"1-2"), Value::Nil]),
            ]),
        ])]);
        let streams = parse_read_reply(reply).expect("parsed");
        assert_eq!(streams.len(), 1);
        let (name, entries) = &streams[0];
        assert_eq!(name, "events");
        assert_eq!(entries.len(), 3);
        assert_eq!(
            entries[0].body,
            Body::Fields(vec![(b"\xff".to_vec(), b"x".to_vec())])
        );
        assert_eq!(
            entries[1].body,
            Body::Fields(vec![(b"event".to_vec(), b"{}".to_vec())])
        );
        assert_eq!(entries[2].body, Body::Deleted);
    }

    #[test]
    fn odd_or_non_string_fields_are_malformed_not_errors() {
        let entries = parse_entries(
            "XRANGE",
            Value::Array(vec![
                Value::Array(vec![bulk(b"1-0"), Value::Array(vec![bulk(b"a")])]),
                Value::Array(vec![
                    bulk(b"1-1"),
                    Value::Array(vec![bulk(b"a"), Value::Array(vec![])]),
                ]),
            ]),
        )
        .expect("parsed");
        assert!(matches!(entries[0].body, Body::Malformed(_)));
        assert!(matches!(entries[1].body, Body::Malformed(_)));
    }

    #[test]
    fn nil_replies_are_empty_and_wrong_shapes_are_errors() {
        assert!(parse_read_reply(Value::Nil).expect("nil").is_empty());
        assert!(parse_entries("XCLAIM", Value::Array(vec![Value::Nil]))
            .expect("nil")
            .is_empty());
        assert!(parse_read_reply(Value::Int(3)).is_err());
        assert!(parse_entries(
            "XRANGE",
            Value::Array(vec![Value::Array(vec![bulk(b"x-y"), Value::Nil])])
        )
        .is_err());
    }
}
