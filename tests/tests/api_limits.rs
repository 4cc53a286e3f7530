//! The real API binary against clients that misbehave on the wire.

use rules_e2e::{api_env, free_port, wait_http_ok, Process, TestDb, TEST_KEY};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_body_trickled_in_is_cut_off_with_408() -> anyhow::Result<()> {
    let db = TestDb::migrated().await?;
    let port = free_port()?;
    let _api = Process::start(
        "rules-api",
        &api_env(
            &db.url,
            port,
            true,
            &[("RULES__API__BODY_TIMEOUT_SECONDS", "1".into())],
        ),
    )?;
    wait_http_ok(
        &format!("http://127.0.0.1:{port}/health/live"),
        Duration::from_secs(20),
    )
    .await?;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let head = format!(
        "POST /api/rules HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TEST_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    );
    stream.write_all(head.as_bytes()).await?;
    let started = Instant::now();
    // One more byte now and then, far slower than any real client.
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            tokio::select! {
                n = stream.read(&mut buf) => {
                    let n = n?;
                    if n == 0 { break; }
                    answer.extend_from_slice(&buf[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n") { break; }
                }
                _ = tokio::time::sleep(Duration::from_millis(400)) => {
                    let _ = stream.write_all(b" ").await;
                }
            }
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(Duration::from_secs(15), read).await??;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(10));
    Ok(())
}

/// A rule whose 60 ignore-case regexes each take long to compile and are refused
/// as too large: seconds of CPU for one validation in a debug build.
fn heavy_dry_run() -> serde_json::Value {
    let leaves: Vec<_> = (0..60)
        .map(|_| serde_json::json!({"field": "data.s", "op": "matches", "value": "\\w{60}\\d{60}q", "ignore_case": true}))
        .collect();
    serde_json::json!({
        "rule": {"livestream_id": rules_e2e::worker::LS, "name": "h",
                 "trigger_config": {"event_types": ["t"], "condition": {"any": leaves}},
                 "actions": [{"type": "log", "message": "m"}]},
        "event": {"id": uuid::Uuid::new_v4(), "type": "t", "livestream_id": rules_e2e::worker::LS,
                  "data": {"s": "a".repeat(150_000)}}
    })
}

#[tokio::test]
async fn probes_answer_while_cpu_heavy_requests_grind() -> anyhow::Result<()> {
    let db = TestDb::migrated().await?;
    let port = free_port()?;
    let _api = Process::start("rules-api", &api_env(&db.url, port, true, &[]))?;
    let base = format!("http://127.0.0.1:{port}");
    wait_http_ok(&format!("{base}/health/live"), Duration::from_secs(20)).await?;
    let client = rules_e2e::http_client();
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut heavy = Vec::new();
    for _ in 0..4 {
        let (client, base, finished) = (client.clone(), base.clone(), finished.clone());
        heavy.push(tokio::spawn(async move {
            let status = client
                .post(format!("{base}/api/rules/test"))
                .bearer_auth(TEST_KEY)
                .json(&heavy_dry_run())
                .send()
                .await
                .map(|r| r.status().as_u16());
            finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            status
        }));
    }
    // Let them reach the server and start grinding.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let probe = client.get(format!("{base}/health/live")).send().await?;
    assert_eq!(probe.status().as_u16(), 200);
    assert_eq!(
        finished.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the probe was answered while every heavy request was still running"
    );
    for h in heavy {
        assert_eq!(h.await?.ok(), Some(422));
    }
    Ok(())
}
