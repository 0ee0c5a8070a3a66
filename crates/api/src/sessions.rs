//! Signing in, and the session it yields.

use serde::{Deserialize, Serialize};

use crate::risk::Risk;

/// `POST /v1/sessions`: a password login.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Login {
    /// The user's name.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[A-Za-z0-9._@+-]{1,64}$", min_length = 1, max_length = 64)
    )]
    pub username: String,
    /// The user's password.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256))]
    pub password: String,
    /// What the client knows about its device (a risk signal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceInfo>,
}

/// The device a login comes from.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceInfo {
    /// An opaque fingerprint the client computed; stored only as a hash. At most 512
    /// characters, without control characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$", max_length = 512)
    )]
    pub fingerprint: Option<String>,
    /// At most 512 characters, without control characters; without it, the
    /// `User-Agent` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$", max_length = 512)
    )]
    pub user_agent: Option<String>,
}

/// A granted session (201 from login, or a passed login challenge).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginResponse {
    /// A JWT signed with the key named by its `kid` (see the JWKS).
    pub access_token: String,
    /// `Bearer`, or `DPoP` for a token bound to the login's DPoP key.
    pub token_type: String,
    /// The session the token names (`sid`).
    pub session_id: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The user has no second factor yet and should enroll one.
    #[serde(default)]
    pub enrollment_required: bool,
    /// The assessment that let this login through.
    pub risk: Risk,
}

/// A login that needs a second factor first: the members of its 401 `STEPUP_REQUIRED`
/// problem document. Answer the challenge without an access token to get the session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginStepUp {
    /// The ready login challenge.
    pub challenge_id: String,
    /// `login`.
    pub purpose: String,
    /// The factors that can answer it.
    pub allowed_factors: Vec<String>,
    /// When the challenge expires (RFC 3339).
    pub expires_at: String,
    /// Why the login was judged risky.
    pub risk: Risk,
    /// When `webauthn` is allowed: the assertion options for
    /// `navigator.credentials.get()`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webauthn_options: Option<serde_json::Value>,
    /// Routes that act on the challenge (`send` for an email code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<crate::stepup::ChallengeLinks>,
    /// The hosted step-up page for the challenge: send the person there, then collect
    /// the session with `GET /v1/stepup/challenges/{id}` (service key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stepup_url: Option<String>,
    /// The problem document's explanation.
    #[serde(default)]
    pub detail: String,
}

/// `GET /v1/sessions/current`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CurrentSession {
    /// The session id (`sid`).
    pub session_id: String,
    /// The user id (`sub`).
    pub user_id: String,
    /// When the session began.
    pub created_at: String,
    /// When the user last authenticated.
    pub auth_time: String,
    /// When the session ends at the latest.
    pub expires_at: String,
    /// The client IP the login came from.
    pub ip: String,
    /// The login's user agent.
    pub user_agent: Option<String>,
    /// The session's authentication context class.
    pub acr: String,
    /// The authentication methods used (RFC 8176).
    pub amr: Vec<String>,
    /// The user has no second factor yet.
    #[serde(default)]
    pub enrollment_required: bool,
    /// The assessment made at login.
    pub risk: Option<Risk>,
}
