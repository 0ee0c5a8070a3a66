//! Second factors below HTTP: enrolling TOTP (confirmed by a code) and recovery codes,
//! listing and removing factors, and the step-up that guards those changes. WebAuthn
//! credentials are in [`webauthn`].

pub mod email;
pub mod webauthn;

use std::net::IpAddr;

use data_encoding::BASE32_NOPAD;
use stepgate_api::{DecisionKind, Factor, FactorList, FactorsReset, RecoveryCodes, TotpEnrollment};
use stepgate_core::ErrorCode;
use stepgate_core::audit::EventType;
use stepgate_core::factor::{FactorKind, FactorStatus, TotpCode, totp_matching_step};
use stepgate_core::stepup::ElevationMode;
use stepgate_store::{AuditEvent, ElevationRecord, FactorRecord};

use crate::app::SharedApp;
use crate::caller::UserCaller;
use crate::config::{FACTORS_DELETE, FACTORS_ENROLL};
use crate::decisions::{Ask, Question, decide_for};
use crate::devices::remember_session_device;
use crate::error::AppError;
use crate::time_format::rfc3339;

const RECOVERY_CODES: usize = 10;

/// An elevation token the caller presented with the request (`Err`: it was not text).
pub type Presented<'a> = Result<&'a str, ()>;

/// Crockford base32: no i, l, o, u, so codes read aloud unambiguously.
pub const RECOVERY_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Lowercases, drops separators and maps look-alikes; None unless 10 valid characters.
pub fn normalize_recovery_code(raw: &str) -> Option<String> {
    let normalized: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_lowercase() {
            'o' => '0',
            'i' | 'l' => '1',
            other => other,
        })
        .collect();
    (normalized.len() == 10 && normalized.bytes().all(|b| RECOVERY_ALPHABET.contains(&b)))
        .then_some(normalized)
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
    kind: FactorKind,
    factor_id: &str,
    now: i64,
) -> AuditEvent {
    AuditEvent {
        user_id: Some(caller.session.user_id.clone()),
        session_id: Some(caller.session.id.clone()),
        ip: Some(ip.to_string()),
        factor: Some(kind.as_str().to_owned()),
        data: Some(serde_json::json!({ "factor_id": factor_id }).to_string()),
        ..AuditEvent::new(EventType::FactorEnrolled, now)
    }
}

pub async fn enroll_totp(
    app: &SharedApp,
    caller: &UserCaller,
    ip: IpAddr,
    presented: Option<Presented<'_>>,
) -> Result<TotpEnrollment, AppError> {
    let now = app.now();
    let existing = app.store.factors_of_user(&caller.session.user_id).await?;
    refuse_a_second(&existing, FactorKind::Totp, "an authenticator")?;
    guard_enrollment(
        app,
        caller,
        ip,
        presented,
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
            kind: FactorKind::Totp,
            status: FactorStatus::Pending,
            secret: Some(app.secrets.seal(&id, &secret)?),
            last_step: None,
            created_at: now,
            confirmed_at: None,
            name: None,
            last_used_at: None,
            credential: None,
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
    Ok(TotpEnrollment {
        factor_id: id,
        secret: encoded,
        otpauth_uri: uri,
        qr_svg,
    })
}

pub async fn confirm_totp(
    app: &SharedApp,
    caller: &UserCaller,
    ip: IpAddr,
    id: &str,
    code: &str,
) -> Result<Factor, AppError> {
    let now = app.now();
    let factor = pending_factor(app, caller, id, (FactorKind::Totp, "TOTP"), "this factor").await?;
    let code = TotpCode::parse(code)?;
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
    let recovery = first_factor_codes(app, caller, now).await?;
    let event = enrolled_event(caller, ip, FactorKind::Totp, &factor.id, now);
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
    if let Some(new) = &recovery {
        app.store
            .replace_recovery_codes(&new.factor, &new.hashes, &new.event(caller, ip, now))
            .await?;
    }
    remember_session_device(app, caller, &ip.to_string(), now).await?;
    let mut confirmed = shown(
        FactorRecord {
            status: FactorStatus::Active,
            confirmed_at: Some(now),
            ..factor
        },
        None,
    );
    confirmed.recovery_codes = recovery.map(|c| c.codes);
    Ok(confirmed)
}

/// A new set of recovery codes: the factor, the codes' keyed hashes (stored) and the
/// codes themselves (shown once).
pub(crate) struct NewRecoveryCodes {
    pub factor: FactorRecord,
    pub hashes: Vec<Vec<u8>>,
    pub codes: Vec<String>,
}

impl NewRecoveryCodes {
    /// Their `FACTOR_ENROLLED` event.
    pub(crate) fn event(&self, caller: &UserCaller, ip: IpAddr, now: i64) -> AuditEvent {
        enrolled_event(caller, ip, FactorKind::RecoveryCode, &self.factor.id, now)
    }
}

/// A first factor comes with recovery codes, so nobody steps up just to get them: a set
/// for the caller (not yet stored) when they have no active factor, else none.
pub(crate) async fn first_factor_codes(
    app: &SharedApp,
    caller: &UserCaller,
    now: i64,
) -> Result<Option<NewRecoveryCodes>, AppError> {
    let factors = app.store.factors_of_user(&caller.session.user_id).await?;
    if factors.iter().any(|f| f.status == FactorStatus::Active) {
        return Ok(None);
    }
    first_recovery_codes(app, caller, now).map(Some)
}

/// The caller's pending factor `id` of `kind`, called `name` (`NOT_FOUND` for another
/// user's or another kind; `CONFLICT`, calling it `what`, once it is confirmed).
pub(crate) async fn pending_factor(
    app: &SharedApp,
    caller: &UserCaller,
    id: &str,
    (kind, name): (FactorKind, &str),
    what: &str,
) -> Result<FactorRecord, AppError> {
    let factor = app
        .store
        .factor(id)
        .await?
        .filter(|f| f.user_id == caller.session.user_id && f.kind == kind)
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, format!("no such {name} factor")))?;
    if factor.status != FactorStatus::Pending {
        return Err(AppError::new(
            ErrorCode::Conflict,
            format!("{what} is already confirmed"),
        ));
    }
    Ok(factor)
}

/// Makes a set of recovery codes for the caller (not yet stored).
pub(crate) fn first_recovery_codes(
    app: &SharedApp,
    caller: &UserCaller,
    now: i64,
) -> Result<NewRecoveryCodes, AppError> {
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    let mut hashes = Vec::with_capacity(RECOVERY_CODES);
    while codes.len() < RECOVERY_CODES {
        let raw: String = random_bytes::<10>()?
            .iter()
            .map(|b| RECOVERY_ALPHABET[usize::from(b & 31)] as char)
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
        kind: FactorKind::RecoveryCode,
        status: FactorStatus::Active,
        secret: None,
        last_step: None,
        created_at: now,
        confirmed_at: Some(now),
        name: None,
        last_used_at: None,
        credential: None,
    };
    Ok(NewRecoveryCodes {
        factor,
        hashes,
        codes,
    })
}

pub async fn create_recovery_codes(
    app: &SharedApp,
    caller: &UserCaller,
    ip: IpAddr,
    presented: Option<Presented<'_>>,
) -> Result<RecoveryCodes, AppError> {
    let now = app.now();
    let existing = app.store.factors_of_user(&caller.session.user_id).await?;
    guard_enrollment(app, caller, ip, presented, &existing, "recovery codes").await?;
    let new = first_recovery_codes(app, caller, now)?;
    let event = enrolled_event(caller, ip, FactorKind::RecoveryCode, &new.factor.id, now);
    app.store
        .replace_recovery_codes(&new.factor, &new.hashes, &event)
        .await?;
    remember_session_device(app, caller, &ip.to_string(), now).await?;
    Ok(RecoveryCodes {
        factor_id: new.factor.id,
        codes: new.codes,
    })
}

/// A factor as its user sees it (never its secret).
pub(crate) fn shown(f: FactorRecord, codes_left: Option<i64>) -> Factor {
    Factor {
        factor_id: f.id,
        kind: f.kind.as_str().to_owned(),
        status: f.status.as_str().to_owned(),
        name: f.name,
        created_at: rfc3339(f.created_at),
        confirmed_at: f.confirmed_at.map(rfc3339),
        last_used_at: f.last_used_at.map(rfc3339),
        hardware_bound: f.credential.map(|c| !c.backup_eligible),
        codes_left,
        recovery_codes: None,
    }
}

pub async fn list(app: &SharedApp, caller: &UserCaller) -> Result<FactorList, AppError> {
    let mut factors = Vec::new();
    for f in app.store.factors_of_user(&caller.session.user_id).await? {
        let codes_left = if f.kind == FactorKind::RecoveryCode {
            Some(app.store.recovery_codes_left(&f.id).await?)
        } else {
            None
        };
        factors.push(shown(f, codes_left));
    }
    Ok(FactorList { factors })
}

pub async fn delete(
    app: &SharedApp,
    caller: &UserCaller,
    ip: IpAddr,
    presented: Option<Presented<'_>>,
    id: &str,
) -> Result<(), AppError> {
    let now = app.now();
    let not_found = || AppError::new(ErrorCode::NotFound, "no such factor");
    let factor = app
        .store
        .factor(id)
        .await?
        .filter(|f| f.user_id == caller.session.user_id)
        .ok_or_else(not_found)?;
    let ip_text = ip.to_string();
    let summary = format!("Remove your {} factor", factor.kind.as_str());
    let elevation = require_elevation(app, caller, ip, presented, FACTORS_DELETE, summary).await?;
    let event = AuditEvent {
        user_id: Some(caller.session.user_id.clone()),
        session_id: Some(caller.session.id.clone()),
        purpose: Some(FACTORS_DELETE.into()),
        ip: Some(ip_text),
        factor: Some(factor.kind.as_str().to_owned()),
        policy_version: Some(elevation.policy_version),
        elevation_id: Some(elevation.id.clone()),
        data: Some(serde_json::json!({ "factor_id": factor.id }).to_string()),
        ..AuditEvent::new(EventType::FactorRemoved, now)
    };
    if app
        .store
        .delete_factor(&factor.id, &caller.session.user_id, &event)
        .await?
    {
        Ok(())
    } else {
        Err(not_found())
    }
}

/// An admin's reset of user `user_id`'s factors (they lost every authenticator): all
/// factors go, their sessions and elevations end, audited as critical (`FACTORS_RESET`,
/// by admin key `by`). They sign in again with the password and enroll anew.
pub async fn reset(app: &SharedApp, user_id: &str, by: &str) -> Result<FactorsReset, AppError> {
    let now = app.now();
    app.store
        .user_by_id(user_id)
        .await?
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, "no such user"))?;
    let event = AuditEvent {
        user_id: Some(user_id.to_owned()),
        data: Some(serde_json::json!({ "severity": "critical", "by": by }).to_string()),
        ..AuditEvent::new(EventType::FactorsReset, now)
    };
    let (removed, sessions) = app.store.reset_factors(user_id, now, &event).await?;
    for session in &sessions {
        app.decider.forget_session(session);
    }
    tracing::warn!(
        user_id,
        by,
        removed,
        "an admin reset every factor of a user"
    );
    Ok(FactorsReset {
        factors_removed: removed,
        sessions_ended: sessions.len() as u64,
    })
}

/// Uses up an elevation for `purpose` held by the caller: the token in the
/// `Stepgate-Elevation` header, or a session-mode elevation of the calling session.
/// Without one the answer is `STEPUP_REQUIRED` with a ready session-mode challenge.
pub async fn require_elevation(
    app: &SharedApp,
    caller: &UserCaller,
    ip: IpAddr,
    presented: Option<Presented<'_>>,
    purpose: &str,
    summary: String,
) -> Result<ElevationRecord, AppError> {
    let elevation_token = match presented {
        Some(value) => Some(
            value
                .map_err(|()| {
                    AppError::new(
                        ErrorCode::StepupTokenInvalid,
                        "the elevation token is malformed",
                    )
                })?
                .to_owned(),
        ),
        None => None,
    };
    let ask = Ask {
        question: Question::Purpose(purpose.to_owned()),
        ip: Some(ip),
        device_fingerprint: None,
        elevation_token,
        action_digest: None,
        challenge_mode: ElevationMode::Session,
        action_summary: Some(summary),
        elevation_for_question: true,
    };
    let decided = decide_for(app, &caller.claims, &ask).await?;
    if let Some(refusal) = decided.unanswerable {
        return Err(refusal);
    }
    match (decided.answer.decision, decided.relied.into_iter().next()) {
        (DecisionKind::Allow, Some(elevation)) => Ok(elevation),
        (_, _) => {
            let answer = decided.answer;
            let mut refusal = AppError::new(
                ErrorCode::StepupRequired,
                "this change to your factors needs a step-up",
            )
            .with("purpose", purpose);
            if let Some(id) = answer.challenge_id {
                refusal = refusal.with("challenge_id", id);
            }
            if let Some(options) = answer.webauthn_options {
                refusal = refusal.with("webauthn_options", options);
            }
            if let Some(links) = answer.links {
                refusal = refusal.with("links", serde_json::json!(links));
            }
            if let Some(url) = answer.stepup_url {
                refusal = refusal.with("stepup_url", url);
            }
            Err(refusal.with(
                "allowed_factors",
                answer.allowed_factors.unwrap_or_default(),
            ))
        }
    }
}

/// One active factor of `kind` per user (TOTP, email): another is `CONFLICT`.
fn refuse_a_second(
    existing: &[FactorRecord],
    kind: FactorKind,
    what: &str,
) -> Result<(), AppError> {
    if existing
        .iter()
        .any(|f| f.status == FactorStatus::Active && f.kind == kind)
    {
        return Err(AppError::new(
            ErrorCode::Conflict,
            format!("{what} is already enrolled; remove it first"),
        ));
    }
    Ok(())
}

/// Adding a factor when one exists is itself a step-up (`factors:enroll`): otherwise a
/// password-only session could plant its own authenticator. The first factor needs none.
async fn guard_enrollment(
    app: &SharedApp,
    caller: &UserCaller,
    ip: IpAddr,
    presented: Option<Presented<'_>>,
    factors: &[FactorRecord],
    what: &str,
) -> Result<(), AppError> {
    if factors.iter().any(|f| f.status == FactorStatus::Active) {
        require_elevation(
            app,
            caller,
            ip,
            presented,
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

    #[test]
    fn recovery_codes_normalize_forgivingly_but_strictly() {
        assert_eq!(
            normalize_recovery_code("ABCDE-FGH0J").as_deref(),
            Some("abcdefgh0j")
        );
        assert_eq!(
            normalize_recovery_code(" abcde fghoj ").as_deref(),
            Some("abcdefgh0j")
        );
        assert!(normalize_recovery_code("abcde").is_none());
        assert!(normalize_recovery_code("abcde-fghu1").is_none());
    }
}
