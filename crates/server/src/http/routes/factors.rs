//! Enrolling, listing and removing factors: TOTP and recovery codes.

use std::net::IpAddr;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use data_encoding::BASE32_NOPAD;
use serde::{Deserialize, Serialize};
use stepgate_core::ErrorCode;
use stepgate_core::factor::{TotpCode, totp_matching_step};
use stepgate_core::stepup::{ElevationMode, Use};
use stepgate_store::{AuditEvent, ElevationRecord, FactorRecord};
use utoipa::ToSchema;

use crate::app::SharedApp;
use crate::caller::UserCaller;
use crate::config::{FACTORS_DELETE, FACTORS_ENROLL};
use crate::devices::remember_session_device;
use crate::elevations::{check_holder, parse_elevation_token, rely_on};
use crate::error::AppError;
use crate::http::error::Problem;
use crate::http::extract::{ApiJson, ApiPath, ClientIp};
use crate::http::rfc3339;
use crate::stepup::challenges::{self, ChallengeRequest};

/// Header carrying an elevation token to routes stepgate itself protects.
pub const ELEVATION_HEADER: &str = "stepgate-elevation";
const RECOVERY_CODES: usize = 10;

#[derive(Serialize, ToSchema)]
pub struct TotpEnrollment {
    pub factor_id: String,
    /// Base32 secret, for manual entry. Shown once.
    pub secret: String,
    pub otpauth_uri: String,
    /// The `otpauth_uri` as an SVG QR code.
    pub qr_svg: String,
}

#[derive(Deserialize, ToSchema)]
pub struct ConfirmTotp {
    pub code: String,
}

#[derive(Serialize, ToSchema)]
pub struct FactorView {
    pub factor_id: String,
    /// `totp` or `recovery_code`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `pending` until confirmed, then `active`.
    pub status: String,
    pub created_at: String,
    pub confirmed_at: Option<String>,
    /// Recovery codes not yet used.
    pub codes_left: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct FactorList {
    pub factors: Vec<FactorView>,
}

#[derive(Serialize, ToSchema)]
pub struct RecoveryCodes {
    pub factor_id: String,
    /// Ten one-time codes. Shown once; stored only as keyed hashes.
    pub codes: Vec<String>,
}

fn random_bytes<const N: usize>() -> Result<[u8; N], AppError> {
    let mut bytes = [0u8; N];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| AppError::internal("random source failed"))?;
    Ok(bytes)
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn enrolled_event(
    caller: &UserCaller,
    ip: IpAddr,
    kind: &str,
    factor_id: &str,
    now: i64,
) -> AuditEvent {
    AuditEvent {
        kind: "FACTOR_ENROLLED",
        at: now,
        user_id: Some(caller.session.user_id.clone()),
        session_id: Some(caller.session.id.clone()),
        ip: Some(ip.to_string()),
        factor: Some(kind.to_owned()),
        data: Some(serde_json::json!({ "factor_id": factor_id }).to_string()),
        ..Default::default()
    }
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
    let now = app.now();
    let existing = app.store.factors_of_user(&caller.session.user_id).await?;
    if existing
        .iter()
        .any(|f| f.status == "active" && f.kind == "totp")
    {
        return Err(AppError::new(
            ErrorCode::Conflict,
            "an authenticator is already enrolled; remove it first",
        ));
    }
    guard_enrollment(
        &app,
        &caller,
        ip,
        &headers,
        &existing,
        "an authenticator app",
    )
    .await?;
    let secret = random_bytes::<20>()?;
    let id = uuid::Uuid::new_v4().to_string();
    let user = app
        .store
        .user_by_id(&caller.session.user_id)
        .await?
        .ok_or_else(|| AppError::unauthenticated("the user no longer exists"))?;
    app.store
        .insert_factor(&FactorRecord {
            id: id.clone(),
            user_id: user.id,
            kind: "totp".into(),
            status: "pending".into(),
            secret: Some(app.secrets.seal(&id, &secret)?),
            last_step: None,
            created_at: now,
            confirmed_at: None,
        })
        .await?;
    let encoded = BASE32_NOPAD.encode(&secret);
    let issuer = &app.config.totp_issuer;
    let uri = format!(
        "otpauth://totp/{}:{}?secret={encoded}&issuer={}&algorithm=SHA1&digits=6&period=30",
        percent_encode(issuer),
        percent_encode(&user.username),
        percent_encode(issuer),
    );
    let qr_svg = qrcode::QrCode::new(uri.as_bytes())
        .map_err(AppError::internal)?
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .build();
    Ok((
        StatusCode::CREATED,
        Json(TotpEnrollment {
            factor_id: id,
            secret: encoded,
            otpauth_uri: uri,
            qr_svg,
        }),
    ))
}

/// Activate a pending TOTP factor with a current code from the authenticator.
#[utoipa::path(post, path = "/v1/factors/totp/{id}/confirm", tag = "factors", operation_id = "confirmTotp",
    params(("id" = String, Path, description = "The factor id")),
    request_body = ConfirmTotp,
    responses(
        (status = 200, body = FactorView),
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
) -> Result<Json<FactorView>, AppError> {
    let now = app.now();
    let factor = app
        .store
        .factor(&id)
        .await?
        .filter(|f| f.user_id == caller.session.user_id && f.kind == "totp")
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, "no such TOTP factor"))?;
    if factor.status != "pending" {
        return Err(AppError::new(
            ErrorCode::Conflict,
            "this factor is already confirmed",
        ));
    }
    let code = TotpCode::parse(&body.code)?;
    let sealed = factor
        .secret
        .as_deref()
        .ok_or_else(|| AppError::internal("TOTP factor without a secret"))?;
    let secret = app.secrets.open(&factor.id, sealed)?;
    let step = totp_matching_step(&secret, &code, now).ok_or_else(|| {
        AppError::validation(
            "the code does not match; check the authenticator's clock and try the next code",
        )
    })?;
    let event = enrolled_event(&caller, ip, "totp", &factor.id, now);
    if !app
        .store
        .confirm_totp(&factor.id, step as i64, now, &event)
        .await?
    {
        return Err(AppError::new(
            ErrorCode::Conflict,
            "this factor is already confirmed",
        ));
    }
    remember_session_device(&app, &caller, &ip.to_string(), now).await?;
    Ok(Json(FactorView {
        factor_id: factor.id,
        kind: factor.kind,
        status: "active".into(),
        created_at: rfc3339(factor.created_at),
        confirmed_at: Some(rfc3339(now)),
        codes_left: None,
    }))
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
    let now = app.now();
    let existing = app.store.factors_of_user(&caller.session.user_id).await?;
    guard_enrollment(&app, &caller, ip, &headers, &existing, "recovery codes").await?;
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    let mut hashes = Vec::with_capacity(RECOVERY_CODES);
    while codes.len() < RECOVERY_CODES {
        let raw: String = random_bytes::<10>()?
            .iter()
            .map(|b| crate::factors::RECOVERY_ALPHABET[usize::from(b & 31)] as char)
            .collect();
        let hash = app.secrets.recovery_code_hash(&raw);
        if hashes.contains(&hash) {
            continue;
        }
        hashes.push(hash);
        codes.push(format!("{}-{}", &raw[..5], &raw[5..]));
    }
    let factor = FactorRecord {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: caller.session.user_id.clone(),
        kind: "recovery_code".into(),
        status: "active".into(),
        secret: None,
        last_step: None,
        created_at: now,
        confirmed_at: Some(now),
    };
    let event = enrolled_event(&caller, ip, "recovery_code", &factor.id, now);
    app.store
        .replace_recovery_codes(&factor, &hashes, &event)
        .await?;
    remember_session_device(&app, &caller, &ip.to_string(), now).await?;
    Ok((
        StatusCode::CREATED,
        Json(RecoveryCodes {
            factor_id: factor.id,
            codes,
        }),
    ))
}

/// The caller's factors (never their secrets).
#[utoipa::path(get, path = "/v1/factors", tag = "factors", operation_id = "listFactors",
    responses((status = 200, body = FactorList)),
    security(("access_token" = [])))]
pub async fn list(
    State(app): State<SharedApp>,
    caller: UserCaller,
) -> Result<Json<FactorList>, AppError> {
    let mut factors = Vec::new();
    for f in app.store.factors_of_user(&caller.session.user_id).await? {
        let codes_left = if f.kind == "recovery_code" {
            Some(app.store.recovery_codes_left(&f.id).await?)
        } else {
            None
        };
        factors.push(FactorView {
            factor_id: f.id,
            kind: f.kind,
            status: f.status,
            created_at: rfc3339(f.created_at),
            confirmed_at: f.confirmed_at.map(rfc3339),
            codes_left,
        });
    }
    Ok(Json(FactorList { factors }))
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
    let now = app.now();
    let not_found = || AppError::new(ErrorCode::NotFound, "no such factor");
    let factor = app
        .store
        .factor(&id)
        .await?
        .filter(|f| f.user_id == caller.session.user_id)
        .ok_or_else(not_found)?;
    let ip_text = ip.to_string();
    let summary = format!("Remove your {} factor", factor.kind);
    let elevation = require_elevation(&app, &caller, ip, &headers, FACTORS_DELETE, summary).await?;
    let event = AuditEvent {
        kind: "FACTOR_REMOVED",
        at: now,
        user_id: Some(caller.session.user_id.clone()),
        session_id: Some(caller.session.id.clone()),
        purpose: Some(FACTORS_DELETE.into()),
        ip: Some(ip_text),
        factor: Some(factor.kind.clone()),
        policy_version: Some(elevation.policy_version),
        elevation_id: Some(elevation.id.clone()),
        data: Some(serde_json::json!({ "factor_id": factor.id }).to_string()),
        ..Default::default()
    };
    if app
        .store
        .delete_factor(&factor.id, &caller.session.user_id, &event)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found())
    }
}

/// Uses up an elevation for `purpose` held by the caller: the token in the
/// `Stepgate-Elevation` header, or a session-mode elevation of the calling session.
/// Without one the answer is `STEPUP_REQUIRED` with a ready session-mode challenge.
pub(crate) async fn require_elevation(
    app: &SharedApp,
    caller: &UserCaller,
    ip: IpAddr,
    headers: &HeaderMap,
    purpose: &str,
    summary: String,
) -> Result<ElevationRecord, AppError> {
    let now = app.now();
    let presented = match headers.get(ELEVATION_HEADER) {
        Some(value) => {
            let malformed = || {
                AppError::new(
                    ErrorCode::StepupTokenInvalid,
                    "the elevation token is malformed",
                )
            };
            let hash = parse_elevation_token(value.to_str().map_err(|_| malformed())?)?;
            let record = app
                .store
                .elevation_by_token_hash(&hash)
                .await?
                .filter(|e| e.user_id == caller.session.user_id)
                .ok_or_else(|| {
                    AppError::new(ErrorCode::StepupTokenInvalid, "unknown elevation token")
                })?;
            let caller_jkt = caller.claims.cnf.as_ref().map(|c| c.jkt.as_str());
            check_holder(&record, &caller.session.id, caller_jkt)?;
            Some(record)
        }
        None => app
            .store
            .live_elevations_of_user(&caller.session.user_id, now)
            .await?
            .into_iter()
            .find(|e| {
                e.session_id == caller.session.id
                    && e.purpose == purpose
                    && e.mode == ElevationMode::Session.as_str()
            }),
    };
    let Some(elevation) = presented else {
        let challenge = challenges::open(
            app,
            caller,
            ip,
            ChallengeRequest {
                purpose: purpose.into(),
                mode: ElevationMode::Session,
                action_digest: None,
                action_summary: Some(summary),
            },
        )
        .await?;
        return Err(AppError::new(
            ErrorCode::StepupRequired,
            "this change to your factors needs a step-up",
        )
        .with("purpose", purpose)
        .with("challenge_id", challenge.record.id)
        .with("allowed_factors", challenge.allowed_factors));
    };
    let ip_text = ip.to_string();
    let use_ = Use {
        purpose,
        ip: Some(&ip_text),
        action_digest: None,
    };
    rely_on(app, &elevation, &use_, now).await?;
    Ok(elevation)
}

/// Adding a factor when one exists is itself a step-up (`factors:enroll`): otherwise a
/// password-only session could plant its own authenticator. The first factor needs none.
async fn guard_enrollment(
    app: &SharedApp,
    caller: &UserCaller,
    ip: IpAddr,
    headers: &HeaderMap,
    factors: &[FactorRecord],
    what: &str,
) -> Result<(), AppError> {
    if factors.iter().any(|f| f.status == "active") {
        require_elevation(
            app,
            caller,
            ip,
            headers,
            FACTORS_ENROLL,
            format!("Add {what}"),
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_percent_encoded() {
        assert_eq!(percent_encode("a b+c@d"), "a%20b%2Bc%40d");
    }
}
