//! The reader's connection (`rules_store::wire`) against a real Redis: every reply,
//! error and pipeline reads as redis-rs's own connection reads it.

use redis::aio::ConnectionLike;
use redis::{IntoConnectionInfo, Value};
use rules_store::redis::dedicated_connection;
use rules_store::streams::{self, ReadFrom};
use rules_store::wire::WireConnection;
use std::time::Duration;

fn url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

async fn wire(reply: Option<Duration>) -> WireConnection {
    let info = url().as_str().into_connection_info().expect("url");
    assert!(WireConnection::serves(&info));
    WireConnection::connect(&info, Duration::from_secs(5), reply)
        .await
        .expect("wire connection")
}

async fn client() -> redis::aio::MultiplexedConnection {
    dedicated_connection(
        &url(),
        Duration::from_secs(5),
        Some(Duration::from_secs(30)),
    )
    .await
    .expect("redis-rs connection")
}

/// A read's entries, in order: id and fields.
fn entries(
    reply: Vec<(String, Vec<streams::StreamEntry>)>,
) -> Vec<(streams::EntryId, streams::Body)> {
    reply
        .into_iter()
        .flat_map(|(_, e)| e)
        .map(|e| (e.id, e.body))
        .collect()
}

/// Every new entry of `stream` for `group`, read in one XREADGROUP.
async fn read_all<C: streams::EntryReader>(
    conn: &mut C,
    group: &str,
    stream: &str,
) -> Vec<(streams::EntryId, streams::Body)> {
    let reply = streams::read_group(conn, group, "c", &[stream], ReadFrom::New, 2_000, Some(100))
        .await
        .expect("read");
    entries(reply)
}

/// The first three of this consumer's pending entries of `stream` for `group`.
async fn read_pending<C: streams::EntryReader>(
    conn: &mut C,
    group: &str,
    stream: &str,
) -> Vec<(streams::EntryId, streams::Body)> {
    let from = ReadFrom::OwnPendingAfter(streams::EntryId { ms: 0, seq: 0 });
    let reply = streams::read_group(conn, group, "c", &[stream], from, 3, None)
        .await
        .expect("read pending");
    entries(reply)
}

/// What a command answers on a connection: its value, or its error's code and text.
async fn answer<C: ConnectionLike + Send>(conn: &mut C, cmd: &redis::Cmd) -> String {
    match cmd.query_async::<Value>(conn).await {
        Ok(value) => format!("{value:?}"),
        Err(e) => format!("error {:?}: {}", e.code(), e.detail().unwrap_or_default()),
    }
}

#[tokio::test]
async fn every_kind_of_reply_reads_as_redis_rs_reads_it() {
    let key = format!("wire-test:{}", uuid::Uuid::new_v4());
    let stream = format!("{key}:s");
    let mut admin = client().await;
    // Commands below are compared by running each on both connections, so each
    // answers the same twice (an error for INCR of a text is one).
    // Entries with what a producer may put in them: binary, CRLF, empty, large.
    let large = vec![b'x'; 300_000];
    for i in 0..1_500u32 {
        let value: Vec<u8> = match i % 4 {
            0 => format!("{{\"n\":{i}}}").into_bytes(),
            1 => vec![0xff, 0xfe, b'\r', b'\n', 0],
            2 => Vec::new(),
            _ => format!("line\r\nbreak {i}").into_bytes(),
        };
        let _: String = redis::cmd("XADD")
            .arg(&stream)
            .arg("*")
            .arg("event")
            .arg(value)
            .arg(&b"\xc3\x28"[..])
            .arg(i)
            .query_async(&mut admin)
            .await
            .expect("xadd");
    }
    let _: String = redis::cmd("XADD")
        .arg(&stream)
        .arg("*")
        .arg("event")
        .arg(&large)
        .query_async(&mut admin)
        .await
        .expect("xadd large");

    let commands = [
        redis::cmd("PING"),
        redis::cmd("SET").arg(&key).arg("v").clone(),
        redis::cmd("GET").arg(&key).clone(),
        redis::cmd("GET").arg(format!("{key}:missing")).clone(),
        redis::cmd("STRLEN").arg(&key).clone(),
        redis::cmd("INCR").arg(&key).clone(),
        redis::cmd("XRANGE").arg(&stream).arg("-").arg("+").clone(),
        redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("nobody")
            .arg("c")
            .arg("STREAMS")
            .arg(&stream)
            .arg(">")
            .clone(),
        redis::cmd("NOSUCHCOMMAND"),
        redis::cmd("XINFO").arg("STREAM").arg(&stream).clone(),
    ];
    let mut on_wire = wire(Some(Duration::from_secs(30))).await;
    let mut on_client = client().await;
    for cmd in &commands {
        let expected = answer(&mut on_client, cmd).await;
        assert_eq!(answer(&mut on_wire, cmd).await, expected, "{cmd:?}");
    }
    // The big reply really was big: several reads of the socket.
    let all: Vec<Value> = redis::cmd("XRANGE")
        .arg(&stream)
        .arg("-")
        .arg("+")
        .query_async(&mut on_wire)
        .await
        .expect("xrange");
    assert_eq!(all.len(), 1_501);

    // Pipelines, errors inside them, and a transaction.
    let mut pipe = redis::pipe();
    pipe.cmd("SET")
        .arg(&key)
        .arg("w")
        .cmd("INCR")
        .arg(&key)
        .cmd("GET")
        .arg(&key)
        .cmd("XLEN")
        .arg(&stream);
    pipe.ignore_errors();
    let wire_replies: Vec<redis::RedisResult<Value>> =
        pipe.query_async(&mut on_wire).await.expect("pipeline");
    let client_replies: Vec<redis::RedisResult<Value>> =
        pipe.query_async(&mut on_client).await.expect("pipeline");
    assert_eq!(format!("{wire_replies:?}"), format!("{client_replies:?}"));
    let mut transaction = redis::pipe();
    transaction
        .atomic()
        .cmd("SET")
        .arg(&key)
        .arg("t")
        .cmd("GET")
        .arg(&key);
    let on_wire_t: (String, String) = transaction.query_async(&mut on_wire).await.expect("multi");
    assert_eq!(on_wire_t, ("OK".to_owned(), "t".to_owned()));

    // The stream functions read alike: XREADGROUP of every entry, binary-safe.
    for group in ["g-wire", "g-client"] {
        streams::ensure_group(&mut on_wire, &stream, group, "0")
            .await
            .expect("group");
    }
    let from_wire = read_all(&mut on_wire, "g-wire", &stream).await;
    let from_client = read_all(&mut on_client, "g-client", &stream).await;
    assert_eq!(from_wire.len(), 1_501);
    assert_eq!(from_wire, from_client);
    // Nothing new: nil, read as no entries by both.
    assert!(read_all(&mut on_wire, "g-wire", &stream).await.is_empty());
    assert!(read_all(&mut on_client, "g-client", &stream)
        .await
        .is_empty());
    // Pending entries deleted since they were read: an id with a nil body.
    let deleted = from_wire[1].0;
    let _: i64 = redis::cmd("XDEL")
        .arg(&stream)
        .arg(deleted)
        .query_async(&mut admin)
        .await
        .expect("xdel");
    let pending_wire = read_pending(&mut on_wire, "g-wire", &stream).await;
    assert_eq!(
        pending_wire,
        read_pending(&mut on_client, "g-client", &stream).await
    );
    assert_eq!(pending_wire.len(), 3);
    assert_eq!(pending_wire[1], (deleted, streams::Body::Deleted));

    let _: () = redis::cmd("DEL")
        .arg(&key)
        .arg(&stream)
        .query_async(&mut admin)
        .await
        .expect("cleanup");
}

#[tokio::test]
async fn an_error_reply_leaves_the_connection_usable_and_a_timeout_does_not() {
    let stream = format!("wire-test:{}:s", uuid::Uuid::new_v4());
    let mut conn = wire(Some(Duration::from_millis(300))).await;
    // NOGROUP: a whole reply; the reader recreates the group on the same connection.
    let err = streams::read_group(&mut conn, "g", "c", &[&stream], ReadFrom::New, 10, None)
        .await
        .expect_err("no group yet");
    assert_eq!(err.code(), Some("NOGROUP"));
    streams::ensure_group(&mut conn, &stream, "g", "$")
        .await
        .expect("the connection still works after an error reply");
    // A read blocking past the reply bound fails, and the connection with it: what
    // is left on the wire is unknown, so nothing more is read from it.
    let timed_out = streams::read_group(
        &mut conn,
        "g",
        "c",
        &[&stream],
        ReadFrom::New,
        10,
        Some(2_000),
    )
    .await
    .expect_err("blocked past the bound");
    assert!(
        timed_out.to_string().contains("no reply in time"),
        "{timed_out}"
    );
    let after: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut conn).await;
    let after = after.expect_err("a connection that timed out is not used again");
    assert!(after.to_string().contains("failed earlier"), "{after}");

    let mut admin = client().await;
    let _: () = redis::cmd("DEL")
        .arg(&stream)
        .query_async(&mut admin)
        .await
        .expect("cleanup");
}

/// A server of the test's own: reads each command, answers with the next of
/// `replies`, each written in the pieces given with a pause between them, then
/// closes the connection.
async fn fake_server(replies: Vec<Vec<Vec<u8>>>) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        for pieces in replies {
            let mut command = [0u8; 1024];
            if socket.read(&mut command).await.unwrap_or(0) == 0 {
                return;
            }
            for piece in pieces {
                socket.write_all(&piece).await.expect("write");
                socket.flush().await.expect("flush");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    port
}

/// A bulk string reply of exactly `total` bytes on the wire, and its length.
fn bulk_of_wire_size(total: usize) -> (Vec<u8>, usize) {
    let mut payload = total - 5;
    loop {
        let reply = [
            format!("${payload}\r\n").into_bytes(),
            vec![b'x'; payload],
            b"\r\n".to_vec(),
        ]
        .concat();
        match reply.len().cmp(&total) {
            std::cmp::Ordering::Equal => return (reply, payload),
            std::cmp::Ordering::Greater => payload -= 1,
            std::cmp::Ordering::Less => payload += 1,
        }
    }
}

#[tokio::test]
async fn replies_in_any_pieces_are_read_whole_and_a_cut_one_fails() {
    // Exactly a read's room; in three pieces with pauses; then cut off mid-reply.
    let (exact, exact_len) = bulk_of_wire_size(256 * 1024);
    let (pieced, pieced_len) = bulk_of_wire_size(100_000);
    let (a, rest) = pieced.split_at(10);
    let (b, c) = rest.split_at(50_000);
    let cut = bulk_of_wire_size(1_000).0[..500].to_vec();
    let port = fake_server(vec![
        vec![exact],
        vec![a.to_vec(), b.to_vec(), c.to_vec()],
        vec![cut],
    ])
    .await;
    let info = format!("redis://127.0.0.1:{port}/0")
        .as_str()
        .into_connection_info()
        .expect("url");
    let mut conn =
        WireConnection::connect(&info, Duration::from_secs(5), Some(Duration::from_secs(5)))
            .await
            .expect("connect");
    let whole: Vec<u8> = redis::cmd("GET")
        .arg("k")
        .query_async(&mut conn)
        .await
        .expect("a reply that fills the read's room exactly");
    assert_eq!(whole.len(), exact_len);
    assert!(whole.iter().all(|b| *b == b'x'));
    let pieces: Vec<u8> = redis::cmd("GET")
        .arg("k")
        .query_async(&mut conn)
        .await
        .expect("a reply in pieces");
    assert_eq!(pieces.len(), pieced_len);
    let err = redis::cmd("GET")
        .arg("k")
        .query_async::<Vec<u8>>(&mut conn)
        .await
        .expect_err("cut off");
    assert!(err.to_string().contains("closed the connection"), "{err}");
}
