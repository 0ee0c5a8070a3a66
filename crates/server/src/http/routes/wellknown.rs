//! Discovery: the public signing keys and an OpenID-style configuration document.

use axum::Json;
use axum::extract::State;
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
pub async fn openid_configuration(State(app): State<SharedApp>) -> Json<serde_json::Value> {
    let base = app.config.public_url.trim_end_matches('/');
    Json(serde_json::json!({
        "issuer": app.tokens.issuer(),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "acr_values_supported": acr::SUPPORTED,
        "dpop_signing_alg_values_supported": ["ES256", "EdDSA"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
        "subject_types_supported": ["public"],
        "claims_supported": ["iss", "sub", "sid", "iat", "exp", "auth_time", "acr", "amr", "su", "su_time", "su_purpose", "cnf"],
    }))
}
