//! A Redis connection of one's own whose replies are decoded by
//! [redis-protocol](https://crates.io/crates/redis-protocol) instead of redis-rs's
//! parser: the worker's stream readers, whose XREADGROUP replies (a thousand
//! entries, five values each) were the largest single cost of a drain in redis-rs's
//! combine-based decoder (7,300 instructions per event, callgrind; redis-protocol
//! reads the same reply's structure in a fifth of the time, without an allocation
//! per value).
//!
//! It speaks RESP2 to one server over TCP, one command (or pipeline) at a time, and
//! hands redis-rs the same [`Value`]s its own connection would: arrays, bulk
//! strings, integers and nil are built from the frame's ranges; simple strings and
//! errors — short, and rare on this path — are read by redis-rs's own parser from
//! their bytes, so `OK`, `NOGROUP`, `LOADING` and the rest mean exactly what they mean
//! on any other connection. Every command of the crate works on it, through
//! [`ConnectionLike`].
//!
//! An address it does not serve (TLS, a Unix socket, RESP3) is not given to it:
//! [`crate::redis::dedicated_reader`] then opens redis-rs's connection instead.

use redis::aio::ConnectionLike;
use redis::{Cmd, ConnectionAddr, ConnectionInfo, Pipeline, RedisFuture, RedisResult, Value};
use redis_protocol::resp2::decode::decode_range;
use redis_protocol::resp2::types::RangeFrame;
use std::io;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How much room a read of the socket has at least.
const READ_CHUNK: usize = 256 * 1024;
/// A buffer grown past this by one large reply is given back once it is decoded.
const MAX_KEPT_BUFFER: usize = 4 * 1024 * 1024;

/// One server, over TCP, RESP2; see the module's doc.
pub struct WireConnection {
    stream: TcpStream,
    /// Bytes read and not yet decoded.
    buffer: Vec<u8>,
    db: i64,
    reply_timeout: Option<Duration>,
    /// An exchange failed part-way (a timeout, a cut): what is left on the wire is
    /// unknown, so every later command fails at once and the owner reconnects.
    broken: bool,
}

impl WireConnection {
    /// Whether `info` is an address this connection serves: TCP without TLS, RESP2.
    pub fn serves(info: &ConnectionInfo) -> bool {
        matches!(info.addr(), ConnectionAddr::Tcp(..))
            && info.redis_settings().protocol() == redis::ProtocolVersion::RESP2
    }

    /// Connects within `connect`, authenticates and selects the database as `info`
    /// says; each reply afterwards is awaited at most `reply` (`None`: no bound).
    pub async fn connect(
        info: &ConnectionInfo,
        connect: Duration,
        reply: Option<Duration>,
    ) -> RedisResult<Self> {
        let ConnectionAddr::Tcp(host, port) = info.addr() else {
            return Err(invalid("only plain TCP addresses are served").into());
        };
        let stream = tokio::time::timeout(connect, TcpStream::connect((host.as_str(), *port)))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connecting timed out"))??;
        // Commands go out at once: a reader waits for each reply before the next.
        stream.set_nodelay(true)?;
        let settings = info.redis_settings();
        let mut conn = Self {
            stream,
            buffer: Vec::new(),
            db: settings.db(),
            reply_timeout: reply,
            broken: false,
        };
        if let Some(password) = settings.password() {
            let mut auth = redis::cmd("AUTH");
            if let Some(user) = settings.username() {
                auth.arg(user);
            }
            auth.arg(password);
            let () = auth.query_async(&mut conn).await?;
        }
        if settings.db() != 0 {
            let () = redis::cmd("SELECT")
                .arg(settings.db())
                .query_async(&mut conn)
                .await?;
        }
        Ok(conn)
    }

    /// Writes `packed` and reads `replies` replies, within the reply bound.
    async fn exchange(&mut self, packed: &[u8], replies: usize) -> RedisResult<Vec<Value>> {
        if self.broken {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the connection failed earlier; open another",
            )
            .into());
        }
        let result = self.exchange_once(packed, replies).await;
        // A server's error reply is a whole reply: only a failure of the exchange
        // itself leaves the stream out of step.
        if result.is_err() {
            self.broken = true;
        }
        result
    }

    async fn exchange_once(&mut self, packed: &[u8], replies: usize) -> RedisResult<Vec<Value>> {
        let bound = self.reply_timeout;
        let exchange = async {
            self.stream.write_all(packed).await?;
            let mut values = Vec::with_capacity(replies);
            for _ in 0..replies {
                values.push(self.read_reply().await?);
            }
            Ok(values)
        };
        match bound {
            Some(bound) => tokio::time::timeout(bound, exchange)
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no reply in time"))?,
            None => exchange.await,
        }
    }

    /// The next whole reply, reading as much as it needs.
    async fn read_reply(&mut self) -> RedisResult<Value> {
        loop {
            if !self.buffer.is_empty() {
                match decode_range(&self.buffer) {
                    Ok(Some((frame, used))) => {
                        let value = to_value(frame, &self.buffer);
                        self.buffer.drain(..used);
                        if self.buffer.is_empty() && self.buffer.capacity() > MAX_KEPT_BUFFER {
                            // One huge reply does not keep its memory for the
                            // connection's life.
                            self.buffer = Vec::new();
                        }
                        return value;
                    }
                    Ok(None) => {}
                    Err(e) => return Err(invalid(&format!("unreadable reply: {e}")).into()),
                }
            }
            self.read_more().await?;
        }
    }

    /// Waits for bytes, then takes whatever else is already waiting without
    /// waiting again: a large reply is decoded once per arrival, not once per
    /// socket read (each attempt parses the reply from its start).
    async fn read_more(&mut self) -> io::Result<()> {
        self.buffer.reserve(READ_CHUNK);
        if self.stream.read_buf(&mut self.buffer).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        loop {
            self.buffer.reserve(READ_CHUNK);
            match self.stream.try_read_buf(&mut self.buffer) {
                // Closed: what arrived is decoded; the next wait reports the end.
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }
}

/// The [`Value`] redis-rs's own connection gives for `frame`, whose ranges index
/// `bytes`.
fn to_value(frame: RangeFrame, bytes: &[u8]) -> RedisResult<Value> {
    Ok(match frame {
        RangeFrame::BulkString((start, end)) => Value::BulkString(bytes[start..end].to_vec()),
        RangeFrame::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| to_value(item, bytes))
                .collect::<RedisResult<_>>()?,
        ),
        RangeFrame::Integer(n) => Value::Int(n),
        RangeFrame::Null => Value::Nil,
        RangeFrame::SimpleString((start, end)) => reparse(b'+', &bytes[start..end])?,
        RangeFrame::Error((start, end)) => reparse(b'-', &bytes[start..end])?,
    })
}

/// A simple string or an error line, read by redis-rs's parser.
fn reparse(kind: u8, text: &[u8]) -> RedisResult<Value> {
    let mut line = Vec::with_capacity(text.len() + 3);
    line.push(kind);
    line.extend_from_slice(text);
    line.extend_from_slice(b"\r\n");
    redis::parse_redis_value(&line)
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

impl ConnectionLike for WireConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let packed = cmd.get_packed_command();
            let mut replies = self.exchange(&packed, 1).await?;
            replies.pop().ok_or_else(|| invalid("no reply").into())
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let packed = pipeline.get_packed_pipeline();
            let mut replies = self.exchange(&packed, offset + count).await?;
            Ok(replies.split_off(offset))
        })
    }

    fn get_db(&self) -> i64 {
        self.db
    }
}
