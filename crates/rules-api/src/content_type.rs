//! Which body formats each method takes: `application/json` for POST and PUT,
//! `application/merge-patch+json` (or `application/json`) for PATCH. Anything else —
//! `text/plain`, a JSON Patch (`application/json-patch+json`), any other `+json`
//! type, which actix's extractor would otherwise take as JSON — is a 415 naming
//! what is accepted. A request without a `Content-Type` is left to the extractor
//! (also a 415, when a body is expected).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;

use crate::error::ApiError;

/// The body formats `method` takes, if it takes a body.
fn accepted(method: &Method) -> Option<&'static [&'static str]> {
    match *method {
        Method::POST | Method::PUT => Some(&["application/json"]),
        Method::PATCH => Some(&["application/merge-patch+json", "application/json"]),
        _ => None,
    }
}

pub async fn require_known(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let (Some(formats), Some(given)) = (
        accepted(req.method()),
        req.headers().get(header::CONTENT_TYPE),
    ) {
        let essence = given
            .to_str()
            .ok()
            .and_then(|t| t.parse::<actix_web::mime::Mime>().ok())
            .map(|m| m.essence_str().to_ascii_lowercase());
        if !essence.is_some_and(|e| formats.contains(&e.as_str())) {
            return Err(ApiError::UnsupportedMediaType(format!(
                "{} takes {}, not {}",
                req.method(),
                formats.join(" or "),
                given.to_str().unwrap_or("that Content-Type")
            ))
            .into());
        }
    }
    next.call(req).await
}
