//! The JSON bodies of stepgate's routes, as this SDK sends and reads them: the types of
//! `stepgate-api`, the one definition the server also uses, plus the SDK's own views
//! (what a login yields, forward-auth as a proxy sees it). Times are RFC 3339 strings
//! as the server sends them; the claims of an access token are Unix seconds.

pub use stepgate_api::{
    ApiKeyInfo, ApiKeyList, AuditEvent, AuditList, AuditQuery, ChallengeLinks, ClockNow, CodeSent,
    ConfirmEmail, CreateApiKey, CreateUser, CreatedApiKey, CreatedUser, CurrentSession, Decision,
    DecisionContext, DecisionKind, DecisionRequest, Device, DeviceInfo, DeviceList, DpopProof,
    Elevation, ElevationList, ElevationMode, EmailEnrollment, ErrorCode, Factor, FactorList,
    FactorsReset, FinishWebauthnRegistration, Login, LoginResponse, LoginStepUp, NewChallenge,
    NewEmailFactor, NewWebauthnRegistration, OpenIdConfiguration, Policy, Problem, PurposeChange,
    PurposePolicy, PurposeUpdated, RecoveryCodes, Redeem, Redeemed, Requirement, Risk, RiskReason,
    SendCode, StepUpChallenge, TokenScheme, TotpEnrollment, Verified, VerifyChallenge,
    WebauthnRegistration,
};

/// What a login yields.
#[derive(Debug, Clone)]
pub enum LoginOutcome {
    /// Low risk (or no second factor enrolled yet): a session.
    Session(LoginResponse),
    /// Medium or high risk: a login challenge to pass first.
    StepUpRequired(LoginStepUp),
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
