//! Signing in below HTTP: a login whose password checked becomes a session (at once,
//! or once its login challenge passes), with its login record, its audit event and its
//! first access token.

use serde::{Deserialize, Serialize};
use stepgate_core::factor::FactorKind;
use stepgate_core::session::acr;
use stepgate_store::{AuditEvent, LoginRecord, SessionRecord};
use utoipa::ToSchema;

use crate::app::SharedApp;
use crate::error::AppError;
use crate::risk::RiskView;
use crate::tokens::{AccessClaims, Confirmation};

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    /// A JWT signed with the key named by its `kid` (see the JWKS).
    pub access_token: String,
    pub token_type: &'static str,
    pub session_id: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The user has no second factor yet and should enroll one.
    pub enrollment_required: bool,
    /// The assessment that let this login through.
    pub risk: RiskView,
}

/// The purpose name of login challenges.
pub const LOGIN_PURPOSE: &str = "login";

/// A login whose password checked, waiting for its session: granted at once (low risk)
/// or after its login challenge passes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    pub user_id: String,
    pub ip: String,
    pub user_agent: Option<String>,
    pub device_hash: Option<String>,
    pub country: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub enrollment_required: bool,
    pub risk: RiskView,
    /// The DPoP key the login proved, to which the session's tokens are bound.
    #[serde(default)]
    pub jkt: Option<String>,
}

/// Creates the session of a pending login and signs its first access token. `factor`
/// is the second factor that passed a login challenge, if one did.
pub fn new_session(
    app: &SharedApp,
    pending: &PendingLogin,
    factor: Option<FactorKind>,
    now: i64,
) -> SessionRecord {
    let mut amr = vec!["pwd"];
    amr.extend(factor.map(|f| f.amr()));
    SessionRecord {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: pending.user_id.clone(),
        created_at: now,
        auth_time: now,
        expires_at: app.lifetimes.session_expiry(now),
        revoked_at: None,
        ip: pending.ip.clone(),
        user_agent: pending.user_agent.clone(),
        device_hash: pending.device_hash.clone(),
        acr: if factor.is_some() {
            acr::MFA
        } else {
            acr::PASSWORD
        }
        .into(),
        amr: amr.join(" "),
        enrollment_required: pending.enrollment_required,
        risk: serde_json::to_string(&pending.risk).ok(),
        jkt: pending.jkt.clone(),
    }
}

pub fn login_record(pending: &PendingLogin, now: i64) -> LoginRecord {
    LoginRecord {
        user_id: pending.user_id.clone(),
        at: now,
        ip: pending.ip.clone(),
        country: pending.country.clone(),
        latitude: pending.latitude,
        longitude: pending.longitude,
    }
}

pub fn login_succeeded(pending: &PendingLogin, session: &SessionRecord, now: i64) -> AuditEvent {
    AuditEvent {
        kind: "ACCOUNT_LOGIN_SUCCEEDED",
        at: now,
        user_id: Some(pending.user_id.clone()),
        session_id: Some(session.id.clone()),
        ip: Some(pending.ip.clone()),
        data: Some(serde_json::json!({ "risk": pending.risk, "amr": session.amr }).to_string()),
        ..Default::default()
    }
}

/// The answer that hands out a session.
pub fn session_granted(
    app: &SharedApp,
    session: &SessionRecord,
    risk: RiskView,
    now: i64,
) -> Result<LoginResponse, AppError> {
    let claims = AccessClaims {
        iss: app.tokens.issuer().to_owned(),
        sub: session.user_id.clone(),
        sid: session.id.clone(),
        iat: now,
        exp: app.lifetimes.access_token_expiry(now, session.expires_at),
        auth_time: session.auth_time,
        acr: session.acr.clone(),
        amr: session.amr.split_whitespace().map(str::to_owned).collect(),
        su: None,
        su_time: None,
        su_purpose: None,
        cnf: Confirmation::of(session.jkt.as_ref()),
    };
    Ok(LoginResponse {
        access_token: app.tokens.sign(&claims)?,
        token_type: if session.jkt.is_some() {
            "DPoP"
        } else {
            "Bearer"
        },
        session_id: session.id.clone(),
        expires_in: claims.exp - now,
        enrollment_required: session.enrollment_required,
        risk,
    })
}
