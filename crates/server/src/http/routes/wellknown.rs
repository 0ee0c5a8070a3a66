//! Discovery: the public signing keys and an OpenID-style configuration document.

use axum::Json;
use axum::extract::State;
use stepgate_api::OpenIdConfiguration;
use stepgate_core::session::acr;

use crate::app::SharedApp;

/// The JWK Set that verifies access tokens (every key a live token may name).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "discovery", operation_id = "getJwks",
    responses((status = 200, description = "RFC 7517 JWK Set", body = Object)))]
pub async fn jwks(State(app): State<SharedApp>) -> Json<serde_json::Value> {
    Json(app.tokens.keys().jwks())
}

/// Discovery document listing the issuer, the JWKS and the `acr` values in use.
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "discovery", operation_id = "getOpenidConfiguration",
    responses((status = 200, description = "Discovery document", body = Object)))]
pub async fn openid_configuration(State(app): State<SharedApp>) -> Json<OpenIdConfiguration> {
    let base = app.config.public_url.trim_end_matches('/');
    let other = [
        (
            "dpop_signing_alg_values_supported",
            serde_json::json!(["ES256", "EdDSA"]),
        ),
        (
            "id_token_signing_alg_values_supported",
            serde_json::json!(["EdDSA"]),
        ),
        ("subject_types_supported", serde_json::json!(["public"])),
        (
            "claims_supported",
            serde_json::json!([
                "iss",
                "sub",
                "sid",
                "iat",
                "exp",
                "auth_time",
                "acr",
                "amr",
                "su",
                "su_time",
                "su_purpose",
                "cnf"
            ]),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Json(OpenIdConfiguration {
        issuer: app.tokens.issuer().to_owned(),
        jwks_uri: format!("{base}/.well-known/jwks.json"),
        acr_values_supported: acr::SUPPORTED.iter().map(|a| (*a).to_owned()).collect(),
        other,
    })
}
