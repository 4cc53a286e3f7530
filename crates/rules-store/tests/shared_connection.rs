//! The shared connection against a real Redis: callers share one connection (what
//! makes a batch's publishes go out in one write) until it is forgotten.

use rules_store::config::RedisSettings;
use rules_store::redis::{build_pool, SharedConnection};

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
    let mut admin = redis::Client::open(settings().url)
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("admin");
    let _: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(first)
        .query_async(&mut admin)
        .await
        .expect("CLIENT KILL");
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
