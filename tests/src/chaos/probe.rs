//! Steady traffic of the unaffected livestream during a scenario, and its latency:
//! from the `XADD` to the probe receiver's arrival of the webhook it triggers.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

use super::stage::{Stage, UNAFFECTED};
use crate::receiver::Received;

/// Events per second of the probe.
const RATE: u64 = 20;

/// A running probe; [`Probe::stop`] returns what it sent.
pub struct Probe {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    sent: Arc<Mutex<Vec<(Uuid, i64)>>>,
}

impl Probe {
    /// Starts sending to `stage`'s stream.
    pub fn start(stage: &Stage) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let sent = Arc::new(Mutex::new(Vec::new()));
        let (url, stream) = (stage.redis_url.clone(), stage.stream());
        let log = Arc::clone(&sent);
        let task = tokio::spawn(async move {
            let mut conn = None;
            let mut tick = tokio::time::interval(Duration::from_millis(1000 / RATE));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => return,
                }
                if conn.is_none() {
                    conn = connect(&url).await;
                }
                let Some(c) = conn.as_mut() else { continue };
                let id = Uuid::new_v4();
                let sent_ms = chrono::Utc::now().timestamp_millis();
                let event = Stage::donation(id, UNAFFECTED, 0, 0);
                let added = tokio::time::timeout(
                    Duration::from_secs(1),
                    redis::cmd("XADD")
                        .arg(&stream)
                        .arg("*")
                        .arg("event")
                        .arg(event)
                        .query_async::<String>(c),
                )
                .await;
                match added {
                    Ok(Ok(_)) => {
                        if let Ok(mut s) = log.lock() {
                            s.push((id, sent_ms));
                        }
                    }
                    _ => conn = None,
                }
            }
        });
        Self { stop, task, sent }
    }

    /// Stops it; the events it sent (id, time of the `XADD` in ms).
    pub async fn stop(self) -> Vec<(Uuid, i64)> {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

async fn connect(url: &str) -> Option<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(url).ok()?;
    tokio::time::timeout(
        Duration::from_secs(1),
        client.get_multiplexed_async_connection(),
    )
    .await
    .ok()?
    .ok()
}

/// Latency of the probe events sent within `[from_ms, to_ms]`: (p50, p99, max) in ms,
/// and how many of them never arrived.
#[derive(Debug, Clone, Default)]
pub struct Latency {
    pub sent: usize,
    pub p50_ms: Option<i64>,
    pub p99_ms: Option<i64>,
    pub max_ms: Option<i64>,
    pub undelivered: usize,
}

pub fn latency(sent: &[(Uuid, i64)], calls: &[Received], from_ms: i64, to_ms: i64) -> Latency {
    let arrived: std::collections::HashMap<String, i64> = calls
        .iter()
        .rev()
        .filter_map(|c| Some((c.json()["event"].as_str()?.to_owned(), c.at_ms)))
        .collect();
    let window: Vec<&(Uuid, i64)> = sent
        .iter()
        .filter(|(_, at)| (from_ms..=to_ms).contains(at))
        .collect();
    let mut delays: Vec<i64> = window
        .iter()
        .filter_map(|(id, at)| arrived.get(&id.to_string()).map(|t| t - at))
        .collect();
    delays.sort_unstable();
    let pick = |q: f64| {
        (!delays.is_empty()).then(|| {
            let i = ((delays.len() as f64 * q).ceil() as usize).clamp(1, delays.len()) - 1;
            delays[i]
        })
    };
    Latency {
        sent: window.len(),
        p50_ms: pick(0.5),
        p99_ms: pick(0.99),
        max_ms: delays.last().copied(),
        undelivered: window.len() - delays.len(),
    }
}
