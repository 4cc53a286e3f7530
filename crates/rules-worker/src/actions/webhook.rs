//! The webhook action: signed (Standard Webhooks), idempotent (`Idempotency-Key`),
//! bounded in time, retried with backoff on transient failures only, and refused
//! for destinations outside the public internet unless configured otherwise.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::redirect::Policy;
use rules_core::HttpMethod;
use rules_store::config::WebhookSettings;
use serde_json::Value;
use sha2::Sha256;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

use rules_store::gate::destination::{self, Outcome, Permit, Policy as DestinationPolicy};
use rules_store::redis::{RedisPool, SharedConnection};

use super::destination::{check_literal, GlobalOnlyResolver, Unreachable};

/// First retry delay; doubles per attempt, with jitter ([`rules_store::backoff`]), capped.
const BASE_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How often a call waiting for another call's probe of a destination asks again.
const PROBE_POLL_MS: u64 = 50;

#[derive(Debug, thiserror::Error)]
pub enum WebhookSetupError {
    #[error("worker.signing_secret: not valid base64 after `whsec_`")]
    Secret,
    #[error("webhook client: {0}")]
    Client(String),
}

/// Standard Webhooks signer: HMAC-SHA256 over `"{id}.{timestamp}.{body}"`.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl Signer {
    pub fn new(secret: &str) -> Result<Self, WebhookSetupError> {
        let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
        let key = BASE64
            .decode(encoded)
            .map_err(|_| WebhookSetupError::Secret)?;
        Ok(Self { key })
    }

    /// The `webhook-signature` header value.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC takes keys of any length.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => return String::new(),
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
    }
}

/// One rendered webhook call.
pub struct WebhookRequest<'a> {
    pub url: &'a str,
    pub method: HttpMethod,
    pub headers: &'a BTreeMap<String, String>,
    pub body: &'a Value,
    pub timeout: Duration,
    /// The execution id: `Idempotency-Key` and `webhook-id`, the same on every retry.
    pub execution_id: Uuid,
}

/// How a webhook call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookOutcome {
    pub ok: bool,
    pub http_status: Option<u16>,
    pub attempts: u32,
    pub error: Option<String>,
}

#[derive(Clone)]
pub struct WebhookClient {
    client: reqwest::Client,
    signer: Option<Signer>,
    max_attempts: u32,
    allow_private: bool,
    /// Breakers and rate limits per destination, shared through Redis, on a
    /// connection kept between calls (a pooled one costs a round trip of its own).
    redis: Arc<SharedConnection>,
    policy: DestinationPolicy,
}

impl WebhookClient {
    pub fn new(settings: &WebhookSettings, redis: RedisPool) -> Result<Self, WebhookSetupError> {
        let allow_private = settings.allow_private;
        let max_redirects = settings.max_redirects;
        let redirects = if max_redirects == 0 {
            Policy::none()
        } else {
            // Each hop's host is resolved through the same filtering resolver; IP
            // literals are checked here since they are never resolved.
            Policy::custom(move |attempt| {
                if attempt.previous().len() > max_redirects {
                    attempt.error("too many redirects")
                } else if let Err(e) = check_literal(attempt.url(), allow_private) {
                    attempt.error(e)
                } else {
                    attempt.follow()
                }
            })
        };
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GlobalOnlyResolver { allow_private }))
            .redirect(redirects)
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("rule-engine/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| WebhookSetupError::Client(e.to_string()))?;
        let signer = settings
            .signing_secret
            .as_deref()
            .map(Signer::new)
            .transpose()?;
        Ok(Self {
            client,
            signer,
            max_attempts: settings.max_attempts.max(1),
            allow_private,
            redis: Arc::new(SharedConnection::new(redis)),
            policy: DestinationPolicy {
                failures_to_open: settings.breaker_failures,
                cooloff_ms: settings.breaker_cooloff_seconds * 1000,
                per_second: settings.rate_limit_per_second,
            },
        })
    }

    /// Calls the webhook, retrying transient failures (connect errors, timeouts,
    /// 429, 5xx) with exponential backoff and jitter, honouring `Retry-After`.
    pub async fn send(&self, request: &WebhookRequest<'_>) -> WebhookOutcome {
        let fail = |attempts, error: String| WebhookOutcome {
            ok: false,
            http_status: None,
            attempts,
            error: Some(error),
        };
        let url = match reqwest::Url::parse(request.url) {
            Ok(u) => u,
            Err(e) => return fail(0, format!("invalid url: {e}")),
        };
        if let Err(e) = check_literal(&url, self.allow_private) {
            return fail(0, e);
        }
        let body = match serde_json::to_vec(request.body) {
            Ok(b) => b,
            Err(e) => return fail(0, format!("body: {e}")),
        };
        let headers = match self.headers(request, &body) {
            Ok(h) => h,
            Err(e) => return fail(0, e),
        };
        let method = match request.method {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Post => reqwest::Method::POST,
            HttpMethod::Put => reqwest::Method::PUT,
            HttpMethod::Patch => reqwest::Method::PATCH,
            HttpMethod::Delete => reqwest::Method::DELETE,
        };
        let host = rules_core::address::destination_of(&url);
        let deadline = tokio::time::Instant::now() + request.timeout;
        let mut attempt = 0;
        let mut last_failure: Option<String> = None;
        loop {
            attempt += 1;
            // The destination's breaker and rate limit, shared by all workers.
            loop {
                match self.permit(&host).await {
                    Permit::Go | Permit::Probe => break,
                    Permit::Open { last_error } => {
                        metrics::counter!("webhook_circuit_open_total").increment(1);
                        let cause = last_error
                            .or_else(|| last_failure.clone())
                            .map_or_else(String::new, |c| format!(" (last failure: {c})"));
                        return fail(
                            attempt - 1,
                            format!(
                                "circuit_open: {host} failed repeatedly; calls are paused{cause}"
                            ),
                        );
                    }
                    Permit::Wait(ms) => {
                        metrics::counter!("webhook_rate_limited_total").increment(1);
                        let until = tokio::time::Instant::now() + Duration::from_millis(ms);
                        if until > deadline {
                            return fail(
                                attempt - 1,
                                format!("rate_limited: {host} is over its call rate"),
                            );
                        }
                        tokio::time::sleep_until(until).await;
                    }
                    Permit::Probing(ms) => {
                        // Asked again soon: the probe's answer usually comes well
                        // before its flag would expire.
                        let until = tokio::time::Instant::now()
                            + Duration::from_millis(ms.min(PROBE_POLL_MS));
                        if until > deadline {
                            return fail(
                                attempt - 1,
                                format!(
                                    "circuit_open: {host} is being probed after failing repeatedly; no answer within the timeout"
                                ),
                            );
                        }
                        tokio::time::sleep_until(until).await;
                    }
                }
            }
            let mut builder = self
                .client
                .request(method.clone(), url.clone())
                .headers(headers.clone())
                .timeout(request.timeout);
            if method != reqwest::Method::GET {
                builder = builder.body(body.clone());
            }
            let (retryable, outcome, retry_after) = match builder.send().await {
                Ok(response) => {
                    let status = response.status();
                    let retry_after = response
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let ok = status.is_success();
                    let retryable = status.as_u16() == 429 || status.is_server_error();
                    let outcome = WebhookOutcome {
                        ok,
                        http_status: Some(status.as_u16()),
                        attempts: attempt,
                        error: (!ok).then(|| format!("HTTP {status}")),
                    };
                    (retryable, outcome, retry_after)
                }
                Err(e) => {
                    let refused = caused_by_refusal(&e);
                    let retryable =
                        !refused && (e.is_timeout() || e.is_connect() || e.is_request());
                    let kind = if e.is_timeout() {
                        "timeout"
                    } else if e.is_connect() {
                        "connect error"
                    } else if e.is_redirect() {
                        "redirect refused"
                    } else {
                        "request error"
                    };
                    (
                        retryable,
                        fail(attempt, format!("{kind}: {}", error_chain(&e))),
                        None,
                    )
                }
            };
            // A destination that answered (even 4xx) is up; transient failures count.
            if retryable {
                let cause = outcome.error.clone().unwrap_or_else(|| "failed".into());
                self.record(&host, Outcome::Failed(&cause)).await;
                last_failure = Some(cause);
            } else {
                self.record(&host, Outcome::Up).await;
            }
            if outcome.ok || !retryable || attempt >= self.max_attempts {
                return outcome;
            }
            tokio::time::sleep(backoff(attempt, retry_after)).await;
        }
    }

    /// Asks the shared breaker and rate limit; with Redis unreachable, calls go ahead.
    async fn permit(&self, host: &str) -> Permit {
        self.redis
            .run(async |conn| destination::acquire(conn, host, self.policy).await)
            .await
            .unwrap_or(Permit::Go)
    }

    async fn record(&self, host: &str, outcome: Outcome<'_>) {
        let recorded = self
            .redis
            .run(async |conn| destination::record(conn, host, outcome, self.policy).await)
            .await;
        match recorded {
            Ok(true) => {
                metrics::counter!("webhook_circuit_opened_total").increment(1);
                if let Outcome::Failed(cause) = outcome {
                    tracing::warn!(
                        host,
                        cause,
                        cooloff_ms = self.policy.cooloff_ms,
                        "webhook destination's circuit opened"
                    );
                }
            }
            Ok(false) => {}
            Err(e) => tracing::debug!(error = %e, host, "recording a webhook outcome failed"),
        }
    }

    fn headers(&self, request: &WebhookRequest<'_>, body: &[u8]) -> Result<HeaderMap, String> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in request.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("invalid header name {name}"))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| format!("invalid value for header {name}"))?;
            headers.insert(name, value);
        }
        let id = request.execution_id.to_string();
        let id_value = HeaderValue::from_str(&id).map_err(|e| e.to_string())?;
        headers.insert("idempotency-key", id_value.clone());
        if let Some(signer) = &self.signer {
            let timestamp = chrono::Utc::now().timestamp();
            headers.insert("webhook-id", id_value);
            headers.insert("webhook-timestamp", HeaderValue::from(timestamp));
            let signature = signer.sign(&id, timestamp, body);
            headers.insert(
                "webhook-signature",
                HeaderValue::from_str(&signature).map_err(|e| e.to_string())?,
            );
        }
        Ok(headers)
    }
}

/// The delay before retry number `attempt` (1-based): the worker's backoff, at
/// least the server's `Retry-After`, never more than the cap.
fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    rules_store::backoff::nth(BASE_BACKOFF, MAX_BACKOFF, attempt)
        .max(retry_after.unwrap_or_default())
        .min(MAX_BACKOFF)
}

/// Whether the resolver refused the destination (somewhere in `e`'s causes).
fn caused_by_refusal(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if matches!(
            c.downcast_ref::<Unreachable>(),
            Some(Unreachable::NotAllowed { .. })
        ) {
            return true;
        }
        cause = c.source();
    }
    false
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_with_the_standard_webhooks_library() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let signer = Signer::new(secret).expect("secret");
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let ts = chrono::Utc::now().timestamp();
        let body = br#"{"test": 2432232314}"#;
        let signature = signer.sign(id, ts, body);
        let verifier = standardwebhooks::Webhook::new(secret).expect("verifier");
        let mut headers = http::HeaderMap::new();
        headers.insert("webhook-id", id.parse().expect("header"));
        headers.insert("webhook-timestamp", ts.to_string().parse().expect("header"));
        headers.insert("webhook-signature", signature.parse().expect("header"));
        assert!(verifier.verify(body, &headers).is_ok(), "{signature}");
        let tampered = br#"{"test": 2432232315}"#;
        assert!(verifier.verify(tampered, &headers).is_err());
    }

    #[test]
    fn backoff_grows_with_jitter_and_respects_retry_after() {
        for attempt in 1..=6 {
            let d = backoff(attempt, None);
            let nominal = BASE_BACKOFF
                .saturating_mul(1 << (attempt - 1))
                .min(MAX_BACKOFF);
            assert!(
                d >= nominal && d <= nominal.saturating_mul(2).min(MAX_BACKOFF),
                "{attempt}: {d:?}"
            );
        }
        assert_eq!(
            backoff(1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(backoff(1, Some(Duration::from_secs(300))), MAX_BACKOFF);
    }
}
