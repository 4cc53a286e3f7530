//! The OpenAPI document: paths are collected from the handlers registered through
//! utoipa-actix-web; this adds the title, the security scheme and the schemas.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "rule-engine API",
        description = "Rules of livestream events: CRUD, history, analytics and dry runs. See docs/contract.md in the repository."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "rules", description = "Rules and dry runs"),
        (name = "history", description = "Executions and analytics"),
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
