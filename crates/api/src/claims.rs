//! The claims of a stepgate access token (a JWT in the style of RFC 9068, with RFC 8176
//! `amr`), as the server signs them and a relying party verifies them.

use serde::{Deserialize, Serialize};

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The issuer.
    pub iss: String,
    /// The user id.
    pub sub: String,
    /// The session id.
    pub sid: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
    /// When the user last authenticated, Unix seconds.
    pub auth_time: i64,
    /// Authentication context class, e.g. `urn:stepgate:acr:mfa`.
    pub acr: String,
    /// Authentication methods (RFC 8176), e.g. `["pwd", "otp"]`.
    pub amr: Vec<String>,
    /// Set after a session-mode step-up: the session holds an elevation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub su: Option<bool>,
    /// When that step-up happened, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub su_time: Option<i64>,
    /// The purpose that step-up was for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub su_purpose: Option<String>,
    /// Proof-of-possession binding (RFC 9449): the token works only with DPoP proofs of
    /// the key with this thumbprint, and is refused without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// `cnf` (RFC 7800) with the DPoP key thumbprint (RFC 9449 section 6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The RFC 7638 thumbprint of the key, base64url.
    pub jkt: String,
}

impl Confirmation {
    /// The binding to a key thumbprint, if there is one.
    pub fn of(jkt: Option<&String>) -> Option<Self> {
        jkt.map(|jkt| Self { jkt: jkt.clone() })
    }
}
