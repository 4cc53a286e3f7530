//! Query strings no handler should see: one holding U+0000 (`%00`) is answered 400
//! here, before any extractor, since PostgreSQL cannot compare text holding it.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

use crate::error::ApiError;

pub async fn refuse_nul(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let query = req.query_string();
    if query.contains("%00") || query.contains('\0') {
        return Err(ApiError::bad_request(
            "invalid_query",
            "query parameters must not contain the character U+0000",
        )
        .into());
    }
    next.call(req).await
}
