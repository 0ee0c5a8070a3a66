//! Signing in below HTTP: a login whose password checked becomes a session (at once,
//! or once its login challenge passes), with its login record, its audit event and its
//! first access token.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stepgate_api::Risk;
use stepgate_api::{LoginResponse, TokenScheme};
use stepgate_core::ErrorCode;
use stepgate_core::audit::EventType;
use stepgate_core::factor::{FactorKind, FactorStatus, Proof};
use stepgate_core::identity::Username;
use stepgate_core::lockout::Lockout;
use stepgate_core::purpose::FactorClass;
use stepgate_core::risk::{Reason, RiskAssessment, Tier, assess};
use stepgate_core::session::acr;
use stepgate_core::stepup::ElevationMode;
use stepgate_store::{AuditEvent, ChallengeRecord, LoginRecord, SessionRecord};

use crate::app::SharedApp;
use crate::caller::UserCaller;
use crate::dpop;
use crate::error::AppError;
use crate::limits::rate_limit;
use crate::risk::signals::{LoginUser, login_signals};
use crate::time_format::rfc3339;
use crate::tokens::{AccessClaims, Confirmation};

/// Ends the caller's session: its tokens stop working at once (on other nodes within
/// their view cache's age).
pub async fn sign_out(app: &SharedApp, caller: &UserCaller) -> Result<(), AppError> {
    let revoked = app
        .store
        .revoke_session(&caller.session.id, app.now())
        .await?;
    app.decider.forget_session(&caller.session.id);
    if revoked {
        Ok(())
    } else {
        Err(AppError::unauthenticated("the session has ended"))
    }
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
    pub risk: Risk,
    /// The DPoP key the login proved, to which the session's tokens are bound.
    #[serde(default)]
    pub jkt: Option<String>,
}

/// Creates the session of a pending login and signs its first access token. `factor`
/// is the second factor that passed a login challenge, if one did.
pub fn new_session(
    app: &SharedApp,
    pending: &PendingLogin,
    factor: Option<Proof>,
    now: i64,
) -> SessionRecord {
    let mut amr = vec!["pwd"];
    amr.extend(factor.iter().flat_map(|f| f.amr()));
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
        acr: factor.map_or(acr::PASSWORD, Proof::acr).into(),
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
        user_id: Some(pending.user_id.clone()),
        session_id: Some(session.id.clone()),
        ip: Some(pending.ip.clone()),
        data: Some(serde_json::json!({ "risk": pending.risk, "amr": session.amr }).to_string()),
        ..AuditEvent::new(EventType::AccountLoginSucceeded, now)
    }
}

/// The answer that hands out a session.
pub fn session_granted(
    app: &SharedApp,
    session: &SessionRecord,
    risk: Risk,
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
            TokenScheme::Dpop
        } else {
            TokenScheme::Bearer
        }
        .as_str()
        .to_owned(),
        session_id: session.id.clone(),
        expires_in: claims.exp - now,
        enrollment_required: session.enrollment_required,
        risk,
    })
}

/// A sign-in as the caller sent it, its fields checked.
pub struct SignIn {
    pub username: Username,
    /// 1 to [`stepgate_core::identity::Password::MAX_CHARS`] characters.
    pub password: String,
    /// The client's device fingerprint, if it sent one (stored only as a hash).
    pub fingerprint: Option<String>,
    pub user_agent: Option<String>,
    /// The `DPoP` proof of the sign-in request, if any: its key then names the device
    /// and binds the session.
    /// `Err`: the header was there but not text.
    pub dpop_proof: Option<Result<String, ()>>,
}

/// Signs in with a password; the risk engine decides what happens next: `low` (or a
/// user without a second factor, marked `enrollment_required`) → a session; `medium` →
/// `STEPUP_REQUIRED` with a login challenge; `high` → the same with the strongest factor
/// class the user has, or `LOGIN_BLOCKED` if `risk.block_high`. A wrong password and an
/// unknown user take the same time and give the same answer. After
/// `lockout.max_failures` wrong passwords within `lockout.window_seconds` the account
/// answers `ACCOUNT_LOCKED` (even to the right password) until the window moves on.
pub async fn sign_in(
    app: &SharedApp,
    ip: IpAddr,
    request: SignIn,
) -> Result<LoginResponse, AppError> {
    rate_limit(app, "login", ip, app.config.rate_limits.login_per_minute).await?;
    let now = app.now();
    let lockout = Lockout {
        max_failures: app.config.lockout.max_failures as usize,
        window_seconds: app.config.lockout.window_seconds,
    };
    let name = request.username.as_str().to_owned();
    // The attempt takes its place among the account's failures before the password is
    // checked (under a per-name lock), so a burst of concurrent wrong passwords cannot
    // overrun the lockout; a wrong password confirms it, anything else gives it back. A
    // locked account is not even asked for its password, so the right one cannot
    // unlock it.
    let reservation = uuid::Uuid::new_v4().to_string();
    let failures = match app
        .store
        .reserve_login_attempt(
            &name,
            &ip.to_string(),
            lockout.counted_since(now),
            lockout.max_failures,
            now,
            &reservation,
        )
        .await?
    {
        Ok(failures) => failures.len(),
        Err(failures) => {
            let mut e = AppError::new(
                ErrorCode::AccountLocked,
                "too many wrong passwords; try again later",
            );
            e.retry_after = Some(lockout.retry_after(&failures, now));
            return Err(e);
        }
    };
    let attempt = Attempt {
        app,
        ip,
        name: &name,
        failures,
        lockout,
        reservation: &reservation,
        now,
    };
    let outcome = attempt.run(request).await;
    if let Err(e) = app.store.release_login_attempt(&reservation).await {
        tracing::warn!(error = %e, "releasing a sign-in reservation failed");
    }
    outcome
}

/// One sign-in attempt, holding its place among the account's failures.
struct Attempt<'a> {
    app: &'a SharedApp,
    ip: IpAddr,
    name: &'a str,
    /// Wrong passwords (and attempts in flight) in the window before this one.
    failures: usize,
    lockout: Lockout,
    reservation: &'a str,
    now: i64,
}

impl Attempt<'_> {
    async fn run(&self, request: SignIn) -> Result<LoginResponse, AppError> {
        let app = self.app;
        let user = app.store.user_by_username(self.name).await?;
        let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
        let known_id = user.as_ref().map(|u| u.id.clone());
        let verified = app.passwords.verify(request.password, stored_hash).await?;
        let Some(user) = user.filter(|_| verified) else {
            return Err(self.wrong_password(known_id).await);
        };
        let device_hash =
            device_hash(app, request.dpop_proof, request.fingerprint, self.now).await?;
        let (pending, assessment, active) = self
            .assess(&user.id, request.user_agent, device_hash)
            .await?;
        if assessment.tier == Tier::High && app.config.risk.block_high {
            return Err(self.blocked(&pending).await);
        }
        if assessment.tier == Tier::Low || pending.enrollment_required {
            let session = new_session(app, &pending, None, self.now);
            let event = login_succeeded(&pending, &session, self.now);
            app.store
                .insert_session(&session, &login_record(&pending, self.now), &[event])
                .await?;
            return session_granted(app, &session, pending.risk, self.now);
        }
        Err(self
            .login_challenge(&pending, assessment.tier, &active)
            .await)
    }

    /// A wrong password or an unknown user: confirms the reserved failure (and raises
    /// `ACCOUNT_LOCKED` when it is the one that locks), assessing only what the request
    /// shows (network, place, failure burst), the same work whether or not the user
    /// exists.
    async fn wrong_password(&self, known_id: Option<String>) -> AppError {
        let (app, now) = (self.app, self.now);
        let signals = match login_signals(app, self.ip, self.failures + 1, None).await {
            Ok(signals) => signals,
            Err(e) => return e,
        };
        let assessed = crate::risk::shown(&assess(&signals, &app.risk, now));
        let failed = AuditEvent {
            user_id: known_id,
            ip: Some(self.ip.to_string()),
            data: Some(
                serde_json::json!({
                    "username": self.name,
                    "recent_failures": self.failures + 1,
                    "risk": assessed,
                })
                .to_string(),
            ),
            ..AuditEvent::new(EventType::AccountLoginFailed, now)
        };
        let mut events = vec![failed.clone()];
        if self.lockout.locks_with_next(self.failures) {
            events.push(AuditEvent {
                kind: EventType::AccountLocked,
                data: Some(
                    serde_json::json!({ "username": self.name, "until": self.lockout.locked_until(now) })
                        .to_string(),
                ),
                ..failed
            });
        }
        match app
            .store
            .confirm_login_failure(self.reservation, &events)
            .await
        {
            Ok(()) => invalid_credentials(),
            Err(e) => e.into(),
        }
    }

    /// The login's risk and what the pending login will hold.
    async fn assess(
        &self,
        user_id: &str,
        user_agent: Option<String>,
        device_hash: Option<String>,
    ) -> Result<(PendingLogin, RiskAssessment, Vec<FactorKind>), AppError> {
        let app = self.app;
        let user = LoginUser {
            id: user_id,
            device_hash: device_hash.as_deref(),
        };
        let signals = login_signals(app, self.ip, self.failures, Some(user)).await?;
        let geo = signals.geo.clone();
        let mut assessment = assess(&signals, &app.risk, self.now);
        let factors = app.store.factors_of_user(user_id).await?;
        let active = FactorKind::offered(
            factors
                .iter()
                .filter(|f| f.status == FactorStatus::Active)
                .map(|f| f.kind),
        );
        let enrollment_required = active.is_empty();
        if enrollment_required {
            assessment.reasons.push(Reason {
                signal: "enrollment",
                observed: "no second factor enrolled yet: the session must enroll one".into(),
                weight: 0,
            });
        }
        let jkt = device_hash
            .as_deref()
            .and_then(|d| d.strip_prefix(dpop::DEVICE_PREFIX))
            .map(str::to_owned);
        let pending = PendingLogin {
            user_id: user_id.to_owned(),
            ip: self.ip.to_string(),
            user_agent,
            device_hash,
            country: geo.as_ref().map(|g| g.country.clone()),
            latitude: geo.as_ref().map(|g| g.latitude),
            longitude: geo.as_ref().map(|g| g.longitude),
            enrollment_required,
            risk: crate::risk::shown(&assessment),
            jkt,
        };
        Ok((pending, assessment, active))
    }

    /// High risk with `risk.block_high`: refused and audited.
    async fn blocked(&self, pending: &PendingLogin) -> AppError {
        let appended = self
            .app
            .store
            .append_audit(&AuditEvent {
                user_id: Some(pending.user_id.clone()),
                ip: Some(pending.ip.clone()),
                data: Some(
                    serde_json::json!({ "reason": "blocked: high risk", "risk": pending.risk })
                        .to_string(),
                ),
                ..AuditEvent::new(EventType::AccountLoginFailed, self.now)
            })
            .await;
        if let Err(e) = appended {
            return e.into();
        }
        match serde_json::to_value(&pending.risk) {
            Ok(risk) => AppError::new(
                ErrorCode::LoginBlocked,
                "this sign-in looks too risky and was refused",
            )
            .with("risk", risk),
            Err(e) => AppError::internal(e),
        }
    }

    /// Medium or high risk: a login challenge, answered without an access token. High
    /// risk asks for the strongest factor class the user has.
    async fn login_challenge(
        &self,
        pending: &PendingLogin,
        tier: Tier,
        active: &[FactorKind],
    ) -> AppError {
        match self.open_login_challenge(pending, tier, active).await {
            Ok(e) | Err(e) => e,
        }
    }

    async fn open_login_challenge(
        &self,
        pending: &PendingLogin,
        tier: Tier,
        active: &[FactorKind],
    ) -> Result<AppError, AppError> {
        let (app, now) = (self.app, self.now);
        let strongest = active
            .iter()
            .map(|k| k.class())
            .max()
            .unwrap_or(FactorClass::Any);
        let required = if tier == Tier::High {
            strongest
        } else {
            FactorClass::Any
        };
        let allowed: Vec<String> = active
            .iter()
            .filter(|k| k.class().satisfies(required))
            .map(|k| k.as_str().to_owned())
            .collect();
        let snapshot = app.policy.current(&app.store).await?;
        let (webauthn_options, webauthn_state) = login_assertion(app, &pending.user_id, &allowed)
            .await?
            .unzip();
        let record = ChallengeRecord {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: pending.user_id.clone(),
            session_id: None,
            purpose: LOGIN_PURPOSE.into(),
            policy_version: snapshot.version,
            factor_class: required.as_str().into(),
            ttl_seconds: app.lifetimes.session_ttl,
            single_use: true,
            bind_ip: false,
            approvals: 0,
            mode: ElevationMode::Session,
            status: "pending".into(),
            failures: 0,
            max_attempts: i64::from(app.limits.max_attempts),
            created_at: now,
            expires_at: now + app.limits.challenge_ttl_seconds,
            action_digest: None,
            action_summary: Some("Sign in".into()),
            login_context: Some(serde_json::to_string(pending).map_err(AppError::internal)?),
            webauthn_options,
            webauthn_state,
            collected_at: None,
            ip: Some(pending.ip.clone()),
        };
        let event = AuditEvent {
            user_id: Some(pending.user_id.clone()),
            purpose: Some(LOGIN_PURPOSE.into()),
            ip: Some(pending.ip.clone()),
            policy_version: Some(snapshot.version),
            challenge_id: Some(record.id.clone()),
            data: Some(serde_json::json!({ "risk": pending.risk }).to_string()),
            ..AuditEvent::new(EventType::AccountStepupChallengeRequested, now)
        };
        app.store.insert_challenge(&record, &event).await?;
        let mut refusal = AppError::new(
            ErrorCode::StepupRequired,
            "this sign-in needs a second factor",
        );
        if let Some(options) = crate::stepup::challenges::options_of(&record) {
            refusal = refusal.with("webauthn_options", options);
        }
        if let Some(links) = crate::stepup::challenges::links_of(&record.id, &allowed) {
            refusal = refusal.with("links", serde_json::json!(links));
        }
        refusal = refusal.with(
            "stepup_url",
            crate::stepup::challenges::stepup_url(app, &record.id),
        );
        Ok(refusal
            .with("challenge_id", record.id)
            .with("purpose", LOGIN_PURPOSE)
            .with("allowed_factors", allowed)
            .with("expires_at", rfc3339(record.expires_at))
            .with(
                "risk",
                serde_json::to_value(&pending.risk).map_err(AppError::internal)?,
            ))
    }
}

/// A passkey ceremony for a login challenge that WebAuthn may answer.
async fn login_assertion(
    app: &SharedApp,
    user_id: &str,
    allowed: &[String],
) -> Result<Option<(String, String)>, AppError> {
    if !allowed.iter().any(|k| k == FactorKind::Webauthn.as_str()) {
        return Ok(None);
    }
    let factors = app.store.factors_of_user(user_id).await?;
    crate::factors::webauthn::assertion_for(app, &factors)
}

fn invalid_credentials() -> AppError {
    AppError::new(
        ErrorCode::InvalidCredentials,
        "the username or password is wrong",
    )
}

/// What names the sign-in's device: a proven DPoP key (`jkt:<thumbprint>`, better than
/// any fingerprint; the proof is spent), else the fingerprint's SHA-256.
async fn device_hash(
    app: &SharedApp,
    dpop_proof: Option<Result<String, ()>>,
    fingerprint: Option<String>,
    now: i64,
) -> Result<Option<String>, AppError> {
    let Some(proof) = dpop_proof else {
        return Ok(fingerprint.map(|f| hex::encode(Sha256::digest(f.as_bytes()))));
    };
    let proof = proof.map_err(|()| AppError::validation("invalid DPoP proof: not text"))?;
    let url = format!(
        "{}/v1/sessions",
        app.config.public_url.trim_end_matches('/')
    );
    let proof = dpop::verify(&proof, "POST", &url, now)
        .map_err(|why| AppError::validation(format!("invalid DPoP proof: {why}")))?;
    if !dpop::spend_proof(app, &proof).await? {
        return Err(AppError::validation(
            "invalid DPoP proof: it was used before",
        ));
    }
    Ok(Some(format!("{}{}", dpop::DEVICE_PREFIX, proof.jkt)))
}
