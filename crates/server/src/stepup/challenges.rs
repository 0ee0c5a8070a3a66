//! Opening step-up challenges: which of the user's factors may answer, the failure
//! budget, the per-session and per-user limits, and the pending challenge a repeated
//! request gets back.

use std::net::IpAddr;

use stepgate_api::Risk;
use stepgate_core::ErrorCode;
use stepgate_core::audit::EventType;
use stepgate_core::factor::{FactorKind, FactorStatus};
use stepgate_core::purpose::{FactorClass, Purpose, Requirement};
use stepgate_core::stepup::{ChallengeStatus, ElevationMode};
use stepgate_store::{AuditEvent, ChallengeRecord, FactorRecord};

use crate::app::SharedApp;
use crate::caller::UserCaller;
use crate::error::AppError;
use crate::factors::webauthn;
use crate::limits::limit_per_minute;
use crate::risk::signals::{ActionRequest, UserHistory, action_signals};

/// What to open a challenge for, checked.
pub struct ChallengeRequest {
    /// A purpose name (unknown → `NOT_FOUND`).
    pub purpose: String,
    pub mode: ElevationMode,
    /// Lowercase hex SHA-256 of the exact action (see [`parse_digest`]).
    pub action_digest: Option<String>,
    /// At most [`MAX_ACTION_SUMMARY`] characters.
    pub action_summary: Option<String>,
}

/// Longest action summary, in characters.
pub const MAX_ACTION_SUMMARY: usize = 200;

/// A challenge ready to be answered.
pub struct OpenChallenge {
    pub record: ChallengeRecord,
    /// The purpose's title.
    pub title: String,
    /// The user's factors that may answer (strong enough, not blocked).
    pub allowed_factors: Vec<String>,
    pub policy_version: i64,
    /// The risk of this action on this session now.
    pub risk: Risk,
}

impl OpenChallenge {
    /// The assertion options a passkey answers with, when one may.
    pub fn webauthn_options(&self) -> Option<serde_json::Value> {
        options_of(&self.record)
    }

    pub fn attempts_left(&self) -> u32 {
        u32::try_from(self.record.max_attempts - self.record.failures).unwrap_or(0)
    }
}

/// The page-secret scope of the hosted step-up page (see [`stepup_url`]).
pub const PAGE_SCOPE: &str = "stepup";

/// The hosted step-up page of challenge `id`. The link carries the challenge's page
/// secret (derived from the secrets key, never stored), so it works in any browser and
/// on any node, and for this one challenge only.
pub fn stepup_url(app: &crate::app::App, id: &str) -> String {
    format!(
        "{}/stepup/{id}?secret={}",
        app.config.public_url.trim_end_matches('/'),
        app.secrets.page_secret(PAGE_SCOPE, id)
    )
}

/// The routes that act on challenge `id`: where to have a code sent, when a factor
/// that is sent one may answer.
pub fn links_of(id: &str, allowed_factors: &[String]) -> Option<stepgate_api::ChallengeLinks> {
    allowed_factors
        .iter()
        .any(|f| f == FactorKind::EmailOtp.as_str())
        .then(|| stepgate_api::ChallengeLinks {
            send: format!("/v1/stepup/challenges/{id}/send"),
        })
}

/// The credential ids a challenge's passkey ceremony accepts (none without one): a
/// pending challenge is given back only while they are still the user's.
fn credentials_of(record: &ChallengeRecord) -> Vec<serde_json::Value> {
    options_of(record)
        .and_then(|o| o["publicKey"]["allowCredentials"].as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .map(|c| c["id"].clone())
        .collect()
}

/// A challenge's stored WebAuthn assertion options, as JSON.
pub fn options_of(record: &ChallengeRecord) -> Option<serde_json::Value> {
    record
        .webauthn_options
        .as_deref()
        .and_then(|o| serde_json::from_str(o).ok())
}

/// Checks an RP-supplied action digest: 64 hex digits (SHA-256), kept lowercase.
pub fn parse_digest(raw: Option<String>) -> Result<Option<String>, AppError> {
    match raw {
        None => Ok(None),
        Some(d) if d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(Some(d.to_ascii_lowercase()))
        }
        Some(_) => Err(AppError::validation(
            "action_digest must be 64 hex digits (SHA-256)",
        )),
    }
}

/// The user's active factor kinds, each once, in the order they are offered.
fn active_kinds(factors: &[FactorRecord]) -> Vec<FactorKind> {
    FactorKind::offered(
        factors
            .iter()
            .filter(|f| f.status == FactorStatus::Active)
            .map(|f| f.kind),
    )
}

pub(crate) async fn window_exhausted(
    app: &SharedApp,
    user_id: &str,
    kind: FactorKind,
    now: i64,
) -> Result<bool, AppError> {
    let since = now - app.limits.window_seconds;
    let failures = app
        .store
        .stepup_failures_since(user_id, kind.as_str(), since)
        .await?;
    Ok(app
        .limits
        .window_exhausted(u32::try_from(failures).unwrap_or(u32::MAX)))
}

/// Opens a challenge for `request.purpose` on the caller's session, or returns the one
/// already pending for the same step-up (also used when a route answers
/// `STEPUP_REQUIRED` with a ready challenge).
pub async fn open(
    app: &SharedApp,
    caller: &UserCaller,
    ip: IpAddr,
    request: ChallengeRequest,
) -> Result<OpenChallenge, AppError> {
    let now = app.now();
    let purpose = app.policy.purpose(&request.purpose).ok_or_else(|| {
        AppError::new(
            ErrorCode::NotFound,
            format!("no purpose named {:?}", request.purpose),
        )
    })?;
    let snapshot = app.policy.current(&app.store).await?;
    let requirement = app.policy.requirement(&snapshot, purpose);
    requirement.issuable()?;
    let event = AuditEvent {
        user_id: Some(caller.session.user_id.clone()),
        session_id: Some(caller.session.id.clone()),
        purpose: Some(purpose.name.as_str().to_owned()),
        ip: Some(ip.to_string()),
        policy_version: Some(snapshot.version),
        ..AuditEvent::new(EventType::AccountStepupChallengeRequested, now)
    };
    let factors = app.store.factors_of_user(&caller.session.user_id).await?;
    let user_id = &caller.session.user_id;
    let allowed =
        answerable_factors(app, user_id, &factors, purpose, &requirement, &event, now).await?;
    let assertion = if allowed.iter().any(|k| k == FactorKind::Webauthn.as_str()) {
        webauthn::assertion_for(app, &factors)?
    } else {
        None
    };
    let (webauthn_options, webauthn_state) = assertion.unzip();
    let risk = action_risk(app, caller, ip, purpose, now).await?;
    let mode = request.mode;
    let record = ChallengeRecord {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: caller.session.user_id.clone(),
        session_id: Some(caller.session.id.clone()),
        purpose: purpose.name.as_str().to_owned(),
        policy_version: snapshot.version,
        factor_class: requirement.factor.as_str().to_owned(),
        ttl_seconds: requirement.ttl_seconds,
        single_use: requirement.single_use,
        bind_ip: requirement.bind_ip,
        approvals: i64::from(requirement.approvals),
        mode,
        status: ChallengeStatus::Pending.as_str().to_owned(),
        failures: 0,
        max_attempts: i64::from(app.limits.max_attempts),
        created_at: now,
        expires_at: now + app.limits.challenge_ttl_seconds,
        action_digest: request.action_digest,
        action_summary: request.action_summary,
        login_context: None,
        webauthn_options,
        webauthn_state,
        collected_at: None,
        ip: Some(ip.to_string()),
    };
    let event = AuditEvent {
        challenge_id: Some(record.id.clone()),
        data: Some(serde_json::json!({ "mode": mode.as_str(), "risk": risk }).to_string()),
        ..event
    };
    Ok(OpenChallenge {
        record: store_or_reuse(app, caller, record, &event, now).await?,
        title: purpose.title.clone(),
        allowed_factors: allowed,
        policy_version: snapshot.version,
        risk,
    })
}

/// Where a factor of each kind is enrolled.
const ENROLL_TOTP: &str = "/v1/factors/totp";
const ENROLL_WEBAUTHN: &str = "/v1/factors/webauthn/registrations";
const ENROLL_EMAIL: &str = "/v1/factors/email";

/// The user's factors that may answer: active, strong enough for the requirement, and
/// not blocked by their failure budget. None at all, or none strong enough (a
/// phishing-resistant purpose and no passkey), is `STEPUP_REQUIRED` naming what to
/// enroll; all strong ones blocked is `STEPUP_BLOCKED`, audited with `event`'s subject.
async fn answerable_factors(
    app: &SharedApp,
    user_id: &str,
    factors: &[FactorRecord],
    purpose: &Purpose,
    requirement: &Requirement,
    event: &AuditEvent,
    now: i64,
) -> Result<Vec<String>, AppError> {
    let active = active_kinds(factors);
    let strong_enough: Vec<FactorKind> = active
        .iter()
        .copied()
        .filter(|k| k.class().satisfies(requirement.factor))
        .collect();
    if strong_enough.is_empty() {
        let (detail, enroll) = if requirement.factor == FactorClass::PhishingResistant {
            (
                "this purpose needs a passkey or security key: enroll one first",
                vec![ENROLL_WEBAUTHN],
            )
        } else {
            (
                "enroll a second factor first: this purpose needs a step-up and you have none",
                vec![ENROLL_WEBAUTHN, ENROLL_TOTP, ENROLL_EMAIL],
            )
        };
        return Err(AppError::new(ErrorCode::StepupRequired, detail)
            .with("purpose", purpose.name.as_str())
            .with("enrollment_required", true)
            .with("factor", requirement.factor.as_str())
            .with("enroll", serde_json::json!(enroll)));
    }
    let mut allowed = Vec::new();
    for kind in &strong_enough {
        if !window_exhausted(app, user_id, *kind, now).await? {
            allowed.push(kind.as_str().to_owned());
        }
    }
    if allowed.is_empty() {
        app.store
            .append_audit(&AuditEvent {
                kind: EventType::AccountStepupBlocked,
                data: Some(r#"{"reason":"failure budget exhausted"}"#.into()),
                ..event.clone()
            })
            .await?;
        return Err(AppError::new(
            ErrorCode::StepupBlocked,
            "too many wrong step-up answers recently; try again later",
        ));
    }
    Ok(allowed)
}

/// The risk of this action on the caller's session now.
async fn action_risk(
    app: &SharedApp,
    caller: &UserCaller,
    ip: IpAddr,
    purpose: &Purpose,
    now: i64,
) -> Result<Risk, AppError> {
    let history = UserHistory::load(app, &caller.session).await?;
    let ip_text = ip.to_string();
    let request = ActionRequest {
        ip: Some((ip, &ip_text)),
        device_fingerprint: None,
    };
    let sensitivity =
        (purpose.sensitivity > 0).then(|| (purpose.name.as_str().to_owned(), purpose.sensitivity));
    let signals = action_signals(app, &caller.session, &history, request, sensitivity, now);
    Ok(crate::risk::shown(&stepgate_core::risk::assess(
        &signals, &app.risk, now,
    )))
}

/// Stores a new challenge (`event` records it), within the per-session and per-user
/// limits, unless the same step-up is already pending: a retried request, or a proxy
/// asking on every hit, gets that challenge back, with nothing stored and its attempts
/// not renewed. It must still be open for half its life, so the user can finish.
async fn store_or_reuse(
    app: &SharedApp,
    caller: &UserCaller,
    record: ChallengeRecord,
    event: &AuditEvent,
    now: i64,
) -> Result<ChallengeRecord, AppError> {
    let open_until = now + app.limits.challenge_ttl_seconds / 2;
    if let Some(pending) = app.store.pending_challenge(&record, open_until).await?
        && credentials_of(&pending) == credentials_of(&record)
    {
        return Ok(pending);
    }
    let limits = &app.config.rate_limits;
    limit_per_minute(
        app,
        &format!("challenge-session:{}", caller.session.id),
        limits.challenges_per_session_per_minute,
        "this session opens step-up challenges too fast; slow down",
    )
    .await?;
    limit_per_minute(
        app,
        &format!("challenge-user:{}", caller.session.user_id),
        limits.challenges_per_user_per_minute,
        "this user opens step-up challenges too fast; slow down",
    )
    .await?;
    app.store.insert_challenge(&record, event).await?;
    Ok(record)
}
