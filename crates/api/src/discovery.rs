//! `GET /.well-known/openid-configuration`.

use serde::{Deserialize, Serialize};

/// The discovery document: where tokens come from and how they are verified.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenIdConfiguration {
    /// The `iss` of access tokens.
    pub issuer: String,
    /// Where the JWKS is published (as the server's `public_url` names it).
    pub jwks_uri: String,
    /// The `acr` values in use.
    #[serde(default)]
    pub acr_values_supported: Vec<String>,
    /// Every other member.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}
