//! A real local HTTP server that records the webhooks it receives and answers with
//! a scripted sequence of statuses, or behaves as a failing destination does
//! ([`Behaviour`]: hanging, answering 500, slow, resetting connections).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: std::time::Instant,
    /// Wall-clock time of arrival, milliseconds since the epoch.
    pub at_ms: i64,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// How the receiver answers once its script is exhausted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Behaviour {
    /// 200 at once.
    #[default]
    Healthy,
    /// 200 after this long: slow but fine.
    Slow(Duration),
    /// Never answers (holds the request for an hour).
    Hangs,
    /// Answers this status (500: a failing destination).
    Fails(u16),
    /// Resets every connection (TCP RST), open ones included; only with
    /// [`Receiver::start_with_faults`], which puts a front in place that can.
    ResetsConnections,
}

#[derive(Default)]
struct Shared {
    received: Vec<Received>,
    /// Statuses to answer with, in order; then as `behaviour` says.
    script: VecDeque<u16>,
    behaviour: Behaviour,
}

/// The receiver; stopped when dropped.
pub struct Receiver {
    pub port: u16,
    shared: Arc<Mutex<Shared>>,
    handle: actix_web::dev::ServerHandle,
    /// The front that can reset connections, when started with one.
    front: Option<tokio::sync::watch::Sender<Behaviour>>,
}

impl Receiver {
    /// Starts on a free loopback port; `script` are the first statuses it answers.
    pub fn start(script: &[u16]) -> anyhow::Result<Self> {
        let receiver = Self::serve(script, std::net::TcpListener::bind("127.0.0.1:0")?)?;
        forget_destination(receiver.port);
        Ok(receiver)
    }

    /// Starts behind a TCP front of its own on a free port, so that
    /// [`Behaviour::ResetsConnections`] can reset connections, open ones included.
    pub fn start_with_faults() -> anyhow::Result<Self> {
        let mut receiver = Self::start(&[])?;
        let front = std::net::TcpListener::bind("127.0.0.1:0")?;
        let backend = receiver.port;
        receiver.port = front.local_addr()?.port();
        receiver.front = Some(crate::reset_front::spawn(front, backend)?);
        Ok(receiver)
    }

    /// Changes how it answers from now on.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        if let Ok(mut s) = self.shared.lock() {
            s.behaviour = behaviour;
        }
        if let Some(front) = &self.front {
            front.send_replace(behaviour);
        }
    }

    fn serve(script: &[u16], listener: std::net::TcpListener) -> anyhow::Result<Self> {
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Mutex::new(Shared {
            received: Vec::new(),
            script: script.iter().copied().collect(),
            behaviour: Behaviour::Healthy,
        }));
        let (tx, rx) = std::sync::mpsc::channel();
        let state = Arc::clone(&shared);
        std::thread::spawn(move || {
            let system = actix_web::rt::System::new();
            let _ = system.block_on(async move {
                let data = web::Data::new(state);
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .default_service(web::to(record))
                })
                .workers(1)
                .disable_signals()
                .listen(listener)?
                .run();
                let _ = tx.send(server.handle());
                server.await
            });
        });
        let handle = rx.recv()?;
        Ok(Self {
            port,
            shared,
            handle,
            front: None,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared
            .lock()
            .map(|s| s.received.clone())
            .unwrap_or_default()
    }
}

/// Deletes the shared Redis' breaker, probe and rate keys of `127.0.0.1:<port>`: a
/// later test's receiver may get the same port and must not inherit an open circuit.
fn forget_destination(port: u16) {
    let pattern = format!("re:dest:{{127.0.0.1:{port}}}:*");
    if let Err(e) = crate::RedisUnderTest::shared().delete_matching(&pattern) {
        eprintln!("warning: could not delete {pattern}: {e:#}");
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        forget_destination(self.port);
        let handle = self.handle.clone();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(handle.stop(false));
        });
    }
}

async fn record(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Arc<Mutex<Shared>>>,
) -> HttpResponse {
    let (status, delay) = match state.lock() {
        Ok(mut s) => {
            s.received.push(Received {
                method: req.method().to_string(),
                path: req.path().to_owned(),
                headers: req
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
                    .collect(),
                body: body.to_vec(),
                at: std::time::Instant::now(),
                at_ms: chrono::Utc::now().timestamp_millis(),
            });
            match (s.script.pop_front(), s.behaviour) {
                (Some(status), _) => (status, None),
                (None, Behaviour::Slow(d)) => (200, Some(d)),
                (None, Behaviour::Hangs) => (200, Some(Duration::from_secs(3600))),
                (None, Behaviour::Fails(status)) => (status, None),
                (None, Behaviour::Healthy | Behaviour::ResetsConnections) => (200, None),
            }
        }
        Err(_) => (500, None),
    };
    // `/slow/<ms>` answers after that long: a destination that hangs.
    let slow_path = req
        .path()
        .strip_prefix("/slow/")
        .and_then(|m| m.parse::<u64>().ok())
        .map(Duration::from_millis);
    if let Some(d) = slow_path.or(delay) {
        actix_web::rt::time::sleep(d).await;
    }
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default()).finish()
}
