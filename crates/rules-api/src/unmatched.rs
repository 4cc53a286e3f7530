//! Requests no route takes: a known path with another method is a 405 naming the
//! methods it takes in `Allow` (RFC 9110 §15.5.6), anything else a 404. The known
//! paths and their methods are read from the OpenAPI document the routes generate,
//! so this never drifts from the routes themselves.

use actix_web::{web, HttpRequest, HttpResponse};
use utoipa::openapi::OpenApi;

use crate::error::ApiError;

/// Each documented path as segments (`None` for a `{parameter}`), with its methods.
pub struct KnownRoutes(Vec<(Vec<Option<String>>, Vec<&'static str>)>);

impl KnownRoutes {
    /// The routes of `doc`, plus the undocumented `/metrics` (GET).
    pub fn of(doc: &OpenApi) -> Self {
        let mut routes: Vec<(Vec<Option<String>>, Vec<&'static str>)> = doc
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods = [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("DELETE", item.delete.is_some()),
                ]
                .into_iter()
                .filter_map(|(name, present)| present.then_some(name))
                .collect();
                (segments(path), methods)
            })
            .collect();
        routes.push((segments("/metrics"), vec!["GET"]));
        Self(routes)
    }

    /// The methods `path` takes, if it is a known path (a literal segment matching
    /// before a parameter: `/api/rules/test` is not `/api/rules/{id}`).
    fn allowed(&self, path: &str) -> Option<&[&'static str]> {
        let asked: Vec<&str> = path.split('/').collect();
        self.0
            .iter()
            .filter(|(pattern, _)| {
                pattern.len() == asked.len()
                    && pattern.iter().zip(&asked).all(|(p, a)| match p {
                        Some(literal) => literal == a,
                        None => !a.is_empty(),
                    })
            })
            .max_by_key(|(pattern, _)| pattern.iter().filter(|p| p.is_some()).count())
            .map(|(_, methods)| methods.as_slice())
    }
}

fn segments(path: &str) -> Vec<Option<String>> {
    path.split('/')
        .map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_owned()))
        .collect()
}

impl KnownRoutes {
    /// The 405 for a request to a known path with a method it does not take.
    pub fn refusal(&self, req: &HttpRequest) -> Option<ApiError> {
        let methods = self.allowed(req.path())?;
        let method = req.method().as_str();
        (!methods.contains(&method)).then(|| ApiError::MethodNotAllowed {
            method: method.to_owned(),
            allow: methods.join(", "),
        })
    }
}

/// The app's default service.
pub async fn unmatched(
    req: HttpRequest,
    routes: web::Data<KnownRoutes>,
) -> Result<HttpResponse, ApiError> {
    Err(routes
        .refusal(&req)
        .unwrap_or_else(|| ApiError::NotFound("no such route".into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_paths_with_parameters() {
        let routes = KnownRoutes(vec![
            (segments("/api/rules/{id}"), vec!["GET", "PUT"]),
            (segments("/api/rules/test"), vec!["POST"]),
        ]);
        assert_eq!(routes.allowed("/api/rules/abc"), Some(&["GET", "PUT"][..]));
        assert_eq!(routes.allowed("/api/rules/test"), Some(&["POST"][..]));
        assert_eq!(
            KnownRoutes(vec![
                (segments("/api/rules/test"), vec!["POST"]),
                (segments("/api/rules/{id}"), vec!["GET"]),
            ])
            .allowed("/api/rules/test"),
            Some(&["POST"][..])
        );
        assert_eq!(routes.allowed("/api/rules/abc/x"), None);
        assert_eq!(routes.allowed("/api/rules/"), None);
        assert_eq!(routes.allowed("/nope"), None);
    }
}
