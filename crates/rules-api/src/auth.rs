//! Bearer-key authentication of `/api`, compared in constant time.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web;
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// The accepted keys; empty with auth disabled.
#[derive(Clone)]
pub struct ApiKeys {
    keys: Vec<Vec<u8>>,
    disabled: bool,
}

impl ApiKeys {
    pub fn new(keys: &[String], disabled: bool) -> Self {
        Self {
            keys: keys.iter().map(|k| k.as_bytes().to_vec()).collect(),
            disabled,
        }
    }

    /// Whether `presented` is one of the keys; every key is compared, in constant time.
    fn accepts(&self, presented: &[u8]) -> bool {
        let mut ok = subtle::Choice::from(0);
        for key in &self.keys {
            ok |= key.as_slice().ct_eq(presented);
        }
        bool::from(ok)
    }
}

pub async fn require_key(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let keys = req
        .app_data::<web::Data<ApiKeys>>()
        .ok_or_else(|| ApiError::internal("ApiKeys missing from app data"))?;
    if !keys.disabled {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        match presented {
            Some(key) if keys.accepts(key.as_bytes()) => {}
            _ => return Err(ApiError::Unauthorized.into()),
        }
    }
    next.call(req).await
}
