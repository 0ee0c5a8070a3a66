//! Login, the current session, logout.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stepgate_core::ErrorCode;
use stepgate_core::factor::FactorKind;
use stepgate_core::identity::{Password, Username, check_device_field};
use stepgate_core::purpose::FactorClass;
use stepgate_core::risk::{Reason, Tier, assess};
use stepgate_store::{AuditEvent, ChallengeRecord};
use utoipa::ToSchema;

use crate::app::SharedApp;
use crate::caller::UserCaller;
use crate::dpop;
use crate::error::AppError;
use crate::http::error::Problem;
use crate::http::extract::{ApiJson, ClientIp};
use crate::http::rfc3339;
use crate::limits::rate_limit;
use crate::login::{
    LOGIN_PURPOSE, LoginResponse, PendingLogin, login_record, login_succeeded, new_session,
    session_granted,
};
use crate::risk::{self, RiskView};

#[derive(Deserialize, ToSchema)]
pub struct Login {
    #[schema(pattern = r"^[A-Za-z0-9._@+-]{1,64}$", min_length = 1, max_length = 64)]
    pub username: String,
    #[schema(min_length = 1, max_length = 256)]
    pub password: String,
    pub device: Option<Device>,
}

#[derive(Deserialize, ToSchema)]
pub struct Device {
    /// An opaque fingerprint the client computed; stored only as a hash. At most 512
    /// characters, without control characters.
    #[schema(pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$", max_length = 512)]
    pub fingerprint: Option<String>,
    /// At most 512 characters, without control characters; without it, the
    /// `User-Agent` header.
    #[schema(pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$", max_length = 512)]
    pub user_agent: Option<String>,
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
    pub enrollment_required: bool,
    /// The assessment made at login.
    pub risk: Option<RiskView>,
}

fn invalid_credentials() -> AppError {
    AppError::new(
        ErrorCode::InvalidCredentials,
        "the username or password is wrong",
    )
}

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
    let device = body.device.unwrap_or(Device {
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
    rate_limit(&app, "login", ip, app.config.rate_limits.login_per_minute).await?;
    let now = app.now();
    let name = username.as_str();

    // Sign-in lockout, per account name, from any IP. A locked account is not even
    // asked for its password, so the right one cannot unlock it.
    let lockout = &app.config.lockout;
    // The attempt takes its place among the account's failures before the password is
    // checked (under a per-name lock), so a burst of concurrent wrong passwords cannot
    // overrun the lockout; a wrong password confirms it, anything else gives it back.
    let max = lockout.max_failures as usize;
    let reservation = uuid::Uuid::new_v4().to_string();
    let failures = match app
        .store
        .reserve_login_attempt(
            name,
            &ip.to_string(),
            now - lockout.window_seconds,
            max,
            now,
            &reservation,
        )
        .await?
    {
        Ok(failures) => failures,
        Err(failures) => {
            let mut e = AppError::new(
                ErrorCode::AccountLocked,
                "too many wrong passwords; try again later",
            );
            e.retry_after = Some(failures[max - 1] + lockout.window_seconds - now);
            return Err(e);
        }
    };
    let outcome: Result<_, AppError> = async {

        let user = app.store.user_by_username(name).await?;
        let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
        let known_id = user.as_ref().map(|u| u.id.clone());
        let verified = app.passwords.verify(body.password, stored_hash).await?;
        let Some(user) = user.filter(|_| verified) else {
            // The assessment of a failed login uses only what the request shows (network,
            // place, failure burst), the same work whether or not the user exists.
            let signals = risk::request_signals(&app, ip, failures.len() + 1);
            let assessed = RiskView::from(&assess(&signals, &app.risk, now));
            let failed = AuditEvent {
                kind: "ACCOUNT_LOGIN_FAILED",
                at: now,
                user_id: known_id,
                ip: Some(ip.to_string()),
                data: Some(
                    serde_json::json!({
                        "username": name,
                        "recent_failures": failures.len() + 1,
                        "risk": assessed,
                    })
                    .to_string(),
                ),
                ..Default::default()
            };
            let mut events = vec![failed.clone()];
            if failures.len() + 1 == max {
                events.push(AuditEvent {
                    kind: "ACCOUNT_LOCKED",
                    data: Some(
                        serde_json::json!({ "username": name, "until": now + lockout.window_seconds })
                            .to_string(),
                    ),
                    ..failed
                });
            }
            app.store
                .confirm_login_failure(&reservation, &events)
                .await?;
            return Err(invalid_credentials());
        };

        // A proven DPoP key names the device better than any fingerprint.
        let device_hash = match headers.get("dpop") {
            Some(value) => {
                let proof = value
                    .to_str()
                    .map_err(|_| AppError::validation("invalid DPoP proof: not text"))
                    .and_then(|v| {
                        let url = format!(
                            "{}/v1/sessions",
                            app.config.public_url.trim_end_matches('/')
                        );
                        dpop::verify(v, "POST", &url, now)
                            .map_err(|why| AppError::validation(format!("invalid DPoP proof: {why}")))
                    })?;
                if !crate::dpop::spend_proof(&app, &proof).await? {
                    return Err(AppError::validation(
                        "invalid DPoP proof: it was used before",
                    ));
                }
                Some(format!("{}{}", dpop::DEVICE_PREFIX, proof.jkt))
            }
            None => device
                .fingerprint
                .map(|f| hex::encode(Sha256::digest(f.as_bytes()))),
        };
        let (signals, geo) =
            risk::login_signals(&app, &user.id, failures.len(), ip, device_hash.as_deref()).await?;
        let mut assessment = assess(&signals, &app.risk, now);
        let factors = app.store.factors_of_user(&user.id).await?;
        let active: Vec<FactorKind> = factors
            .iter()
            .filter(|f| f.status == "active")
            .filter_map(|f| FactorKind::parse(&f.kind).ok())
            .collect();
        let enrollment_required = active.is_empty();
        if enrollment_required {
            assessment.reasons.push(Reason {
                signal: "enrollment",
                observed: "no second factor enrolled yet: the session must enroll one".into(),
                weight: 0,
            });
        }
        let risk = RiskView::from(&assessment);
        let jkt = device_hash
            .as_deref()
            .and_then(|d| d.strip_prefix(dpop::DEVICE_PREFIX))
            .map(str::to_owned);
        let pending = PendingLogin {
            user_id: user.id.clone(),
            ip: ip.to_string(),
            user_agent,
            device_hash,
            country: geo.as_ref().map(|g| g.country.clone()),
            latitude: geo.as_ref().map(|g| g.latitude),
            longitude: geo.as_ref().map(|g| g.longitude),
            enrollment_required,
            risk: risk.clone(),
            jkt,
        };

        if assessment.tier == Tier::High && app.config.risk.block_high {
            app.store
                .append_audit(&AuditEvent {
                    kind: "ACCOUNT_LOGIN_FAILED",
                    at: now,
                    user_id: Some(user.id.clone()),
                    ip: Some(pending.ip.clone()),
                    data: Some(
                        serde_json::json!({ "reason": "blocked: high risk", "risk": risk }).to_string(),
                    ),
                    ..Default::default()
                })
                .await?;
            return Err(AppError::new(
                ErrorCode::LoginBlocked,
                "this sign-in looks too risky and was refused",
            )
            .with(
                "risk",
                serde_json::to_value(&risk).map_err(AppError::internal)?,
            ));
        }
        if assessment.tier == Tier::Low || enrollment_required {
            let session = new_session(&app, &pending, None, now);
            let event = login_succeeded(&pending, &session, now);
            app.store
                .insert_session(&session, &login_record(&pending, now), &[event])
                .await?;
            return Ok((
                StatusCode::CREATED,
                Json(session_granted(&app, &session, risk, now)?),
            ));
        }

        // Medium or high: a login challenge. High risk asks for the strongest factor class
        // the user has.
        let strongest = active
            .iter()
            .map(|k| k.class(false))
            .max()
            .unwrap_or(FactorClass::Any);
        let required = if assessment.tier == Tier::High {
            strongest
        } else {
            FactorClass::Any
        };
        let allowed: Vec<String> = active
            .iter()
            .filter(|k| k.class(false).satisfies(required))
            .map(|k| k.as_str().to_owned())
            .fold(Vec::new(), |mut v, k| {
                if !v.contains(&k) {
                    v.push(k);
                }
                v
            });
        let snapshot = app.policy.current(&app.store).await?;
        let record = ChallengeRecord {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user.id.clone(),
            session_id: None,
            purpose: LOGIN_PURPOSE.into(),
            policy_version: snapshot.version,
            factor_class: required.as_str().into(),
            ttl_seconds: app.lifetimes.session_ttl,
            single_use: true,
            bind_ip: false,
            approvals: 0,
            mode: "session".into(),
            status: "pending".into(),
            failures: 0,
            max_attempts: i64::from(app.limits.max_attempts),
            created_at: now,
            expires_at: now + app.limits.challenge_ttl_seconds,
            action_digest: None,
            action_summary: Some("Sign in".into()),
            login_context: Some(serde_json::to_string(&pending).map_err(AppError::internal)?),
        };
        let event = AuditEvent {
            kind: "ACCOUNT_STEPUP_CHALLENGE_REQUESTED",
            at: now,
            user_id: Some(user.id.clone()),
            purpose: Some(LOGIN_PURPOSE.into()),
            ip: Some(pending.ip.clone()),
            policy_version: Some(snapshot.version),
            challenge_id: Some(record.id.clone()),
            data: Some(serde_json::json!({ "risk": risk }).to_string()),
            ..Default::default()
        };
        app.store.insert_challenge(&record, &event).await?;
        Err(AppError::new(
            ErrorCode::StepupRequired,
            "this sign-in needs a second factor",
        )
        .with("challenge_id", record.id)
        .with("purpose", LOGIN_PURPOSE)
        .with("allowed_factors", allowed)
        .with("expires_at", rfc3339(record.expires_at))
        .with(
            "risk",
            serde_json::to_value(&risk).map_err(AppError::internal)?,
        ))
    }
    .await;
    if let Err(e) = app.store.release_login_attempt(&reservation).await {
        tracing::warn!(error = %e, "releasing a sign-in reservation failed");
    }
    outcome
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
    let revoked = app
        .store
        .revoke_session(&caller.session.id, app.now())
        .await?;
    app.decider.forget_session(&caller.session.id);
    if !revoked {
        return Err(AppError::unauthenticated("the session has ended"));
    }
    Ok(StatusCode::NO_CONTENT)
}
