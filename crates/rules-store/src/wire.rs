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

use futures_util::future::BoxFuture;
use redis::aio::ConnectionLike;
use redis::{Cmd, ConnectionAddr, ConnectionInfo, Pipeline, RedisFuture, RedisResult, Value};
use redis_protocol::resp2::decode::decode_range;
use redis_protocol::resp2::types::RangeFrame;
use std::io;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::streams::{parse_read_reply, EntryReader, ReadResult, ReplyNode};

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

    /// Writes `packed` and reads `replies` replies, each decoded by `decode` from its
    /// frame and the bytes the frame indexes, within the reply bound.
    async fn exchange<T>(
        &mut self,
        packed: &[u8],
        replies: usize,
        decode: impl FnMut(RangeFrame, &[u8]) -> T,
    ) -> RedisResult<Vec<T>> {
        if self.broken {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the connection failed earlier; open another",
            )
            .into());
        }
        let result = self.exchange_once(packed, replies, decode).await;
        // A server's error reply is a whole reply: only a failure of the exchange
        // itself leaves the stream out of step.
        if result.is_err() {
            self.broken = true;
        }
        result
    }

    /// One command's reply, decoded by `decode`.
    async fn exchange_one<T>(
        &mut self,
        cmd: &Cmd,
        decode: impl FnMut(RangeFrame, &[u8]) -> T,
    ) -> RedisResult<T> {
        let packed = cmd.get_packed_command();
        let mut replies = self.exchange(&packed, 1, decode).await?;
        replies.pop().ok_or_else(|| invalid("no reply").into())
    }

    async fn exchange_once<T>(
        &mut self,
        packed: &[u8],
        replies: usize,
        mut decode: impl FnMut(RangeFrame, &[u8]) -> T,
    ) -> RedisResult<Vec<T>> {
        let bound = self.reply_timeout;
        let exchange = async {
            self.stream.write_all(packed).await?;
            let mut values = Vec::with_capacity(replies);
            for _ in 0..replies {
                values.push(self.read_reply(&mut decode).await?);
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

    /// The next whole reply, reading as much as it needs, decoded by `decode`.
    async fn read_reply<T>(
        &mut self,
        decode: &mut impl FnMut(RangeFrame, &[u8]) -> T,
    ) -> RedisResult<T> {
        loop {
            if !self.buffer.is_empty() {
                match decode_range(&self.buffer) {
                    Ok(Some((frame, used))) => {
                        let value = decode(frame, &self.buffer);
                        self.buffer.drain(..used);
                        if self.buffer.is_empty() && self.buffer.capacity() > MAX_KEPT_BUFFER {
                            // One huge reply does not keep its memory for the
                            // connection's life.
                            self.buffer = Vec::new();
                        }
                        return Ok(value);
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

/// A frame of a reply with the bytes it indexes: a node the stream decoders read
/// straight into entries ([`ReplyNode`]), each string copied once, into its field.
pub struct Framed<'a> {
    frame: RangeFrame,
    bytes: &'a [u8],
}

/// As the `Value` it stands for (what a malformed entry's reason quotes).
impl std::fmt::Debug for Framed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match to_value(self.frame.clone(), self.bytes) {
            Ok(value) => write!(f, "{value:?}"),
            Err(e) => write!(f, "{e}"),
        }
    }
}

/// The items of an array frame, as [`Framed`] nodes.
pub struct FramedItems<'a> {
    items: std::vec::IntoIter<RangeFrame>,
    bytes: &'a [u8],
}

impl<'a> Iterator for FramedItems<'a> {
    type Item = Framed<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let frame = self.items.next()?;
        Some(Framed {
            frame,
            bytes: self.bytes,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.items.size_hint()
    }
}

impl ExactSizeIterator for FramedItems<'_> {}

impl<'a> ReplyNode for Framed<'a> {
    type Items = FramedItems<'a>;

    fn is_nil(&self) -> bool {
        matches!(self.frame, RangeFrame::Null)
    }

    fn into_items(self) -> Result<Self::Items, Self> {
        match self.frame {
            RangeFrame::Array(items) => Ok(FramedItems {
                items: items.into_iter(),
                bytes: self.bytes,
            }),
            frame => Err(Self { frame, ..self }),
        }
    }

    fn into_pairs(self) -> Result<Vec<(Self, Self)>, Self> {
        Err(self) // RESP2 has no maps
    }

    fn into_bytes(self) -> Option<Vec<u8>> {
        match self.frame {
            RangeFrame::BulkString((start, end)) | RangeFrame::SimpleString((start, end)) => {
                self.bytes.get(start..end).map(<[u8]>::to_vec)
            }
            RangeFrame::Integer(n) => Some(n.to_string().into_bytes()),
            _ => None,
        }
    }
}

/// An XREADGROUP or XREAD reply decoded from its frame: an array straight into
/// entries; anything else (nil, an error such as `NOGROUP`) as redis-rs reads it.
fn read_reply_of(frame: RangeFrame, bytes: &[u8]) -> ReadResult {
    match frame {
        frame @ RangeFrame::Array(_) => parse_read_reply(Framed { frame, bytes }),
        other => parse_read_reply(to_value(other, bytes)?.extract_error()?),
    }
}

impl EntryReader for WireConnection {
    fn read_entries<'a>(&'a mut self, cmd: &'a Cmd) -> BoxFuture<'a, ReadResult> {
        Box::pin(async move { self.exchange_one(cmd, read_reply_of).await? })
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

impl ConnectionLike for WireConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move { self.exchange_one(cmd, to_value).await? })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let packed = pipeline.get_packed_pipeline();
            let replies = self.exchange(&packed, offset + count, to_value).await?;
            let mut replies = replies.into_iter().collect::<RedisResult<Vec<_>>>()?;
            Ok(replies.split_off(offset))
        })
    }

    fn get_db(&self) -> i64 {
        self.db
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `resp` both ways: from its frame, and from the `Value` redis-rs
    /// would give.
    fn both_ways(resp: &[u8]) -> (String, String) {
        let (frame, _) = decode_range(resp).expect("resp").expect("whole");
        let framed = read_reply_of(frame.clone(), resp);
        let valued = to_value(frame, resp)
            .and_then(Value::extract_error)
            .map_err(crate::streams::StreamError::from)
            .and_then(parse_read_reply);
        (format!("{framed:?}"), format!("{valued:?}"))
    }

    #[test]
    fn frames_decode_into_the_entries_values_decode_into() {
        let replies: [&[u8]; 9] = [
            // One stream, an entry, a deleted entry, an entry of two fields.
            b"*1\r\n*2\r\n$1\r\ns\r\n*3\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$5\r\nevent\r\n$2\r\n{}\r\n\
              *2\r\n$3\r\n1-1\r\n*-1\r\n\
              *2\r\n$3\r\n1-2\r\n*4\r\n$1\r\na\r\n$0\r\n\r\n$1\r\nb\r\n:7\r\n",
            // Nothing new.
            b"*-1\r\n",
            // Odd fields; a field that is an array.
            b"*1\r\n*2\r\n$1\r\ns\r\n*2\r\n*2\r\n$3\r\n1-0\r\n*1\r\n$1\r\na\r\n\
              *2\r\n$3\r\n1-1\r\n*2\r\n$1\r\na\r\n*0\r\n",
            // A body that is a string.
            b"*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-0\r\n+OK\r\n",
            // An id that is not an id; an entry of three items.
            b"*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\nx-y\r\n*-1\r\n",
            b"*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*3\r\n$3\r\n1-0\r\n*-1\r\n*-1\r\n",
            // Not a list of streams; an error.
            b":3\r\n",
            b"-NOGROUP No such key 's' or consumer group 'g'\r\n",
            // A stream name that is not text.
            b"*1\r\n*2\r\n$1\r\n\xff\r\n*0\r\n",
        ];
        for resp in replies {
            let (framed, valued) = both_ways(resp);
            assert_eq!(framed, valued, "{}", String::from_utf8_lossy(resp));
        }
        let (framed, _) = both_ways(b"-NOGROUP No such key\r\n");
        assert!(framed.contains("NOGROUP"), "{framed}");
    }
}
