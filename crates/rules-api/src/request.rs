//! Request bodies parsed into the types that also document them (OpenAPI): a value
//! of the wrong type is a 422 at its path; fields a type does not know are kept
//! apart (a flattened map) so that every one of them can be named.

use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;

use crate::error::ApiError;
use rules_core::FieldError;

/// Parses `body` into `T`, or a 422 naming the path of the first value that is not
/// what `T` says.
pub fn parse<T: DeserializeOwned>(body: Value) -> Result<T, ApiError> {
    if !body.is_object() {
        return Err(ApiError::Validation(vec![FieldError {
            path: String::new(),
            message: "must be a JSON object".into(),
        }]));
    }
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        ApiError::Validation(vec![FieldError {
            path: if path == "." { String::new() } else { path },
            message: e.inner().to_string(),
        }])
    })
}

/// One problem per field the request type does not know.
pub fn unknown_fields(unknown: &BTreeMap<String, Value>) -> Vec<FieldError> {
    unknown
        .keys()
        .map(|key| FieldError {
            path: key.clone(),
            message: "is not a known field".into(),
        })
        .collect()
}
