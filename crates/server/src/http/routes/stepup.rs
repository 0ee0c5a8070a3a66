//! Step-up over HTTP: challenges, verification, elevations, redemption.

use std::net::IpAddr;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use stepgate_api::Problem;
use stepgate_api::{
    ChallengeState, CodeSent, Elevation, ElevationList, ElevationMode, NewChallenge, Redeem,
    Redeemed, SendCode, StepUpChallenge, Verified, VerifyAnswer, VerifyChallenge,
};
use stepgate_store::ElevationRecord;

use crate::app::{App, SharedApp};
use crate::caller::UserCaller;
use crate::error::AppError;
use crate::factors::email;
use crate::http::extract::{ApiJson, ApiPath, ClientIp, MaybeUser, ServiceCaller, UserOrService};
use crate::http::rfc3339;
use crate::stepup::answers::{self, AnswerRequest, Answerer, Passed};
use crate::stepup::challenges::{
    self, ChallengeRequest, MAX_ACTION_SUMMARY, OpenChallenge, parse_digest,
};
use crate::stepup::elevations::{self, RedeemRequest, Revoker};
use crate::stepup::progress::{self, Collector, Yielded};

/// A new challenge's fields, checked.
fn challenge_request(body: NewChallenge) -> Result<ChallengeRequest, AppError> {
    if body
        .action_summary
        .as_ref()
        .is_some_and(|s| s.chars().count() > MAX_ACTION_SUMMARY)
    {
        return Err(AppError::validation(format!(
            "action_summary must be at most {MAX_ACTION_SUMMARY} characters"
        )));
    }
    Ok(ChallengeRequest {
        mode: body.mode.unwrap_or(ElevationMode::Token),
        action_digest: parse_digest(body.action_digest)?,
        action_summary: body.action_summary,
        purpose: body.purpose,
    })
}

fn shown_challenge(app: &App, c: OpenChallenge) -> Result<StepUpChallenge, AppError> {
    let attempts_left = c.attempts_left();
    let stepup_url = challenges::stepup_url(app, &c.record.id);
    let webauthn_options = c.webauthn_options();
    let links = challenges::links_of(&c.record.id, &c.allowed_factors);
    Ok(StepUpChallenge {
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
        webauthn_options,
        links,
        stepup_url,
    })
}

/// A redeem's fields, checked.
fn redeem_request(body: Redeem) -> Result<RedeemRequest, AppError> {
    let ip = body
        .ip
        .as_deref()
        .map(|raw| {
            raw.parse::<IpAddr>()
                .map_err(|_| AppError::validation("ip must be an IPv4 or IPv6 address"))
        })
        .transpose()?;
    Ok(RedeemRequest {
        action_digest: parse_digest(body.action_digest)?,
        ip,
        elevation_token: body.elevation_token,
        purpose: body.purpose,
        dpop: body.dpop,
    })
}

/// Start a step-up for a purpose.
#[utoipa::path(post, path = "/v1/stepup/challenges", tag = "stepup", operation_id = "createChallenge",
    request_body = NewChallenge,
    responses(
        (status = 429, body = Problem, content_type = "application/problem+json", description = "RATE_LIMITED: challenges opened too fast for this session or user, with Retry-After"),
        (status = 201, body = StepUpChallenge),
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
) -> Result<(StatusCode, Json<StepUpChallenge>), AppError> {
    let opened = challenges::open(&app, &caller, ip, challenge_request(body)?).await?;
    Ok((StatusCode::CREATED, Json(shown_challenge(&app, opened)?)))
}

/// Send a one-time code for a challenge (`email_otp`: to the user's address). Codes are
/// sent only on this request, never when a challenge opens; sending again replaces the
/// earlier code. A login challenge needs no access token (its id is the proof).
#[utoipa::path(post, path = "/v1/stepup/challenges/{id}/send", tag = "stepup", operation_id = "sendChallengeCode",
    params(("id" = String, Path, description = "The challenge id")),
    request_body = SendCode,
    responses(
        (status = 200, body = CodeSent),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "VALIDATION_FAILED"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "UNAUTHENTICATED: an action challenge needs its session's access token"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "STEPUP_FACTOR_INSUFFICIENT (no address enrolled, or too weak for the purpose) or STEPUP_BLOCKED"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "NOT_FOUND"),
        (status = 410, body = Problem, content_type = "application/problem+json", description = "CHALLENGE_EXPIRED"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "RATE_LIMITED: too many codes for this user or address"),
        (status = 502, body = Problem, content_type = "application/problem+json", description = "EMAIL_NOT_SENT: the mail server did not take the mail; no code was stored"),
    ),
    security((), ("access_token" = [])))]
pub async fn send_code(
    State(app): State<SharedApp>,
    MaybeUser(caller): MaybeUser,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<SendCode>,
) -> Result<Json<CodeSent>, AppError> {
    Ok(Json(
        email::send_for_challenge(
            &app,
            Answerer::Api(caller.map(Box::new)),
            ip,
            &id,
            &body.factor,
        )
        .await?,
    ))
}

/// Answer a challenge. Checks, in order: the challenge is live, the factor is strong
/// enough, the code has the factor's shape, the user has that factor (nothing is
/// counted when any of these fails), then the code.
#[utoipa::path(post, path = "/v1/stepup/challenges/{id}/verify", tag = "stepup", operation_id = "verifyChallenge",
    params(("id" = String, Path, description = "The challenge id")),
    request_body = stepgate_api::schemas::ChallengeAnswer,
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
        credential: body.credential,
    };
    Ok(Json(
        match answers::answer(&app, Answerer::Api(caller.map(Box::new)), ip, &id, answer).await? {
            Passed::Login(Some(session)) => VerifyAnswer::Login(*session),
            Passed::Login(None) => {
                return Err(AppError::internal("an API answer without its session"));
            }
            Passed::Elevation {
                record,
                token,
                access_token,
            } => VerifyAnswer::Elevation(verified(&record, token, access_token)),
        },
    ))
}

fn verified(
    record: &ElevationRecord,
    elevation_token: Option<String>,
    access_token: Option<String>,
) -> Verified {
    Verified {
        elevation_id: record.id.clone(),
        elevation_token,
        access_token,
        purpose: record.purpose.clone(),
        mode: record.mode,
        expires_at: rfc3339(record.expires_at),
        single_use: record.single_use,
    }
}

/// Where a challenge stands. After it was passed on the hosted step-up page, the first
/// read collects what it yielded: an action challenge's elevation token (or session
/// mode's `su` access token) with its session's access token, a login challenge's
/// session with a service key. Later reads say `collected` and carry no token.
#[utoipa::path(get, path = "/v1/stepup/challenges/{id}", tag = "stepup", operation_id = "getChallenge",
    params(("id" = String, Path, description = "The challenge id")),
    responses(
        (status = 200, body = ChallengeState),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "UNAUTHENTICATED"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "NOT_FOUND: no such challenge for this caller (another session's, or a login challenge read with an access token)"),
        (status = 410, body = Problem, content_type = "application/problem+json", description = "CHALLENGE_EXPIRED: the session a passed login challenge made has ended"),
    ),
    security(("access_token" = []), ("service_key" = [])))]
pub async fn state(
    State(app): State<SharedApp>,
    caller: UserOrService,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ChallengeState>, AppError> {
    let by = match &caller {
        UserOrService::User(user) => Collector::User(user),
        UserOrService::Service => Collector::Service,
    };
    let view = progress::collect(&app, by, &id).await?;
    let (mut elevation, mut session) = (None, None);
    match view.yielded {
        Some(Yielded::Elevation {
            record,
            token,
            access_token,
        }) => elevation = Some(verified(&record, token, access_token)),
        Some(Yielded::Login(granted)) => session = Some(*granted),
        None => {}
    }
    Ok(Json(ChallengeState {
        challenge_id: view.record.id,
        purpose: view.record.purpose,
        status: view.progress,
        expires_at: rfc3339(view.record.expires_at),
        attempts_left: view.attempts_left,
        collected: view.collected,
        elevation,
        session,
    }))
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
    let record = elevations::redeem(&app, redeem_request(body)?).await?;
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
        .map(|live| {
            Ok(Elevation {
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
        })
        .collect::<Result<_, AppError>>()?;
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
