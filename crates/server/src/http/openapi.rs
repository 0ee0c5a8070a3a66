//! The OpenAPI document. Each route declares its own request, its answers and the
//! credentials it takes; [`complete`] then adds the answers every route of a kind can
//! give, so that no route forgets them: a JSON body can be malformed, too large, of the
//! wrong type or too slow; a parameter can be malformed; a secured route can be called
//! without valid credentials, an admin route with a key of the wrong scope; any route
//! can meet an oversized header section or an internal error.

use stepgate_api::Problem;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr};
use utoipa::{Modify, OpenApi as _};

/// An API key with scope `admin` (`sgk_…`).
pub const ADMIN_KEY: &str = "admin_key";
/// An API key with scope `service` or `admin`.
pub const SERVICE_KEY: &str = "service_key";
/// A user's access token.
pub const ACCESS_TOKEN: &str = "access_token";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "stepgate", description = "Risk-based step-up authentication and authorization."),
    modifiers(&SecuritySchemes),
    components(schemas(Problem))
)]
pub struct ApiDoc;

/// The document's skeleton: title, security schemes and shared schemas, before the
/// routes are added.
pub fn skeleton() -> OpenApi {
    ApiDoc::openapi()
}

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(description))
                    .build(),
            )
        };
        components.add_security_scheme(ADMIN_KEY, bearer("An API key (`sgk_…`) with scope admin"));
        components.add_security_scheme(
            SERVICE_KEY,
            bearer("An API key (`sgk_…`) with scope service (an admin key also serves)"),
        );
        components.add_security_scheme(
            ACCESS_TOKEN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A user's access token from POST /v1/sessions (scheme DPoP for a \
                         DPoP-bound token, with its proof in the DPoP header)",
                    ))
                    .build(),
            ),
        );
    }
}

/// The answers shared by routes of a kind, as reusable responses: (status, name,
/// description). Each is a problem document whose `code` the description names.
const SHARED: [(&str, &str, &str); 7] = [
    (
        "400",
        "BadRequest",
        "VALIDATION_FAILED: the body, a parameter or a header is not what this route takes",
    ),
    (
        "401",
        "Unauthenticated",
        "UNAUTHENTICATED: no credentials, or credentials that are not valid",
    ),
    (
        "403",
        "Forbidden",
        "FORBIDDEN: an API key without the admin scope",
    ),
    (
        "408",
        "RequestTimeout",
        "REQUEST_TIMEOUT: the body did not arrive within http.body_read_timeout_seconds",
    ),
    (
        "413",
        "PayloadTooLarge",
        "PAYLOAD_TOO_LARGE: the body is over max_body_bytes",
    ),
    (
        "415",
        "UnsupportedMediaType",
        "UNSUPPORTED_MEDIA_TYPE: the body must be sent as application/json",
    ),
    ("500", "Internal", "INTERNAL: an internal error (logged)"),
];

/// Adds the shared answers to every operation that can give them, without replacing an
/// answer the route documents itself.
pub fn complete(api: &mut OpenApi) {
    let components = api.components.get_or_insert_with(Default::default);
    for (_, name, description) in SHARED {
        components
            .responses
            .insert(name.to_owned(), RefOr::T(problem(description)));
    }
    components.responses.insert(
        "HeadersTooLarge".to_owned(),
        RefOr::T(Response::new(
            "The request's header section is over the server's limit (no body)",
        )),
    );
    for item in api.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            let schemes = security_schemes(op);
            let responses = &mut op.responses.responses;
            let mut add = |status: &str, name: &str| {
                responses
                    .entry(status.to_owned())
                    .or_insert_with(|| Ref::from_response_name(name).into());
            };
            let takes_input =
                op.request_body.is_some() || op.parameters.as_ref().is_some_and(|p| !p.is_empty());
            if takes_input {
                add("400", "BadRequest");
            }
            if op.request_body.is_some() {
                add("408", "RequestTimeout");
                add("413", "PayloadTooLarge");
                add("415", "UnsupportedMediaType");
            }
            if !schemes.is_empty() {
                add("401", "Unauthenticated");
            }
            if schemes.iter().any(|s| s == ADMIN_KEY) {
                add("403", "Forbidden");
            }
            add("431", "HeadersTooLarge");
            add("500", "Internal");
        }
    }
}

/// The names of the security schemes an operation accepts.
fn security_schemes(op: &utoipa::openapi::path::Operation) -> Vec<String> {
    op.security
        .iter()
        .flatten()
        .filter_map(|requirement| serde_json::to_value(requirement).ok())
        .filter_map(|v| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()))
        .flatten()
        .collect()
}

fn problem(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            Content::new(Some(Ref::from_schema_name("Problem"))),
        )
        .build()
}
