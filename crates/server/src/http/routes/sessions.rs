//! Login, the current session, logout.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use stepgate_api::Problem;
use stepgate_api::{CurrentSession, DeviceInfo, Login, LoginResponse};
use stepgate_core::identity::{Password, Username, check_device_field};

use crate::app::SharedApp;
use crate::caller::UserCaller;
use crate::error::AppError;
use crate::http::extract::{ApiJson, ClientIp};
use crate::http::rfc3339;
use crate::login::{self, SignIn};

/// Log in with a password; the risk engine decides what happens next.
///
/// `low` → 201 with a session. `medium` → 401 `STEPUP_REQUIRED` with a login challenge
/// (answer it at `/v1/stepup/challenges/{id}/verify` without an access token to get the
/// session). `high` → the same with the strongest factor the user has, or 403
/// `LOGIN_BLOCKED` if `risk.block_high`. A user without a second factor gets a session
/// marked `enrollment_required`. A wrong password and an unknown user take the same time
/// and give the same answer; after `lockout.max_failures` wrong passwords in
/// `lockout.window_seconds` the account answers 423 `ACCOUNT_LOCKED` (even to the right
/// password) until the window moves past them.
#[utoipa::path(post, path = "/v1/sessions", tag = "sessions", operation_id = "login",
    request_body = Login,
    responses(
        (status = 201, body = LoginResponse),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "VALIDATION_FAILED"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "INVALID_CREDENTIALS, or STEPUP_REQUIRED with challenge_id, allowed_factors and risk"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "LOGIN_BLOCKED"),
        (status = 423, body = Problem, content_type = "application/problem+json", description = "ACCOUNT_LOCKED, with Retry-After"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "RATE_LIMITED, with Retry-After"),
    ))]
pub async fn login(
    State(app): State<SharedApp>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Login>,
) -> Result<(StatusCode, Json<LoginResponse>), AppError> {
    let username = Username::parse(&body.username)?;
    if body.password.is_empty() || body.password.chars().count() > Password::MAX_CHARS {
        return Err(AppError::validation("password must be 1 to 256 characters"));
    }
    let device = body.device.unwrap_or(DeviceInfo {
        fingerprint: None,
        user_agent: None,
    });
    if let Some(fingerprint) = &device.fingerprint {
        check_device_field("device.fingerprint", fingerprint)?;
    }
    if let Some(user_agent) = &device.user_agent {
        check_device_field("device.user_agent", user_agent)?;
    }
    // Without one in the body, the User-Agent header, unless it is unusable as text.
    let user_agent = device.user_agent.or_else(|| {
        headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .filter(|v| check_device_field("User-Agent", v).is_ok())
            .map(str::to_owned)
    });
    let request = SignIn {
        username,
        password: body.password,
        fingerprint: device.fingerprint,
        user_agent,
        dpop_proof: headers
            .get("dpop")
            .map(|v| v.to_str().map(str::to_owned).map_err(|_| ())),
    };
    let granted = login::sign_in(&app, ip, request).await?;
    Ok((StatusCode::CREATED, Json(granted)))
}

/// The caller's session.
#[utoipa::path(get, path = "/v1/sessions/current", tag = "sessions", operation_id = "getCurrentSession",
    responses(
        (status = 200, body = CurrentSession),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "UNAUTHENTICATED"),
    ),
    security(("access_token" = [])))]
pub async fn current(caller: UserCaller) -> Json<CurrentSession> {
    let s = caller.session;
    Json(CurrentSession {
        session_id: s.id,
        user_id: s.user_id,
        created_at: rfc3339(s.created_at),
        auth_time: rfc3339(s.auth_time),
        expires_at: rfc3339(s.expires_at),
        ip: s.ip,
        user_agent: s.user_agent,
        acr: s.acr,
        amr: s.amr.split_whitespace().map(str::to_owned).collect(),
        enrollment_required: s.enrollment_required,
        risk: s.risk.as_deref().and_then(|r| serde_json::from_str(r).ok()),
    })
}

/// Log out: revoke the caller's session. Its tokens stop working at once.
#[utoipa::path(delete, path = "/v1/sessions/current", tag = "sessions", operation_id = "logout",
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "UNAUTHENTICATED"),
    ),
    security(("access_token" = [])))]
pub async fn logout(
    State(app): State<SharedApp>,
    caller: UserCaller,
) -> Result<StatusCode, AppError> {
    login::sign_out(&app, &caller).await?;
    Ok(StatusCode::NO_CONTENT)
}
