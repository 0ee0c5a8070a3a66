//! Elevations once won: their tokens, relying on them for an action (checked against
//! the use, used up atomically, reuse raised as a critical event), redeeming, listing
//! and revoking them. The decision path, redeem and the factor routes all rely on
//! elevations through here.

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use stepgate_api::DpopProof;
use stepgate_core::audit::EventType;
use stepgate_core::stepup::{self, Use};
use stepgate_core::{Error, ErrorCode};
use stepgate_store::{AuditEvent, ElevationRecord};

use crate::app::SharedApp;
use crate::caller::UserCaller;
use crate::error::AppError;

const TOKEN_PREFIX: &str = "sge_";

fn corrupt(e: Error) -> AppError {
    AppError::internal(format!("corrupt elevation: {e}"))
}

pub(crate) fn new_elevation_token() -> Result<String, AppError> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| AppError::internal("random source failed"))?;
    Ok(format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// Only this hash is stored; the token carries 256 random bits.
pub(crate) fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The stored hash of a well-formed elevation token, or `STEPUP_TOKEN_INVALID`.
pub(crate) fn parse_elevation_token(raw: &str) -> Result<Vec<u8>, AppError> {
    let ok = raw
        .strip_prefix(TOKEN_PREFIX)
        .and_then(|b| URL_SAFE_NO_PAD.decode(b).ok())
        .is_some_and(|bytes| bytes.len() == 32);
    if ok {
        Ok(token_hash(raw))
    } else {
        Err(AppError::new(
            ErrorCode::StepupTokenInvalid,
            "the elevation token is malformed",
        ))
    }
}

/// Relies on an elevation for one use: checks it against the use and uses it up
/// atomically if single-use. A second use of a single-use elevation is answered
/// `STEPUP_TOKEN_REUSED` and raises the critical `ACCOUNT_STEPUP_REUSED` event.
pub(crate) async fn rely_on(
    app: &SharedApp,
    record: &ElevationRecord,
    use_: &Use<'_>,
    now: i64,
) -> Result<(), AppError> {
    rely_on_all(app, &[(record, *use_)], now)
        .await
        .map_err(|(_, e)| e)
}

/// Relies on several elevations for one action, all or none: each is checked against
/// its use, then all are used in one transaction. On failure, the index of the
/// elevation that failed and why; then none was used.
pub(crate) async fn rely_on_all(
    app: &SharedApp,
    uses: &[(&ElevationRecord, Use<'_>)],
    now: i64,
) -> Result<(), (usize, AppError)> {
    if uses.is_empty() {
        // An allow that relies on no elevation uses nothing.
        return Ok(());
    }
    let at = |i: usize| move |e: AppError| (i, e);
    for (i, (record, use_)) in uses.iter().enumerate() {
        let session_live = app
            .store
            .session(&record.session_id)
            .await
            .map_err(|e| (i, e.into()))?
            .is_some_and(|s| s.to_domain().is_live(now));
        if !session_live {
            return Err((
                i,
                AppError::new(
                    ErrorCode::StepupTokenInvalid,
                    "the session that stepped up has ended",
                ),
            ));
        }
        let elevation = record.to_domain().map_err(corrupt).map_err(at(i))?;
        if let Err(e) = elevation.check_use(use_, now) {
            return Err((i, refusal(app, record, use_, e, now).await));
        }
    }
    let events: Vec<AuditEvent> = uses
        .iter()
        .map(|(record, use_)| event(record, use_.ip, EventType::AccountStepupRedeemed, now))
        .collect();
    let batch: Vec<(&str, &AuditEvent)> = uses
        .iter()
        .zip(&events)
        .map(|((record, _), event)| (record.id.as_str(), event))
        .collect();
    let failed = app
        .store
        .use_elevations(&batch, now)
        .await
        .map_err(|e| (0, e.into()))?;
    for (record, _) in uses {
        app.decider.forget_session(&record.session_id);
    }
    let Some(i) = failed else {
        return Ok(());
    };
    // Lost the race, or it changed meanwhile: say which.
    let (record, use_) = &uses[i];
    let fresh = app
        .store
        .elevation(&record.id)
        .await
        .map_err(|e| (i, e.into()))?
        .ok_or_else(|| {
            (
                i,
                AppError::new(ErrorCode::StepupTokenInvalid, "unknown elevation"),
            )
        })?
        .to_domain()
        .map_err(corrupt)
        .map_err(at(i))?;
    let why = match fresh.check_use(use_, now) {
        Err(e) => e,
        Ok(()) => stepup::reused(),
    };
    Err((i, refusal(app, record, use_, why, now).await))
}

fn event(record: &ElevationRecord, ip: Option<&str>, kind: EventType, now: i64) -> AuditEvent {
    AuditEvent {
        user_id: Some(record.user_id.clone()),
        session_id: Some(record.session_id.clone()),
        purpose: Some(record.purpose.clone()),
        ip: ip.map(str::to_owned),
        factor: Some(record.factor.clone()),
        policy_version: Some(record.policy_version),
        challenge_id: Some(record.challenge_id.clone()),
        elevation_id: Some(record.id.clone()),
        ..AuditEvent::new(kind, now)
    }
}

/// The answer to a refused use. A reuse of a single-use elevation raises the critical
/// `ACCOUNT_STEPUP_REUSED` event first.
async fn refusal(
    app: &SharedApp,
    record: &ElevationRecord,
    use_: &Use<'_>,
    why: Error,
    now: i64,
) -> AppError {
    if why.code != ErrorCode::StepupTokenReused {
        return why.into();
    }
    tracing::warn!(elevation_id = %record.id, user_id = %record.user_id, "single-use elevation presented again");
    let critical = AuditEvent {
        data: Some(r#"{"severity":"critical"}"#.into()),
        ..event(record, use_.ip, EventType::AccountStepupReused, now)
    };
    match app.store.append_audit(&critical).await {
        Ok(()) => why.into(),
        Err(e) => e.into(),
    }
}

/// Whether a presented elevation may serve this caller: it must have been won in the
/// caller's own session, and one bound to a DPoP key needs a caller who proved that
/// key on this request (`caller_jkt`, the key the caller's access token is bound to
/// and whose proof was checked).
pub(crate) fn check_holder(
    record: &ElevationRecord,
    session_id: &str,
    caller_jkt: Option<&str>,
) -> Result<(), AppError> {
    if record.session_id != session_id {
        return Err(AppError::new(
            ErrorCode::StepupTokenInvalid,
            "the elevation token belongs to another session",
        ));
    }
    match &record.jkt {
        Some(jkt) if caller_jkt != Some(jkt.as_str()) => Err(AppError::new(
            ErrorCode::StepupTokenInvalid,
            "this elevation is bound to a DPoP key: present it with a proof from that key",
        )),
        _ => Ok(()),
    }
}

/// An elevation bound to a DPoP key is only good with a fresh proof from that key,
/// bound to the elevation token (`ath`), relayed by the RP.
async fn prove_elevation_key(
    app: &SharedApp,
    jkt: &str,
    token: &str,
    proof: Option<&DpopProof>,
    now: i64,
) -> Result<(), AppError> {
    let refuse = |why: String| {
        AppError::new(
            ErrorCode::StepupTokenInvalid,
            format!("this elevation is bound to a DPoP key: {why}"),
        )
    };
    let proof = proof.ok_or_else(|| refuse("relay the user's DPoP proof".into()))?;
    let checked =
        crate::dpop::verify_for_token(&proof.proof, &proof.method, &proof.url, now, token, jkt)
            .map_err(refuse)?;
    if !crate::dpop::spend_proof(app, &checked).await? {
        return Err(refuse("the proof was used before".into()));
    }
    Ok(())
}

/// A relying party's redeem: the token the user presented and the use it is for.
pub struct RedeemRequest {
    pub elevation_token: String,
    pub purpose: String,
    /// The end user's IP as the RP sees it.
    pub ip: Option<IpAddr>,
    /// The action's digest (lowercase hex), checked by the caller.
    pub action_digest: Option<String>,
    pub dpop: Option<DpopProof>,
}

/// Redeems an elevation token for one use (the RP's backend, just before the action):
/// the token's key proven if it is bound to one, then [`rely_on`]. Returns the
/// elevation as it was won.
pub async fn redeem(app: &SharedApp, req: RedeemRequest) -> Result<ElevationRecord, AppError> {
    let now = app.now();
    let hash = parse_elevation_token(&req.elevation_token)?;
    let record = app
        .store
        .elevation_by_token_hash(&hash)
        .await?
        .ok_or_else(|| AppError::new(ErrorCode::StepupTokenInvalid, "unknown elevation token"))?;
    if let Some(jkt) = &record.jkt {
        prove_elevation_key(app, jkt, &req.elevation_token, req.dpop.as_ref(), now).await?;
    }
    let ip = req.ip.map(|ip| ip.to_canonical().to_string());
    let use_ = Use {
        purpose: &req.purpose,
        ip: ip.as_deref(),
        action_digest: req.action_digest.as_deref(),
    };
    rely_on(app, &record, &use_, now).await?;
    Ok(record)
}

/// A live elevation as its user sees it.
pub struct LiveElevation {
    pub record: ElevationRecord,
    /// 1 for an unused single-use elevation; `None` for multi-use.
    pub uses_left: Option<u32>,
    /// The user agent of the session that stepped up.
    pub device: Option<String>,
    /// It belongs to the asking session.
    pub current_session: bool,
}

/// The caller's live elevations, across all their sessions.
pub async fn list(app: &SharedApp, caller: &UserCaller) -> Result<Vec<LiveElevation>, AppError> {
    let now = app.now();
    let mut live = Vec::new();
    for record in app
        .store
        .live_elevations_of_user(&caller.session.user_id, now)
        .await?
    {
        let device = app
            .store
            .session(&record.session_id)
            .await?
            .and_then(|s| s.user_agent);
        live.push(LiveElevation {
            uses_left: record.to_domain().map_err(corrupt)?.uses_left(),
            current_session: record.session_id == caller.session.id,
            device,
            record,
        });
    }
    Ok(live)
}

/// Who ends an elevation early: its user (only their own), a relying party's backend,
/// or an admin in the console (any; their user id is recorded).
pub enum Revoker<'a> {
    User(&'a UserCaller),
    Service,
    Admin(&'a str),
}

/// Revokes a live elevation (`ACCOUNT_STEPUP_REVOKED`). Another user's elevation is as
/// unknown as one that does not exist.
pub async fn revoke(
    app: &SharedApp,
    by: Revoker<'_>,
    ip: IpAddr,
    elevation_id: &str,
) -> Result<(), AppError> {
    let now = app.now();
    let not_found = || AppError::new(ErrorCode::NotFound, "no live elevation with this id");
    let record = app
        .store
        .elevation(elevation_id)
        .await?
        .ok_or_else(not_found)?;
    if let Revoker::User(user) = by
        && user.session.user_id != record.user_id
    {
        return Err(not_found());
    }
    let data = match by {
        Revoker::User(_) => serde_json::json!({ "by": "user" }),
        Revoker::Service => serde_json::json!({ "by": "service" }),
        Revoker::Admin(admin) => serde_json::json!({ "by": "admin", "admin_user_id": admin }),
    };
    let ip = ip.to_string();
    let event = AuditEvent {
        data: Some(data.to_string()),
        ..event(&record, Some(&ip), EventType::AccountStepupRevoked, now)
    };
    let revoked = app.store.revoke_elevation(&record.id, now, &event).await?;
    app.decider.forget_session(&record.session_id);
    if revoked { Ok(()) } else { Err(not_found()) }
}
