//! The one place errors become HTTP responses.
//!
//! Every error answers with the contract's shape
//! `{"error": {"code", "message", "details": [{"path", "message"}]}}`. Unknown failures
//! become a 500 with a generic message; the cause goes to the log, never to the client.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use rules_core::FieldError;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request is invalid")]
    Validation(Vec<FieldError>),
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{method} is not a method of this resource; it takes {allow}")]
    MethodNotAllowed { method: String, allow: String },
    #[error("version {expected} does not match the current version {current}")]
    Conflict { expected: i32, current: i32 },
    #[error("If-Match {expected} does not match the current version {current}")]
    PreconditionFailed { expected: String, current: i32 },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("the request body did not arrive within {0} s")]
    RequestTimeout(u64),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("a valid `Authorization: Bearer <key>` header is required")]
    Unauthorized,
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

/// The JSON body of every error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `validation_failed`, `malformed_json`, `not_found`, ...
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<FieldError>,
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// One validation problem at `path` (a request field, such as `limit`).
    pub fn invalid(path: &str, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError {
            path: path.into(),
            message: message.into(),
        }])
    }

    pub fn rule_not_found(id: impl std::fmt::Display) -> Self {
        ApiError::NotFound(format!("no rule with id {id}"))
    }

    /// Validation problems of a nested document, their paths put under `prefix`
    /// (`rule` → `rule.trigger_config.condition.op`).
    pub fn validation_under(prefix: &str, errors: Vec<FieldError>) -> Self {
        ApiError::Validation(FieldError::under(prefix, errors))
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        ApiError::Internal(cause.to_string())
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::Validation(_) => "validation_failed",
            ApiError::BadRequest { code, .. } => code,
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::Conflict { .. } => "version_conflict",
            ApiError::PreconditionFailed { .. } => "precondition_failed",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::RequestTimeout(_) => "request_timeout",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.to_string(),
                details: match self {
                    ApiError::Validation(details) => details.clone(),
                    _ => Vec::new(),
                },
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Internal(cause) => tracing::error!(error = %cause, "internal error"),
            ApiError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "dependency unavailable")
            }
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        match self {
            ApiError::Unauthorized => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            ApiError::MethodNotAllowed { allow, .. } => {
                response.insert_header((header::ALLOW, allow.as_str()));
            }
            _ => {}
        }
        response.json(self.body())
    }
}

impl From<rules_store::db::DbError> for ApiError {
    fn from(e: rules_store::db::DbError) -> Self {
        match e {
            rules_store::db::DbError::Pool(cause) => {
                tracing::warn!(error = %cause, "database unavailable");
                ApiError::Unavailable("the database is unavailable".into())
            }
            other => ApiError::internal(other),
        }
    }
}

/// Redis unreachable or failing: a 503 whose body names the service; the cause
/// goes to the log, never to the client.
impl From<rules_store::redis::RedisError> for ApiError {
    fn from(e: rules_store::redis::RedisError) -> Self {
        tracing::warn!(error = %e, "redis unavailable");
        ApiError::Unavailable("Redis is unavailable".into())
    }
}

impl From<rules_store::streams::StreamError> for ApiError {
    fn from(e: rules_store::streams::StreamError) -> Self {
        match e {
            rules_store::streams::StreamError::Redis(e) => e.into(),
            other => ApiError::internal(other),
        }
    }
}

impl From<rules_core::ValidationErrors> for ApiError {
    fn from(e: rules_core::ValidationErrors) -> Self {
        ApiError::Validation(e.0)
    }
}

/// Maps actix's JSON body errors: too large → 413, wrong type → 415, bad JSON → 400.
pub fn json_error(
    err: actix_web::error::JsonPayloadError,
    req: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as E;
    let api = match &err {
        E::OverflowKnownLength { length, limit } => {
            ApiError::PayloadTooLarge(format!("body is {length} bytes, over the limit of {limit}"))
        }
        E::Overflow { limit } => {
            ApiError::PayloadTooLarge(format!("body is over the limit of {limit} bytes"))
        }
        E::ContentType => ApiError::UnsupportedMediaType(
            "the body must be JSON (Content-Type: application/json)".into(),
        ),
        E::Deserialize(e) => {
            ApiError::bad_request("malformed_json", format!("body is not valid JSON: {e}"))
        }
        E::Payload(p) if p.to_string().contains(crate::body_deadline::TIMED_OUT) => {
            let seconds = req
                .app_data::<actix_web::web::Data<crate::body_deadline::BodyTimeout>>()
                .map_or(0, |t| t.0.as_secs());
            ApiError::RequestTimeout(seconds)
        }
        other => ApiError::bad_request("bad_body", other.to_string()),
    };
    api.into()
}

/// Query-string errors are 400 with serde's explanation.
pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::bad_request("bad_query", format!("invalid query parameters: {err}")).into()
}

/// A malformed id in a path names no rule: 404; unless the path is another route's
/// (`GET /api/rules/test`), which takes other methods: 405.
pub fn path_error(
    err: actix_web::error::PathError,
    req: &actix_web::HttpRequest,
) -> actix_web::Error {
    req.app_data::<actix_web::web::Data<crate::unmatched::KnownRoutes>>()
        .and_then(|routes| routes.refusal(req))
        .unwrap_or_else(|| ApiError::NotFound(format!("no such resource ({err})")))
        .into()
}
