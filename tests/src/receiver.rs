//! A real local HTTP server that records the webhooks it receives and answers with
//! a scripted sequence of statuses.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: std::time::Instant,
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

#[derive(Default)]
struct Shared {
    received: Vec<Received>,
    /// Statuses to answer with, in order; 200 once exhausted.
    script: VecDeque<u16>,
}

/// The receiver; stopped when dropped.
pub struct Receiver {
    pub port: u16,
    shared: Arc<Mutex<Shared>>,
    handle: actix_web::dev::ServerHandle,
}

impl Receiver {
    /// Starts on a free loopback port; `script` are the first statuses it answers.
    pub fn start(script: &[u16]) -> anyhow::Result<Self> {
        let shared = Arc::new(Mutex::new(Shared {
            received: Vec::new(),
            script: script.iter().copied().collect(),
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
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

impl Drop for Receiver {
    fn drop(&mut self) {
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
    let status = match state.lock() {
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
            });
            s.script.pop_front().unwrap_or(200)
        }
        Err(_) => 500,
    };
    // `/slow/<ms>` answers after that long: a destination that hangs.
    if let Some(ms) = req
        .path()
        .strip_prefix("/slow/")
        .and_then(|m| m.parse::<u64>().ok())
    {
        actix_web::rt::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default()).finish()
}
