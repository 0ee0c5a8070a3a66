//! Enrolling, listing and removing factors: TOTP, passkeys and security keys
//! (WebAuthn), recovery codes.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use stepgate_api::Problem;
use stepgate_api::{
    ConfirmEmail, ConfirmTotp, EmailEnrollment, Factor, FactorList, FinishWebauthnRegistration,
    NewEmailFactor, NewWebauthnRegistration, RecoveryCodes, TotpEnrollment, WebauthnRegistration,
};

use crate::app::SharedApp;
use crate::caller::UserCaller;
use crate::error::AppError;
use crate::factors::{self, Presented, email, webauthn};
use crate::http::extract::{ApiJson, ApiPath, ClientIp, ELEVATION_HEADER};

/// The elevation token the caller presented, if any (`Err`: the header is not text).
fn presented(headers: &HeaderMap) -> Option<Presented<'_>> {
    headers
        .get(ELEVATION_HEADER)
        .map(|v| v.to_str().map_err(|_| ()))
}

/// Start enrolling a TOTP authenticator. Confirm it with a code to activate it.
#[utoipa::path(post, path = "/v1/factors/totp", tag = "factors", operation_id = "enrollTotp",
    params(
        ("Stepgate-Elevation" = Option<String>, Header, description = "An elevation token for factors:enroll (needed once the user has an active factor)"),
    ),
    responses(
        (status = 429, body = Problem, content_type = "application/problem+json", description = "RATE_LIMITED: challenges opened too fast for this session or user, with Retry-After"),
        (status = 201, body = TotpEnrollment),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "STEPUP_REQUIRED (factors:enroll), with purpose and challenge_id; or UNAUTHENTICATED"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "STEPUP_TOKEN_* errors for the presented elevation"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "CONFLICT: an authenticator is already enrolled"),
    ),
    security(("access_token" = [])))]
pub async fn enroll_totp(
    State(app): State<SharedApp>,
    caller: UserCaller,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<TotpEnrollment>), AppError> {
    let enrollment = factors::enroll_totp(&app, &caller, ip, presented(&headers)).await?;
    Ok((StatusCode::CREATED, Json(enrollment)))
}

/// Start registering a passkey or security key: pass `options` to
/// `navigator.credentials.create()` and post the credential to the registration.
#[utoipa::path(post, path = "/v1/factors/webauthn/registrations", tag = "factors", operation_id = "startWebauthnRegistration",
    params(
        ("Stepgate-Elevation" = Option<String>, Header, description = "An elevation token for factors:enroll (needed once the user has an active factor; asked here, it carries to the finish)"),
    ),
    request_body = NewWebauthnRegistration,
    responses(
        (status = 201, body = WebauthnRegistration),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "VALIDATION_FAILED"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "STEPUP_REQUIRED (factors:enroll), with purpose and challenge_id; or UNAUTHENTICATED"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "STEPUP_TOKEN_* errors for the presented elevation"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "CONFLICT: the user has the most passkeys allowed"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "RATE_LIMITED"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "UNAVAILABLE: public_url names no domain, so there is no WebAuthn relying party"),
    ),
    security(("access_token" = [])))]
pub async fn start_webauthn_registration(
    State(app): State<SharedApp>,
    caller: UserCaller,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewWebauthnRegistration>,
) -> Result<(StatusCode, Json<WebauthnRegistration>), AppError> {
    let started =
        webauthn::start_registration(&app, &caller, ip, presented(&headers), body.name).await?;
    Ok((StatusCode::CREATED, Json(started)))
}

/// Finish a passkey registration with the browser's credential. The user's first
/// factor comes with a first set of recovery codes (`recovery_codes`, shown once).
#[utoipa::path(post, path = "/v1/factors/webauthn/registrations/{id}", tag = "factors", operation_id = "finishWebauthnRegistration",
    params(("id" = String, Path, description = "The registration id")),
    request_body = FinishWebauthnRegistration,
    responses(
        (status = 201, body = Factor),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "VALIDATION_FAILED: not a credential, or it does not verify (origin, RP id, challenge, user verification), with why"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "NOT_FOUND: no such registration for this session"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "CONFLICT: finished already, or the credential is registered already"),
        (status = 410, body = Problem, content_type = "application/problem+json", description = "CHALLENGE_EXPIRED: the registration expired"),
    ),
    security(("access_token" = [])))]
pub async fn finish_webauthn_registration(
    State(app): State<SharedApp>,
    caller: UserCaller,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<FinishWebauthnRegistration>,
) -> Result<(StatusCode, Json<Factor>), AppError> {
    let factor = webauthn::finish_registration(&app, &caller, ip, &id, body.credential).await?;
    Ok((StatusCode::CREATED, Json(factor)))
}

/// Enroll an email address for one-time codes: a code is sent to it; confirm it to
/// activate the factor.
#[utoipa::path(post, path = "/v1/factors/email", tag = "factors", operation_id = "enrollEmail",
    params(
        ("Stepgate-Elevation" = Option<String>, Header, description = "An elevation token for factors:enroll (needed once the user has an active factor)"),
    ),
    request_body = NewEmailFactor,
    responses(
        (status = 201, body = EmailEnrollment),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "VALIDATION_FAILED"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "STEPUP_REQUIRED (factors:enroll), with purpose and challenge_id; or UNAUTHENTICATED"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "STEPUP_TOKEN_* errors for the presented elevation"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "CONFLICT: an address is already enrolled"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "RATE_LIMITED: too many codes for this user or address"),
        (status = 502, body = Problem, content_type = "application/problem+json", description = "EMAIL_NOT_SENT: the mail server did not take the mail; nothing was stored"),
    ),
    security(("access_token" = [])))]
pub async fn enroll_email(
    State(app): State<SharedApp>,
    caller: UserCaller,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewEmailFactor>,
) -> Result<(StatusCode, Json<EmailEnrollment>), AppError> {
    let enrolled = email::enroll(&app, &caller, ip, presented(&headers), &body.email).await?;
    Ok((StatusCode::CREATED, Json(enrolled)))
}

/// Activate a pending email factor with the code sent to the address. The user's first
/// factor comes with a first set of recovery codes (`recovery_codes`, shown once).
#[utoipa::path(post, path = "/v1/factors/email/{id}/confirm", tag = "factors", operation_id = "confirmEmail",
    params(("id" = String, Path, description = "The factor id")),
    request_body = ConfirmEmail,
    responses(
        (status = 200, body = Factor),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "VALIDATION_FAILED: wrong (with attempts_left) or malformed code"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "NOT_FOUND"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "CONFLICT: already confirmed"),
        (status = 410, body = Problem, content_type = "application/problem+json", description = "CHALLENGE_EXPIRED: the code expired or was tried too often"),
    ),
    security(("access_token" = [])))]
pub async fn confirm_email(
    State(app): State<SharedApp>,
    caller: UserCaller,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ConfirmEmail>,
) -> Result<Json<Factor>, AppError> {
    Ok(Json(
        email::confirm(&app, &caller, ip, &id, &body.code).await?,
    ))
}

/// Activate a pending TOTP factor with a current code from the authenticator.
#[utoipa::path(post, path = "/v1/factors/totp/{id}/confirm", tag = "factors", operation_id = "confirmTotp",
    params(("id" = String, Path, description = "The factor id")),
    request_body = ConfirmTotp,
    responses(
        (status = 200, body = Factor),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "VALIDATION_FAILED: wrong or malformed code"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "NOT_FOUND"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "CONFLICT: already confirmed"),
    ),
    security(("access_token" = [])))]
pub async fn confirm_totp(
    State(app): State<SharedApp>,
    caller: UserCaller,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ConfirmTotp>,
) -> Result<Json<Factor>, AppError> {
    Ok(Json(
        factors::confirm_totp(&app, &caller, ip, &id, &body.code).await?,
    ))
}

/// Generate ten recovery codes, replacing any earlier set.
#[utoipa::path(post, path = "/v1/factors/recovery-codes", tag = "factors", operation_id = "createRecoveryCodes",
    params(
        ("Stepgate-Elevation" = Option<String>, Header, description = "An elevation token for factors:enroll (needed once the user has an active factor)"),
    ),
    responses(
        (status = 429, body = Problem, content_type = "application/problem+json", description = "RATE_LIMITED: challenges opened too fast for this session or user, with Retry-After"),
        (status = 201, body = RecoveryCodes),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "STEPUP_REQUIRED (factors:enroll), with purpose and challenge_id; or UNAUTHENTICATED"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "STEPUP_TOKEN_* errors for the presented elevation"),
    ),
    security(("access_token" = [])))]
pub async fn create_recovery_codes(
    State(app): State<SharedApp>,
    caller: UserCaller,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<RecoveryCodes>), AppError> {
    let codes = factors::create_recovery_codes(&app, &caller, ip, presented(&headers)).await?;
    Ok((StatusCode::CREATED, Json(codes)))
}

/// The caller's factors (never their secrets).
#[utoipa::path(get, path = "/v1/factors", tag = "factors", operation_id = "listFactors",
    responses((status = 200, body = FactorList)),
    security(("access_token" = [])))]
pub async fn list(
    State(app): State<SharedApp>,
    caller: UserCaller,
) -> Result<Json<FactorList>, AppError> {
    Ok(Json(factors::list(&app, &caller).await?))
}

/// Remove a factor. This is itself a step-up purpose (`factors:delete`): present an
/// elevation token in the `Stepgate-Elevation` header, or hold a session-mode
/// elevation for it; otherwise the answer is `STEPUP_REQUIRED` with a ready challenge.
#[utoipa::path(delete, path = "/v1/factors/{id}", tag = "factors", operation_id = "deleteFactor",
    params(
        ("id" = String, Path, description = "The factor id"),
        ("Stepgate-Elevation" = Option<String>, Header, description = "An elevation token for factors:delete"),
    ),
    responses(
        (status = 429, body = Problem, content_type = "application/problem+json", description = "RATE_LIMITED: challenges opened too fast for this session or user, with Retry-After"),
        (status = 204, description = "Removed"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "STEPUP_REQUIRED, with purpose and challenge_id"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "STEPUP_TOKEN_* errors"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "NOT_FOUND"),
    ),
    security(("access_token" = [])))]
pub async fn delete(
    State(app): State<SharedApp>,
    caller: UserCaller,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, AppError> {
    factors::delete(&app, &caller, ip, presented(&headers), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
