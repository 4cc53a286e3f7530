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
