//! Login, the current session, logout.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stepgate_core::ErrorCode;
use stepgate_core::identity::{Password, Username};
use stepgate_core::session::acr;
use stepgate_store::SessionRecord;
use utoipa::ToSchema;

use crate::app::{SharedApp, now};
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{ApiJson, ClientIp, UserCaller};
use crate::http::rfc3339;
use crate::tokens::AccessClaims;

const MAX_DEVICE_FIELD: usize = 512;

#[derive(Deserialize, ToSchema)]
pub struct Login {
    pub username: String,
    pub password: String,
    pub device: Option<Device>,
}

#[derive(Deserialize, ToSchema)]
pub struct Device {
    /// An opaque fingerprint the client computed; stored only as a hash.
    pub fingerprint: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    /// A JWT signed with the key named by its `kid` (see the JWKS).
    pub access_token: String,
    pub token_type: &'static str,
    pub session_id: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

#[derive(Serialize, ToSchema)]
pub struct CurrentSession {
    pub session_id: String,
    pub user_id: String,
    pub created_at: String,
    pub auth_time: String,
    pub expires_at: String,
    /// The client IP the login came from.
    pub ip: String,
    pub user_agent: Option<String>,
    pub acr: String,
    pub amr: Vec<String>,
}

fn invalid_credentials() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidCredentials,
        "the username or password is wrong",
    )
}

/// Log in with a password.
///
/// A wrong password and an unknown user take the same time and give the same answer.
#[utoipa::path(post, path = "/v1/sessions", tag = "sessions",
    request_body = Login,
    responses(
        (status = 201, body = LoginResponse),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "VALIDATION_FAILED"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "INVALID_CREDENTIALS"),
    ))]
pub async fn login(
    State(app): State<SharedApp>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Login>,
) -> Result<(StatusCode, Json<LoginResponse>), ApiError> {
    let username = Username::parse(&body.username)?;
    if body.password.is_empty() || body.password.len() > Password::MAX_BYTES {
        return Err(ApiError::validation("password must be 1 to 256 bytes"));
    }
    let device = body.device.unwrap_or(Device {
        fingerprint: None,
        user_agent: None,
    });
    let user_agent = device.user_agent.or_else(|| {
        headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    });
    for field in [&device.fingerprint, &user_agent].into_iter().flatten() {
        if field.len() > MAX_DEVICE_FIELD {
            return Err(ApiError::validation(
                "device fields must be at most 512 bytes",
            ));
        }
    }

    let user = app.store.user_by_username(username.as_str()).await?;
    let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
    if !app.passwords.verify(body.password, stored_hash).await? {
        return Err(invalid_credentials());
    }
    let user = user.ok_or_else(invalid_credentials)?;

    let now = now();
    let session = SessionRecord {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user.id.clone(),
        created_at: now,
        auth_time: now,
        expires_at: app.lifetimes.session_expiry(now),
        revoked_at: None,
        ip: ip.to_string(),
        user_agent,
        device_hash: device
            .fingerprint
            .map(|f| hex::encode(Sha256::digest(f.as_bytes()))),
        acr: acr::PASSWORD.into(),
        amr: "pwd".into(),
    };
    app.store.insert_session(&session).await?;
    let claims = AccessClaims {
        iss: app.tokens.issuer().to_owned(),
        sub: user.id,
        sid: session.id.clone(),
        iat: now,
        exp: app.lifetimes.access_token_expiry(now, session.expires_at),
        auth_time: session.auth_time,
        acr: session.acr.clone(),
        amr: vec!["pwd".into()],
        su: None,
        su_time: None,
        su_purpose: None,
    };
    let access_token = app.tokens.sign(&claims)?;
    Ok((
        StatusCode::CREATED,
        Json(LoginResponse {
            access_token,
            token_type: "Bearer",
            session_id: session.id,
            expires_in: claims.exp - now,
        }),
    ))
}

/// The caller's session.
#[utoipa::path(get, path = "/v1/sessions/current", tag = "sessions",
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
    })
}

/// Log out: revoke the caller's session. Its tokens stop working at once.
#[utoipa::path(delete, path = "/v1/sessions/current", tag = "sessions",
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "UNAUTHENTICATED"),
    ),
    security(("access_token" = [])))]
pub async fn logout(
    State(app): State<SharedApp>,
    caller: UserCaller,
) -> Result<StatusCode, ApiError> {
    if !app.store.revoke_session(&caller.session.id, now()).await? {
        return Err(ApiError::unauthenticated("the session has ended"));
    }
    Ok(StatusCode::NO_CONTENT)
}
