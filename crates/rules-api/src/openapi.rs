//! The OpenAPI document: paths are collected from the handlers registered through
//! utoipa-actix-web; this adds the title, the security scheme, the schemas the
//! derive does not reach, and the error responses every `/api` operation can give.

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "rule-engine API",
        description = "Rules of livestream events: CRUD, history, analytics and dry runs. See docs/contract.md in the repository."
    ),
    components(schemas(rules_core::Leaf)),
    modifiers(&BearerAuth),
    tags(
        (name = "rules", description = "Rules and dry runs"),
        (name = "history", description = "Executions and analytics"),
        (name = "events", description = "The input streams' newest events"),
        (name = "health", description = "Probes")
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The errors any `/api` operation may answer, documented on each (unless the
/// operation already describes them): 401 and 503 everywhere; with a body also 400,
/// 413, 415 and 422; 500 for anything else. Applied once the routes have added
/// their paths ([`crate::app`]).
pub struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/api") {
                continue;
            }
            for operation in [
                item.get.as_mut(),
                item.post.as_mut(),
                item.put.as_mut(),
                item.patch.as_mut(),
                item.delete.as_mut(),
            ]
            .into_iter()
            .flatten()
            {
                let mut errors = vec![
                    ("401", "Missing or wrong API key"),
                    ("503", "PostgreSQL or Redis unavailable"),
                    (
                        "500",
                        "Internal error (the cause is logged, never returned)",
                    ),
                ];
                let has_query = operation
                    .parameters
                    .iter()
                    .flatten()
                    .any(|p| p.parameter_in == utoipa::openapi::path::ParameterIn::Query);
                if has_query && operation.request_body.is_none() {
                    errors.push(("400", "A bad or unknown query parameter"));
                }
                if operation.request_body.is_some() {
                    errors.extend([
                        ("400", "Malformed JSON (a key twice in one object included)"),
                        ("413", "Body over the limit"),
                        ("415", "Not a JSON body of the accepted type"),
                        ("422", "Every validation problem, by path"),
                    ]);
                }
                add_errors(operation, &errors);
            }
        }
    }
}

fn add_errors(operation: &mut Operation, errors: &[(&str, &str)]) {
    for (status, description) in errors {
        if operation.responses.responses.contains_key(*status) {
            continue;
        }
        let response = ResponseBuilder::new()
            .description(*description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build();
        operation
            .responses
            .responses
            .insert((*status).to_owned(), response.into());
    }
}

/// Links from a created or replaced rule to what can be done with it (its `id` from
/// the response body): what lets a client, or schemathesis' stateful phase, walk
/// create → read, change, delete, history, cooldowns.
pub struct RuleLinks;

impl Modify for RuleLinks {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::link::LinkBuilder;
        use utoipa::openapi::RefOr;
        const TARGETS: [(&str, &str); 8] = [
            ("GetRule", "get_rule"),
            ("ReplaceRule", "replace_rule"),
            ("PatchRule", "patch_rule"),
            ("DeleteRule", "delete_rule"),
            ("ListExecutions", "list_executions"),
            ("Analytics", "analytics"),
            ("ListCooldowns", "list_cooldowns"),
            ("ClearCooldowns", "clear_cooldowns"),
        ];
        let sources = [("/api/rules", "201"), ("/api/rules/{id}", "200")];
        for (path, status) in sources {
            let Some(item) = openapi.paths.paths.get_mut(path) else {
                continue;
            };
            let operation = if path == "/api/rules" {
                item.post.as_mut()
            } else {
                item.put.as_mut()
            };
            let Some(RefOr::T(response)) =
                operation.and_then(|o| o.responses.responses.get_mut(status))
            else {
                continue;
            };
            for (name, operation_id) in TARGETS {
                let link = LinkBuilder::new()
                    .operation_id(operation_id)
                    .parameter("id", "$response.body#/id")
                    .build();
                response.links.insert(name.to_owned(), RefOr::T(link));
            }
        }
    }
}

/// The document as served, rendered once: utoipa 5.5 writes a link's target as
/// `operation_id`, where OpenAPI spells it `operationId` (schemathesis refuses the
/// other). No schema of ours has a property of that name, so the key is renamed in
/// the text, which keeps utoipa's field order (`openapi` first).
pub fn served(openapi: &utoipa::openapi::OpenApi) -> String {
    serde_json::to_string(openapi)
        .expect("the OpenAPI document serializes")
        .replace("\"operation_id\":", "\"operationId\":")
}

/// The rendered document, shared by the app's workers.
pub struct Document(pub actix_web::web::Bytes);

/// `GET /openapi.json`.
pub async fn document(doc: actix_web::web::Data<Document>) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type("application/json")
        .body(doc.0.clone())
}
