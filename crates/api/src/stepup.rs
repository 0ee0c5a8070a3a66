//! Step-up: challenges, their answers, and the elevations they yield.

use serde::{Deserialize, Serialize};

use crate::decisions::DpopProof;
use crate::risk::Risk;
use crate::sessions::LoginResponse;

/// Where a passed challenge's elevation lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ElevationMode {
    /// An opaque elevation token the RP presents and redeems (the default).
    Token,
    /// Attached to the asking session; the answer carries a fresh access token with
    /// `su: true`.
    Session,
}

impl ElevationMode {
    /// The wire name: `token` or `session`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Session => "session",
        }
    }

    /// The mode of a wire name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "token" => Some(Self::Token),
            "session" => Some(Self::Session),
            _ => None,
        }
    }
}

impl TryFrom<String> for ElevationMode {
    type Error = UnknownName;

    fn try_from(name: String) -> Result<Self, UnknownName> {
        Self::from_name(&name).ok_or(UnknownName {
            of: "elevation mode",
            name,
        })
    }
}

/// A wire name this version does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    /// What kind of name it was meant to be.
    pub of: &'static str,
    pub name: String,
}

impl std::fmt::Display for UnknownName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} is not an {}", self.name, self.of)
    }
}

impl std::error::Error for UnknownName {}

/// `POST /v1/stepup/challenges`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewChallenge {
    /// A purpose declared in the config, e.g. `admin:resources:delete`.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::schemas::Name))]
    pub purpose: String,
    /// `token` unless set: the verify answer holds an elevation token for the RP to
    /// redeem. `session`: the elevation attaches to this session and the answer holds a
    /// fresh access token with `su: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ElevationMode>,
    /// Hex SHA-256 of the exact action (e.g. method + path + body), computed by the RP:
    /// the elevation then redeems only for that digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::schemas::Sha256Hex>))]
    pub action_digest: Option<String>,
    /// What the user is approving, in words, shown on the challenge (at most 200
    /// characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub action_summary: Option<String>,
}

/// An open step-up challenge.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepUpChallenge {
    /// The challenge's id.
    pub challenge_id: String,
    /// The purpose it is for.
    pub purpose: String,
    /// The purpose in words a person understands.
    pub title: String,
    /// The factors this user has that the requirement allows and that are not blocked.
    pub allowed_factors: Vec<String>,
    /// The factor class required: `any` or `phishing_resistant`.
    pub factor: String,
    /// Where the elevation will live.
    pub mode: ElevationMode,
    /// When it expires.
    pub expires_at: String,
    /// Wrong answers left.
    pub attempts_left: u32,
    /// The policy version it was issued under (and completes under).
    pub policy_version: i64,
    /// What the user is approving.
    pub action_summary: Option<String>,
    /// The risk of this action on this session now.
    pub risk: Risk,
    /// When `webauthn` is allowed: `CredentialRequestOptions` JSON for
    /// `navigator.credentials.get()` (`{"publicKey": {…}}`, binary fields base64url),
    /// listing the user's credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub webauthn_options: Option<serde_json::Value>,
    /// Routes that act on this challenge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<ChallengeLinks>,
    /// The hosted step-up page for this challenge. It carries a secret for this one
    /// challenge, so it opens in any browser, also on another device than the one that
    /// asked; the page can answer the challenge, nothing else.
    pub stepup_url: String,
}

/// Routes that act on a challenge.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChallengeLinks {
    /// When `email_otp` is allowed: `POST` here (`{"factor": "email_otp"}`) to have a
    /// code sent; none is sent before.
    pub send: String,
}

/// `POST /v1/stepup/challenges/{id}/send`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SendCode {
    /// `email_otp`.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::schemas::SendFactorName))]
    pub factor: String,
}

/// A code on its way.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CodeSent {
    /// `email_otp`.
    pub factor: String,
    /// Where it went, masked (`a***@example.com`).
    pub sent_to: String,
    /// When the code expires; an earlier one for this challenge no longer works.
    pub expires_at: String,
}

/// `POST /v1/stepup/challenges/{id}/verify` (its schema, with the code's shape for
/// each factor, is [`crate::schemas::ChallengeAnswer`] under the `openapi` feature).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VerifyChallenge {
    /// `totp`, `recovery_code` or `webauthn`.
    pub factor: String,
    /// The code (`totp`, `recovery_code`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// `webauthn`: the browser's `PublicKeyCredential` assertion (`credential.toJSON()`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<serde_json::Value>,
}

impl VerifyChallenge {
    /// An answer with `factor` and `code`.
    pub fn new(factor: impl Into<String>, code: impl Into<String>) -> Self {
        Self {
            factor: factor.into(),
            code: Some(code.into()),
            credential: None,
        }
    }

    /// A WebAuthn assertion.
    pub fn webauthn(credential: serde_json::Value) -> Self {
        Self {
            factor: "webauthn".into(),
            code: None,
            credential: Some(credential),
        }
    }
}

/// A passed challenge's elevation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Verified {
    /// The elevation's id (for revocation).
    pub elevation_id: String,
    /// Token mode: the opaque elevation token (shown once).
    pub elevation_token: Option<String>,
    /// Session mode: a fresh access token for this session with `su: true`.
    pub access_token: Option<String>,
    /// The purpose it is for.
    pub purpose: String,
    /// Where it lives.
    pub mode: ElevationMode,
    /// When it expires.
    pub expires_at: String,
    /// It is used up by its first use.
    pub single_use: bool,
}

/// How far a challenge has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChallengeProgress {
    /// Waiting for an answer.
    Pending,
    /// Answered rightly: the elevation or the session exists.
    Passed,
    /// Expired before it was passed.
    Expired,
    /// Closed by too many wrong answers.
    Blocked,
}

/// `GET /v1/stepup/challenges/{id}`: where a challenge stands. After it was passed on
/// the hosted page, the first read collects what it yielded (the elevation token or
/// the `su` access token; for a login challenge the session's access token); later
/// reads say `collected` and carry no token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChallengeState {
    pub challenge_id: String,
    pub purpose: String,
    pub status: ChallengeProgress,
    /// When the challenge expires (or expired).
    pub expires_at: String,
    /// Wrong answers left.
    pub attempts_left: u32,
    /// Whether what the passed challenge yielded was handed out already (by the verify
    /// answer, or by an earlier read of this route).
    pub collected: bool,
    /// An action challenge passed on the page, first read: the elevation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elevation: Option<Verified>,
    /// A login challenge passed on the page, first read: the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<LoginResponse>,
}

/// What a passed challenge yields: an elevation, or for a login challenge the session.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum VerifyAnswer {
    /// An action challenge passed.
    Elevation(Verified),
    /// A login challenge passed.
    Login(LoginResponse),
}

/// `POST /v1/stepup/redeem`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Redeem {
    /// The token the user presented.
    pub elevation_token: String,
    /// The purpose the RP is about to act on.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::schemas::Name))]
    pub purpose: String,
    /// The end user's IP as the RP sees it; required for IP-bound purposes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::schemas::IpText>))]
    pub ip: Option<String>,
    /// The action's digest, required if the challenge was bound to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::schemas::Sha256Hex>))]
    pub action_digest: Option<String>,
    /// For an elevation bound to a DPoP key (its session logged in with one): the proof
    /// the user sent with the action, whose `ath` is the elevation token's hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop: Option<DpopProof>,
}

/// A redeemed elevation: who stepped up, how, and when.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Redeemed {
    /// The elevation's id.
    pub elevation_id: String,
    /// The user who stepped up.
    pub user_id: String,
    /// The session that stepped up.
    pub session_id: String,
    /// The purpose.
    pub purpose: String,
    /// The factor that passed, e.g. `totp`.
    pub factor: String,
    /// Its class: `any` or `phishing_resistant`.
    pub factor_class: String,
    /// When the step-up passed.
    pub verified_at: String,
    /// This redeem used it up.
    pub single_use: bool,
}

/// A live elevation as its user sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Elevation {
    /// The elevation's id.
    pub elevation_id: String,
    /// The purpose.
    pub purpose: String,
    /// The session that holds it.
    pub session_id: String,
    /// Where it lives.
    pub mode: ElevationMode,
    /// When it was made.
    pub created_at: String,
    /// When it expires.
    pub expires_at: String,
    /// 1 for an unused single-use elevation; null for multi-use.
    pub uses_left: Option<u32>,
    /// The IP it is bound to, if any.
    pub ip: Option<String>,
    /// The user agent of the session that stepped up.
    pub device: Option<String>,
    /// It belongs to the calling session.
    pub current_session: bool,
}

/// `GET /v1/stepup/elevations`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ElevationList {
    /// The caller's live elevations, across all their sessions.
    pub elevations: Vec<Elevation>,
}
