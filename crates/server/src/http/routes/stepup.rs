//! Step-up over HTTP: challenges, verification, elevations, redemption.

use std::net::IpAddr;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use stepgate_core::stepup::ElevationMode;
use utoipa::ToSchema;

use crate::app::SharedApp;
use crate::caller::UserCaller;
use crate::error::AppError;
use crate::http::error::Problem;
use crate::http::extract::{ApiJson, ApiPath, ClientIp, MaybeUser, ServiceCaller, UserOrService};
use crate::http::rfc3339;
use crate::login::LoginResponse;
use crate::risk::RiskView;
use crate::stepup::answers::{self, AnswerRequest, Passed};
use crate::stepup::challenges::{
    self, ChallengeRequest, MAX_ACTION_SUMMARY, OpenChallenge, parse_digest,
};
use crate::stepup::elevations::{self, RedeemRequest, Revoker};

#[derive(Deserialize, ToSchema)]
pub struct NewChallenge {
    /// A purpose declared in the config, e.g. `admin:resources:delete`.
    #[schema(value_type = crate::http::openapi::schemas::Name)]
    pub purpose: String,
    /// `token` (default): the verify answer holds an elevation token for the RP to
    /// redeem. `session`: the elevation attaches to this session and the answer holds a
    /// fresh access token with `su: true`.
    #[schema(value_type = Option<crate::http::openapi::schemas::ModeName>)]
    pub mode: Option<String>,
    /// Hex SHA-256 of the exact action (e.g. method + path + body), computed by the RP:
    /// the elevation then redeems only for that digest.
    #[schema(value_type = Option<crate::http::openapi::schemas::Sha256Hex>)]
    pub action_digest: Option<String>,
    /// What the user is approving, in words, shown on the challenge (at most 200
    /// characters).
    #[schema(max_length = 200)]
    pub action_summary: Option<String>,
}

impl NewChallenge {
    fn checked(self) -> Result<ChallengeRequest, AppError> {
        if self
            .action_summary
            .as_ref()
            .is_some_and(|s| s.chars().count() > MAX_ACTION_SUMMARY)
        {
            return Err(AppError::validation(format!(
                "action_summary must be at most {MAX_ACTION_SUMMARY} characters"
            )));
        }
        Ok(ChallengeRequest {
            mode: ElevationMode::parse(self.mode.as_deref().unwrap_or("token"))?,
            action_digest: parse_digest(self.action_digest)?,
            action_summary: self.action_summary,
            purpose: self.purpose,
        })
    }
}

#[derive(Serialize, ToSchema)]
pub struct ChallengeView {
    pub challenge_id: String,
    pub purpose: String,
    /// The purpose in words a person understands.
    pub title: String,
    /// The factors this user has that the requirement allows and that are not blocked.
    pub allowed_factors: Vec<String>,
    /// The factor class required: `any` or `phishing_resistant`.
    pub factor: String,
    pub mode: String,
    pub expires_at: String,
    pub attempts_left: u32,
    pub policy_version: i64,
    pub action_summary: Option<String>,
    /// The risk of this action on this session now.
    pub risk: RiskView,
}

impl From<OpenChallenge> for ChallengeView {
    fn from(c: OpenChallenge) -> Self {
        let attempts_left = c.attempts_left();
        Self {
            challenge_id: c.record.id,
            purpose: c.record.purpose,
            title: c.title,
            allowed_factors: c.allowed_factors,
            factor: c.record.factor_class,
            mode: c.record.mode,
            expires_at: rfc3339(c.record.expires_at),
            attempts_left,
            policy_version: c.policy_version,
            action_summary: c.record.action_summary,
            risk: c.risk,
        }
    }
}

/// An answer to a challenge (its schema, with the code's shape for each factor, is
/// [`crate::http::openapi::schemas::ChallengeAnswer`]).
#[derive(Deserialize)]
pub struct VerifyChallenge {
    /// `totp` or `recovery_code`.
    pub factor: String,
    pub code: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Verified {
    pub elevation_id: String,
    /// Token mode: the opaque elevation token (shown once).
    pub elevation_token: Option<String>,
    /// Session mode: a fresh access token for this session with `su: true`.
    pub access_token: Option<String>,
    pub purpose: String,
    pub mode: String,
    pub expires_at: String,
    pub single_use: bool,
}

/// What a passed challenge yields: an elevation, or for a login challenge the session.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum VerifyAnswer {
    Elevation(Verified),
    Login(LoginResponse),
}

#[derive(Deserialize, ToSchema)]
pub struct Redeem {
    pub elevation_token: String,
    /// The purpose the RP is about to act on.
    #[schema(value_type = crate::http::openapi::schemas::Name)]
    pub purpose: String,
    /// The end user's IP as the RP sees it; required for IP-bound purposes.
    #[schema(value_type = Option<crate::http::openapi::schemas::IpText>)]
    pub ip: Option<String>,
    /// The action's digest, required if the challenge was bound to one.
    #[schema(value_type = Option<crate::http::openapi::schemas::Sha256Hex>)]
    pub action_digest: Option<String>,
    /// For an elevation bound to a DPoP key (its session logged in with one): the proof
    /// the user sent with the action, whose `ath` is the elevation token's hash.
    pub dpop: Option<crate::decisions::RelayedProof>,
}

impl Redeem {
    fn checked(self) -> Result<RedeemRequest, AppError> {
        let ip = self
            .ip
            .as_deref()
            .map(|raw| {
                raw.parse::<IpAddr>()
                    .map_err(|_| AppError::validation("ip must be an IPv4 or IPv6 address"))
            })
            .transpose()?;
        Ok(RedeemRequest {
            action_digest: parse_digest(self.action_digest)?,
            ip,
            elevation_token: self.elevation_token,
            purpose: self.purpose,
            dpop: self.dpop,
        })
    }
}

#[derive(Serialize, ToSchema)]
pub struct Redeemed {
    pub elevation_id: String,
    pub user_id: String,
    pub session_id: String,
    pub purpose: String,
    pub factor: String,
    pub factor_class: String,
    /// When the step-up passed.
    pub verified_at: String,
    pub single_use: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ElevationView {
    pub elevation_id: String,
    pub purpose: String,
    pub session_id: String,
    pub mode: String,
    pub created_at: String,
    pub expires_at: String,
    /// 1 for an unused single-use elevation; null for multi-use.
    pub uses_left: Option<u32>,
    pub ip: Option<String>,
    /// The user agent of the session that stepped up.
    pub device: Option<String>,
    pub current_session: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ElevationList {
    pub elevations: Vec<ElevationView>,
}

/// Start a step-up for a purpose.
#[utoipa::path(post, path = "/v1/stepup/challenges", tag = "stepup", operation_id = "createChallenge",
    request_body = NewChallenge,
    responses(
        (status = 429, body = Problem, content_type = "application/problem+json", description = "RATE_LIMITED: challenges opened too fast for this session or user, with Retry-After"),
        (status = 201, body = ChallengeView),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "VALIDATION_FAILED"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "STEPUP_BLOCKED: failure budget exhausted"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "NOT_FOUND: no such purpose"),
    ),
    security(("access_token" = [])))]
pub async fn create(
    State(app): State<SharedApp>,
    caller: UserCaller,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<NewChallenge>,
) -> Result<(StatusCode, Json<ChallengeView>), AppError> {
    let opened = challenges::open(&app, &caller, ip, body.checked()?).await?;
    Ok((StatusCode::CREATED, Json(ChallengeView::from(opened))))
}

/// Answer a challenge. Checks, in order: the challenge is live, the factor is strong
/// enough, the code has the factor's shape, the user has that factor (nothing is
/// counted when any of these fails), then the code.
#[utoipa::path(post, path = "/v1/stepup/challenges/{id}/verify", tag = "stepup", operation_id = "verifyChallenge",
    params(("id" = String, Path, description = "The challenge id")),
    request_body = crate::http::openapi::schemas::ChallengeAnswer,
    responses(
        (status = 200, body = VerifyAnswer),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "STEPUP_FAILED, with attempts_left"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "RATE_LIMITED"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "STEPUP_FACTOR_INSUFFICIENT (too weak a factor, or one the user does not have) or STEPUP_BLOCKED"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "NOT_FOUND"),
        (status = 410, body = Problem, content_type = "application/problem+json", description = "CHALLENGE_EXPIRED"),
    ),
    security(("access_token" = [])))]
pub async fn verify(
    State(app): State<SharedApp>,
    MaybeUser(caller): MaybeUser,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<VerifyChallenge>,
) -> Result<Json<VerifyAnswer>, AppError> {
    let answer = AnswerRequest {
        factor: body.factor,
        code: body.code,
    };
    Ok(Json(
        match answers::answer(&app, caller, ip, &id, answer).await? {
            Passed::Login(session) => VerifyAnswer::Login(session),
            Passed::Elevation {
                record,
                token,
                access_token,
            } => VerifyAnswer::Elevation(Verified {
                elevation_id: record.id,
                elevation_token: token,
                access_token,
                purpose: record.purpose,
                mode: record.mode,
                expires_at: rfc3339(record.expires_at),
                single_use: record.single_use,
            }),
        },
    ))
}

/// Redeem an elevation token (the RP's backend, just before the action).
#[utoipa::path(post, path = "/v1/stepup/redeem", tag = "stepup", operation_id = "redeemElevation",
    request_body = Redeem,
    responses(
        (status = 200, body = Redeemed),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "VALIDATION_FAILED"),
        (status = 403, body = Problem, content_type = "application/problem+json",
            description = "STEPUP_TOKEN_INVALID, STEPUP_TOKEN_EXPIRED, STEPUP_TOKEN_REUSED, STEPUP_IP_MISMATCH, STEPUP_SCOPE_MISMATCH"),
    ),
    security(("service_key" = [])))]
pub async fn redeem(
    State(app): State<SharedApp>,
    _caller: ServiceCaller,
    ApiJson(body): ApiJson<Redeem>,
) -> Result<Json<Redeemed>, AppError> {
    let record = elevations::redeem(&app, body.checked()?).await?;
    Ok(Json(Redeemed {
        elevation_id: record.id,
        user_id: record.user_id,
        session_id: record.session_id,
        purpose: record.purpose,
        factor: record.factor,
        factor_class: record.factor_class,
        verified_at: rfc3339(record.created_at),
        single_use: record.single_use,
    }))
}

/// The caller's live elevations, across all their sessions, so they can see and end them.
#[utoipa::path(get, path = "/v1/stepup/elevations", tag = "stepup", operation_id = "listElevations",
    responses((status = 200, body = ElevationList)),
    security(("access_token" = [])))]
pub async fn list(
    State(app): State<SharedApp>,
    caller: UserCaller,
) -> Result<Json<ElevationList>, AppError> {
    let elevations = elevations::list(&app, &caller)
        .await?
        .into_iter()
        .map(|live| ElevationView {
            current_session: live.current_session,
            uses_left: live.uses_left,
            device: live.device,
            elevation_id: live.record.id,
            purpose: live.record.purpose,
            session_id: live.record.session_id,
            mode: live.record.mode,
            created_at: rfc3339(live.record.created_at),
            expires_at: rfc3339(live.record.expires_at),
            ip: live.record.ip,
        })
        .collect();
    Ok(Json(ElevationList { elevations }))
}

/// Revoke an elevation early (its user, or an RP's backend).
#[utoipa::path(delete, path = "/v1/stepup/elevations/{id}", tag = "stepup", operation_id = "revokeElevation",
    params(("id" = String, Path, description = "The elevation id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "NOT_FOUND"),
    ),
    security(("access_token" = []), ("service_key" = [])))]
pub async fn revoke(
    State(app): State<SharedApp>,
    caller: UserOrService,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, AppError> {
    let by = match &caller {
        UserOrService::User(user) => Revoker::User(user),
        UserOrService::Service => Revoker::Service,
    };
    elevations::revoke(&app, by, ip, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
