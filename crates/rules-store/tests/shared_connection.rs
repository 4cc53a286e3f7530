//! The shared connection against a real Redis: callers share one connection (what
//! makes a batch's publishes go out in one write) until it is forgotten. And a
//! connection of one caller's own (the gate's), opened again after an error.

use rules_store::config::RedisSettings;
use rules_store::redis::{build_pool, OwnConnection, RedisError, SharedConnection};

fn settings() -> RedisSettings {
    RedisSettings {
        url: std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into()),
        cluster: false,
        pool_size: 4,
        acquire_timeout_ms: 5_000,
        connect_timeout_ms: 5_000,
        response_timeout_ms: 5_000,
    }
}

async fn client_id(conn: &mut rules_store::redis::Link) -> i64 {
    redis::cmd("CLIENT")
        .arg("ID")
        .query_async(conn)
        .await
        .expect("CLIENT ID")
}

/// Closes the server's side of the connection with this `CLIENT ID`.
async fn kill_client(id: i64) {
    let mut admin = redis::Client::open(settings().url)
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("admin");
    let _: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .query_async(&mut admin)
        .await
        .expect("CLIENT KILL");
}

#[tokio::test]
async fn callers_share_one_connection_until_it_is_forgotten() {
    let shared = SharedConnection::new(build_pool(&settings()).expect("pool"));
    let (mut a, mut b) = (
        shared.get().await.expect("a"),
        shared.get().await.expect("b"),
    );
    let first = client_id(&mut a).await;
    assert_eq!(
        client_id(&mut b).await,
        first,
        "two callers, one connection"
    );

    // Commands issued at once on clones of it all answer, each its own reply.
    let replies = futures_util::future::join_all((0..50).map(|i| {
        let mut conn = a.clone();
        async move {
            redis::cmd("ECHO")
                .arg(i)
                .query_async::<i64>(&mut conn)
                .await
        }
    }))
    .await;
    let replies: Vec<i64> = replies.into_iter().map(|r| r.expect("echo")).collect();
    assert_eq!(replies, (0..50).collect::<Vec<i64>>());

    // Its connection killed, it fails; forgotten, the next caller gets a working
    // one: the pool checks the dead one before handing it out and replaces it.
    kill_client(first).await;
    assert!(
        redis::cmd("PING")
            .query_async::<String>(&mut a)
            .await
            .is_err(),
        "the killed connection fails"
    );
    shared.forget();
    let mut c = shared.get().await.expect("c");
    assert_ne!(client_id(&mut c).await, first, "a fresh connection");
    assert_eq!(
        client_id(&mut shared.get().await.expect("d")).await,
        client_id(&mut c).await,
        "shared again"
    );
}

/// `CLIENT ID` of the connection `own` holds (opening it if it has none).
async fn own_id(own: &OwnConnection) -> i64 {
    own.run(async |conn| {
        redis::cmd("CLIENT")
            .arg("ID")
            .query_async::<i64>(conn)
            .await
            .map_err(RedisError::from)
    })
    .await
    .expect("CLIENT ID")
}

#[tokio::test]
async fn an_own_connection_is_kept_between_steps_and_opened_again_after_an_error() {
    let own = OwnConnection::new(settings());
    let first = own_id(&own).await;
    assert_eq!(own_id(&own).await, first, "kept between steps");

    // A pipeline's replies, in order, on the same connection.
    let replies: Vec<i64> = own
        .run(async |conn| {
            let mut pipe = redis::pipe();
            for i in 0..20 {
                pipe.cmd("ECHO").arg(i);
            }
            pipe.query_async(conn).await.map_err(RedisError::from)
        })
        .await
        .expect("pipeline");
    assert_eq!(replies, (0..20).collect::<Vec<i64>>());
    assert_eq!(own_id(&own).await, first);

    // Killed by the server, the step on it fails; the next step opens another.
    kill_client(first).await;
    let failed = own
        .run(async |conn| {
            redis::cmd("PING")
                .query_async::<String>(conn)
                .await
                .map_err(RedisError::from)
        })
        .await;
    assert!(failed.is_err(), "the killed connection fails");
    let second = own_id(&own).await;
    assert_ne!(second, first, "a fresh connection after the error");
    assert_eq!(own_id(&own).await, second, "kept again");

    // A server's error reply is an error of the step too: the connection is
    // dropped and the next step opens another (what the gate's retry relies on).
    let refused = own
        .run(async |conn| {
            redis::cmd("NO-SUCH-COMMAND")
                .query_async::<()>(conn)
                .await
                .map_err(RedisError::from)
        })
        .await;
    assert!(refused.is_err());
    assert_ne!(own_id(&own).await, second);
}
