//! A request body must arrive within `api.body_timeout_seconds` of the request's
//! start: a client trickling it in (one byte every ten seconds) would otherwise hold
//! a connection and its buffers forever. Past the deadline reading the body fails,
//! and the request is answered 408.

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::Next;
use actix_web::web;
use futures_util::StreamExt;
use std::time::Duration;

/// How long a body may take; in the app data.
#[derive(Clone, Copy)]
pub struct BodyTimeout(pub Duration);

/// The message the JSON error handler recognises as this deadline.
pub const TIMED_OUT: &str = "request body not received in time";

pub async fn enforce(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let limit = req
        .app_data::<web::Data<BodyTimeout>>()
        .map_or(Duration::from_secs(10), |t| t.0);
    let deadline = tokio::time::Instant::now() + limit;
    let payload = std::mem::replace(req.parts_mut().1, Payload::None);
    let bounded = futures_util::stream::unfold(Some(payload), move |state| async move {
        let mut payload = state?;
        match tokio::time::timeout_at(deadline, payload.next()).await {
            Ok(Some(chunk)) => Some((chunk, Some(payload))),
            Ok(None) => None,
            Err(_) => Some((
                Err(PayloadError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    TIMED_OUT,
                ))),
                None,
            )),
        }
    });
    let boxed: std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<actix_web::web::Bytes, PayloadError>>>,
    > = Box::pin(bounded);
    req.set_payload(Payload::from(boxed));
    next.call(req).await
}
