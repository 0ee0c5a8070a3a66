//! The JSON bodies of stepgate's routes, as this SDK sends and reads them.
//!
//! These mirror the server's documents (the OpenAPI document at `/openapi.json` is the
//! contract) without depending on the server's crates. Times are RFC 3339 strings as the
//! server sends them; the claims of an access token are Unix seconds.

use serde::{Deserialize, Serialize};

// --- users and sessions -------------------------------------------------------------

/// `POST /v1/users`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreateUser {
    /// 1–64 characters: letters, digits, `. _ - @ +`; case-insensitive.
    pub username: String,
    /// 8–256 characters.
    pub password: String,
    /// Optional e-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Role names for the authorization policies (Cedar's `User.roles`): at most 32,
    /// each 1–64 characters of letters, digits and `: _ . -`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// The answer to [`CreateUser`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedUser {
    /// The new user's id.
    pub id: String,
}

/// `POST /v1/sessions`: a password login.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Login {
    /// The user's name.
    pub username: String,
    /// The user's password.
    pub password: String,
    /// What the client knows about its device (a risk signal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceInfo>,
}

/// The device a login comes from.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// An opaque fingerprint the client computed; stepgate stores only its hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// The user agent, if not the request's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// A granted session (201 from login, or a passed login challenge).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginResponse {
    /// The access token (a JWT; see [`TokenVerifier`](crate::TokenVerifier)).
    pub access_token: String,
    /// `Bearer`.
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

/// A login that needs a second factor first (401 `STEPUP_REQUIRED`): answer the
/// challenge with [`Client::verify_login_challenge`](crate::Client::verify_login_challenge).
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
    /// The problem document's explanation.
    #[serde(default)]
    pub detail: String,
}

/// What a login yields.
#[derive(Debug, Clone)]
pub enum LoginOutcome {
    /// Low risk (or no second factor enrolled yet): a session.
    Session(LoginResponse),
    /// Medium or high risk: a login challenge to pass first.
    StepUpRequired(LoginStepUp),
}

/// `GET /v1/sessions/current`.
#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// A risk assessment: the score is the sum of the reasons' weights, capped at 100.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Risk {
    /// 0..=100.
    pub score: u32,
    /// `low`, `medium` or `high`.
    pub tier: String,
    /// `none`, `fingerprint` or `key`.
    pub device_trust: String,
    /// What each signal saw and what it weighed.
    pub reasons: Vec<RiskReason>,
}

/// One signal's contribution to a [`Risk`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskReason {
    /// The signal's name: `device`, `network`, `ip_reputation`, `location`, `travel`,
    /// `time_of_day`, `failure_velocity`, `session_age`, `purpose`, or `enrollment` (a
    /// login let through because the user has no second factor yet).
    pub signal: String,
    /// What it saw, in words.
    pub observed: String,
    /// What it added to the score.
    pub weight: u32,
}

// --- devices and API keys -----------------------------------------------------------

/// A device stepgate remembers for a user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Device {
    /// The device id (for [`Client::forget_device`](crate::Client::forget_device)).
    pub device_id: String,
    /// `fingerprint` (weak: fingerprints can be copied) or `key` (holds a DPoP key).
    pub trust: String,
    /// The user agent seen when it was remembered.
    pub user_agent: Option<String>,
    /// When it was remembered.
    pub created_at: String,
    /// When it was last seen.
    pub last_seen_at: String,
    /// It is the device of the calling session.
    pub current: bool,
}

/// `GET /v1/devices`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceList {
    /// The caller's remembered devices.
    pub devices: Vec<Device>,
}

/// `POST /v1/api-keys`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreateApiKey {
    /// `service` or `admin`.
    pub scope: String,
    /// A label for people, at most 200 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// A new API key; `key` is shown this once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedApiKey {
    /// The key's id.
    pub id: String,
    /// `service` or `admin`.
    pub scope: String,
    /// The label, if one was given.
    pub label: Option<String>,
    /// The secret key itself (`sgk_…`).
    pub key: String,
}

/// An API key as listed (never its secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKeyInfo {
    /// The key's id.
    pub id: String,
    /// `service` or `admin`.
    pub scope: String,
    /// The label, if one was given.
    pub label: Option<String>,
    /// When it was created.
    pub created_at: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<String>,
}

/// `GET /v1/api-keys`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKeyList {
    /// All keys, live and revoked.
    pub api_keys: Vec<ApiKeyInfo>,
}

// --- factors ------------------------------------------------------------------------

/// A pending TOTP enrollment; confirm it with a code from the authenticator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TotpEnrollment {
    /// The pending factor's id.
    pub factor_id: String,
    /// The shared secret, base32 without padding.
    pub secret: String,
    /// An `otpauth://totp/…` URI for authenticator apps.
    pub otpauth_uri: String,
    /// The URI as a QR code (SVG).
    pub qr_svg: String,
}

/// An enrolled factor (never its secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Factor {
    /// The factor's id.
    pub factor_id: String,
    /// `totp` or `recovery_code`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `pending` or `active`.
    pub status: String,
    /// When it was created.
    pub created_at: String,
    /// When it was confirmed.
    pub confirmed_at: Option<String>,
    /// Recovery codes: how many are unused.
    pub codes_left: Option<i64>,
}

/// `GET /v1/factors`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FactorList {
    /// The caller's factors.
    pub factors: Vec<Factor>,
}

/// `POST /v1/factors/recovery-codes`: ten one-time codes, shown once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecoveryCodes {
    /// The recovery-code factor's id.
    pub factor_id: String,
    /// The codes (`xxxxx-xxxxx`).
    pub codes: Vec<String>,
}

// --- step-up ------------------------------------------------------------------------

/// Where a passed challenge's elevation lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ElevationMode {
    /// An opaque elevation token the RP redeems (the default).
    Token,
    /// The asking session holds it; the answer carries a fresh `su` access token.
    Session,
}

/// `POST /v1/stepup/challenges`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NewChallenge {
    /// A configured purpose, e.g. `admin:resources:delete`.
    pub purpose: String,
    /// Token mode unless set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ElevationMode>,
    /// Hex SHA-256 of the exact action; the elevation then redeems only with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_digest: Option<String>,
    /// What the user is approving, in words (at most 200 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_summary: Option<String>,
}

/// An open step-up challenge.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepUpChallenge {
    /// The challenge's id.
    pub challenge_id: String,
    /// The purpose it is for.
    pub purpose: String,
    /// The purpose in words a person understands.
    pub title: String,
    /// The factors that can answer it.
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
}

/// `POST /v1/stepup/challenges/{id}/verify`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VerifyChallenge {
    /// `totp` or `recovery_code`.
    pub factor: String,
    /// The code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl VerifyChallenge {
    /// An answer with `factor` and `code`.
    pub fn new(factor: impl Into<String>, code: impl Into<String>) -> Self {
        Self {
            factor: factor.into(),
            code: Some(code.into()),
        }
    }
}

/// A passed challenge's elevation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verified {
    /// The elevation's id (for revocation).
    pub elevation_id: String,
    /// Token mode: the opaque elevation token (shown once).
    pub elevation_token: Option<String>,
    /// Session mode: a fresh access token for the session, with `su: true`.
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

/// `POST /v1/stepup/redeem`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Redeem {
    /// The token the user presented.
    pub elevation_token: String,
    /// The purpose the RP is about to act on.
    pub purpose: String,
    /// The end user's IP as the RP sees it; required for IP-bound purposes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The action's digest, required if the challenge was bound to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_digest: Option<String>,
    /// For an elevation of a DPoP-bound session: the proof the user sent with the
    /// action, whose `ath` is the hash of the elevation token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop: Option<DpopProof>,
}

/// A redeemed elevation: who stepped up, how, and when.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// 1 for an unused single-use elevation; `None` for multi-use.
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
pub struct ElevationList {
    /// The caller's live elevations, across all their sessions.
    pub elevations: Vec<Elevation>,
}

// --- policy and audit ---------------------------------------------------------------

/// A purpose's requirement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirement {
    /// `any` or `phishing_resistant`.
    pub factor: String,
    /// How long an elevation lives.
    pub ttl_seconds: i64,
    /// An elevation is used up by its first use.
    pub single_use: bool,
    /// An elevation works only from the IP that stepped up.
    pub bind_ip: bool,
    /// Distinct approvers needed.
    pub approvals: u32,
}

/// A purpose in the policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PurposePolicy {
    /// The purpose's name.
    pub name: String,
    /// The purpose in words.
    pub title: String,
    /// The platform minimum from the config.
    pub minimum: Requirement,
    /// The requirement in force.
    pub requirement: Requirement,
}

/// `GET /v1/policy`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Policy {
    /// The version in force.
    pub policy_version: i64,
    /// Every purpose.
    pub purposes: Vec<PurposePolicy>,
}

/// `PUT /v1/policy/purposes/{purpose}`: omitted fields keep their values.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PurposeChange {
    /// `any` or `phishing_resistant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<String>,
    /// Elevation lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<i64>,
    /// Single use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub single_use: Option<bool>,
    /// IP binding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_ip: Option<bool>,
    /// Approvers needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<u32>,
}

/// The answer to a [`PurposeChange`]: the new requirement and policy version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PurposeUpdated {
    /// The purpose's name.
    pub purpose: String,
    /// The requirement now in force.
    pub requirement: Requirement,
    /// The new policy version.
    pub policy_version: i64,
}

/// `GET /v1/audit` filters.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AuditQuery {
    /// Only events after this sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_seq: Option<i64>,
    /// At most this many (default 1000, at most 10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// Only this event type, e.g. `ACCOUNT_STEPUP_REUSED`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Only events about this user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Only events about this purpose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
}

/// An audit event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Position in the log, from 1, without gaps.
    pub seq: i64,
    /// The event type, e.g. `ACCOUNT_LOGIN_SUCCEEDED`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When it happened.
    pub at: String,
    /// The user concerned.
    pub user_id: Option<String>,
    /// The session concerned.
    pub session_id: Option<String>,
    /// The purpose concerned.
    pub purpose: Option<String>,
    /// The client IP.
    pub ip: Option<String>,
    /// The factor concerned.
    pub factor: Option<String>,
    /// The policy version in force.
    pub policy_version: Option<i64>,
    /// The challenge concerned.
    pub challenge_id: Option<String>,
    /// The elevation concerned.
    pub elevation_id: Option<String>,
    /// Event-specific fields.
    pub data: Option<serde_json::Value>,
}

/// `GET /v1/audit`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditList {
    /// Events, oldest first.
    pub events: Vec<AuditEvent>,
}

// --- discovery and testing ----------------------------------------------------------

/// `GET /.well-known/openid-configuration`.
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

/// `PUT /v1/testing/clock` (only with `testing.clock_control = true`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClockNow {
    /// The node's clock after the change, Unix seconds.
    pub now: i64,
}

// --- decisions ----------------------------------------------------------------------

/// `POST /v1/decisions`: may this session do this now?
///
/// Build it with [`DecisionRequest::purpose`] or [`DecisionRequest::action`]; exactly one
/// of `purpose` and `action` + `resource` is set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DecisionRequest {
    /// The end user's access token.
    pub access_token: String,
    /// A Cedar action, e.g. `delete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// A Cedar resource id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Attributes of the resource for the Cedar policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_attributes: Option<serde_json::Map<String, serde_json::Value>>,
    /// A step-up purpose, e.g. `admin:resources:delete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// What the RP sees of the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<DecisionContext>,
    /// An elevation token the user presented with this request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elevation_token: Option<String>,
    /// Hex SHA-256 of the exact action, for elevations bound to a digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_digest: Option<String>,
    /// The DPoP proof the user sent, for a DPoP-bound access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop: Option<DpopProof>,
}

impl DecisionRequest {
    /// Asks about a step-up purpose.
    pub fn purpose(access_token: impl Into<String>, purpose: impl Into<String>) -> Self {
        Self {
            access_token: access_token.into(),
            purpose: Some(purpose.into()),
            ..Self::default()
        }
    }

    /// Asks about a Cedar action on a resource.
    pub fn action(
        access_token: impl Into<String>,
        action: impl Into<String>,
        resource: impl Into<String>,
    ) -> Self {
        Self {
            access_token: access_token.into(),
            action: Some(action.into()),
            resource: Some(resource.into()),
            ..Self::default()
        }
    }

    /// Sets the request context.
    pub fn context(mut self, context: DecisionContext) -> Self {
        self.context = Some(context);
        self
    }

    /// Sets the presented elevation token.
    pub fn elevation_token(mut self, token: impl Into<String>) -> Self {
        self.elevation_token = Some(token.into());
        self
    }

    /// Sets the resource's attributes.
    pub fn resource_attributes(
        mut self,
        attributes: serde_json::Map<String, serde_json::Value>,
    ) -> Self {
        self.resource_attributes = Some(attributes);
        self
    }

    /// Sets the action digest (hex SHA-256 of the exact action).
    pub fn action_digest(mut self, digest: impl Into<String>) -> Self {
        self.action_digest = Some(digest.into());
        self
    }

    /// Sets the DPoP proof.
    pub fn dpop(mut self, proof: DpopProof) -> Self {
        self.dpop = Some(proof);
        self
    }
}

/// What the RP sees of the end user's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionContext {
    /// The end user's IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// A device fingerprint the client computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_fingerprint: Option<String>,
    /// The user agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// A DPoP proof (RFC 9449) and the request it was made for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DpopProof {
    /// The `DPoP` header's value.
    pub proof: String,
    /// The request's method (`htm`).
    pub method: String,
    /// The request's URL without query or fragment (`htu`).
    pub url: String,
}

/// `allow`, `step_up` or `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// Go on.
    Allow,
    /// Step up first: see `challenge_id`, `allowed_factors`, `acr_values`, `max_age`.
    StepUp,
    /// Refused.
    Deny,
}

/// The scheme the access token must be presented with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenScheme {
    /// RFC 6750.
    Bearer,
    /// RFC 9449: the token is bound to a key (`cnf.jkt`).
    #[serde(rename = "DPoP")]
    Dpop,
}

impl TokenScheme {
    /// The auth-scheme as written in `Authorization` and `WWW-Authenticate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bearer => "Bearer",
            Self::Dpop => "DPoP",
        }
    }
}

/// stepgate's answer to a [`DecisionRequest`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Decision {
    /// The verdict.
    pub decision: DecisionKind,
    /// The token's user.
    pub user_id: String,
    /// The token's session.
    pub session_id: String,
    /// The purpose asked about, or the one a Cedar `@step_up` named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// `step_up`: a ready challenge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge_id: Option<String>,
    /// `step_up`: the purpose in words a person understands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `step_up`: the factors that can answer it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_factors: Vec<String>,
    /// `step_up`: the user must enroll a second factor first.
    #[serde(default)]
    pub enrollment_required: bool,
    /// `step_up`: the ACR values that would satisfy it (RFC 9470).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr_values: Option<String>,
    /// `step_up`: how recent the authentication must be, seconds (RFC 9470).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i64>,
    /// The scheme the token must be presented with.
    pub token_scheme: TokenScheme,
    /// `allow` because of an elevation: which one (used up if single-use); the first
    /// when the allow relied on several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elevation_id: Option<String>,
    /// `allow` because of elevations: every one it relied on (all used at once).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub elevation_ids: Vec<String>,
    /// The risk of this action on this session now.
    pub risk: Risk,
    /// Why, in words.
    #[serde(default)]
    pub reasons: Vec<String>,
    /// The Cedar policies that decided.
    #[serde(default)]
    pub policy_ids: Vec<String>,
    /// The policy version that decided.
    pub policy_version: i64,
}

// --- forward-auth -------------------------------------------------------------------

/// `GET /v1/forward-auth` as a reverse proxy sends it: the user's credentials and the
/// original request.
#[derive(Debug, Clone, Default)]
pub struct ForwardAuthRequest {
    /// The user's whole `Authorization` header value (`Bearer …` or `DPoP …`), if any.
    pub authorization: Option<String>,
    /// The user's `DPoP` proof header, if any.
    pub dpop: Option<String>,
    /// The user's `Stepgate-Elevation` header, if any.
    pub elevation_token: Option<String>,
    /// The original request's method (`X-Original-Method`).
    pub method: String,
    /// The original request's absolute URL (`X-Original-URL`).
    pub url: String,
}

/// stepgate's forward-auth answer: 200 (allow), 401 (step-up or no valid token) or 403.
#[derive(Debug, Clone)]
pub struct ForwardAuthAnswer {
    /// 200, 401 or 403.
    pub status: u16,
    /// `X-Stepgate-User` of an allow.
    pub user_id: Option<String>,
    /// `X-Stepgate-Session` of an allow.
    pub session_id: Option<String>,
    /// `X-Stepgate-Elevation` of an allow that used elevations (ids comma-separated).
    pub elevation_id: Option<String>,
    /// `Stepgate-Challenge` of a step-up.
    pub challenge_id: Option<String>,
    /// `Stepgate-Purpose` of a step-up.
    pub purpose: Option<String>,
    /// The `WWW-Authenticate` value, as sent (parse it with
    /// [`Challenge::parse`](crate::Challenge::parse)).
    pub www_authenticate: Option<String>,
    /// The problem document of a 401 or 403.
    pub problem: Option<serde_json::Value>,
}
