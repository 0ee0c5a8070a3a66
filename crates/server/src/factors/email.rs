//! Email one-time codes: enrolling an address (confirmed by a code sent to it) and
//! sending a code for a challenge, an explicit step never taken on a challenge's
//! opening. Codes have `email.code_digits` digits, live `email.code_ttl_seconds`, are
//! stored as keyed hashes, one live code per challenge (sending again replaces it), and
//! are rate limited per user and per address. The mail is sent before anything is
//! stored and outside any transaction: a failed send stores no usable code and is
//! answered `EMAIL_NOT_SENT`.

use std::net::IpAddr;

use sha2::{Digest, Sha256};
use stepgate_api::{CodeSent, EmailEnrollment, Factor};
use stepgate_core::ErrorCode;
use stepgate_core::factor::{EmailCode, FactorKind, FactorStatus};
use stepgate_core::identity::Email;
use stepgate_store::{EmailCodeRecord, FactorRecord};
use subtle::ConstantTimeEq;

use super::{
    Presented, enrolled_event, first_factor_codes, guard_enrollment, pending_factor, random_bytes,
    refuse_a_second, shown,
};
use crate::app::SharedApp;
use crate::caller::UserCaller;
use crate::devices::remember_session_device;
use crate::error::AppError;
use crate::limits::{limit_per_minute, rate_limit};
use crate::stepup::answers::{Answerer, admitted};
use crate::stepup::challenges::window_exhausted;
use crate::time_format::rfc3339;

/// Tries a pending address's confirmation code takes before it must be sent again.
const MAX_CONFIRM_TRIES: i64 = 5;

/// Enrolls `email` for the caller: a code is sent to it, and the factor is stored,
/// pending, once the mail server took the mail. Adding it beside another factor is a
/// step-up (`factors:enroll`), asked here once.
pub async fn enroll(
    app: &SharedApp,
    caller: &UserCaller,
    ip: IpAddr,
    presented: Option<Presented<'_>>,
    email: &str,
) -> Result<EmailEnrollment, AppError> {
    let address = deliverable(email)?;
    let user_id = &caller.session.user_id;
    let existing = app.store.factors_of_user(user_id).await?;
    refuse_a_second(&existing, FactorKind::EmailOtp, "an email address")?;
    check_send_limits(app, user_id, &address).await?;
    // The step-up last: a refusal above leaves its elevation unspent.
    guard_enrollment(app, caller, ip, presented, &existing, "an email address").await?;
    let id = uuid::Uuid::new_v4().to_string();
    let code = send_code(app, &address, "Confirm your email address").await?;
    let now = app.now();
    let factor = FactorRecord {
        secret: Some(app.secrets.seal(&id, address.as_str().as_bytes())?),
        id: id.clone(),
        user_id: user_id.clone(),
        kind: FactorKind::EmailOtp,
        status: FactorStatus::Pending,
        last_step: None,
        created_at: now,
        confirmed_at: None,
        name: Some(address.masked()),
        last_used_at: None,
        credential: None,
    };
    let record = code_record(app, &id, &id, &code, now);
    app.store.insert_email_factor(&factor, &record).await?;
    Ok(EmailEnrollment {
        factor_id: id,
        sent_to: address.masked(),
        expires_at: rfc3339(record.expires_at),
    })
}

/// Confirms pending email factor `id` with the code sent to it. A user's first factor
/// comes with a first set of recovery codes.
pub async fn confirm(
    app: &SharedApp,
    caller: &UserCaller,
    ip: IpAddr,
    id: &str,
    code: &str,
) -> Result<Factor, AppError> {
    let code = EmailCode::parse(code)?;
    let factor = pending_factor(
        app,
        caller,
        id,
        (FactorKind::EmailOtp, "email"),
        "this address",
    )
    .await?;
    let now = app.now();
    let hash = confirmation_code(app, id, &code, now).await?;
    let recovery = first_factor_codes(app, caller, now).await?;
    let mut events = vec![enrolled_event(caller, ip, FactorKind::EmailOtp, id, now)];
    events.extend(recovery.iter().map(|c| c.event(caller, ip, now)));
    let confirmed = app
        .store
        .confirm_email_factor(
            id,
            &hash,
            now,
            MAX_CONFIRM_TRIES,
            recovery.as_ref().map(|c| (&c.factor, c.hashes.as_slice())),
            &events,
        )
        .await?;
    if !confirmed {
        return Err(AppError::new(
            ErrorCode::Conflict,
            "this address was confirmed, or its code spent, meanwhile",
        ));
    }
    remember_session_device(app, caller, &ip.to_string(), now).await?;
    let mut shown = shown(
        FactorRecord {
            status: FactorStatus::Active,
            confirmed_at: Some(now),
            ..factor
        },
        None,
    );
    shown.recovery_codes = recovery.map(|c| c.codes);
    Ok(shown)
}

/// The hash of `code` if it is pending factor `id`'s live confirmation code. Each try
/// is taken in the store before the code is compared.
async fn confirmation_code(
    app: &SharedApp,
    id: &str,
    code: &EmailCode,
    now: i64,
) -> Result<Vec<u8>, AppError> {
    let (stored, tries) = app
        .store
        .take_email_code_try(id, now, MAX_CONFIRM_TRIES)
        .await?
        .ok_or_else(|| {
            AppError::new(
                ErrorCode::ChallengeExpired,
                "the code expired or was tried too often: enroll the address again for a new one",
            )
        })?;
    let hash = app.secrets.email_code_hash(id, code.as_str());
    if !bool::from(hash.ct_eq(&stored)) {
        return Err(AppError::validation("the code does not match")
            .with("attempts_left", (MAX_CONFIRM_TRIES - tries).max(0)));
    }
    Ok(hash)
}

/// Sends a code for challenge `challenge_id` to the user's email address (the
/// challenge's session, or for a login challenge whoever holds its id). Sending again
/// replaces the earlier code.
pub async fn send_for_challenge(
    app: &SharedApp,
    answerer: Answerer,
    ip: IpAddr,
    challenge_id: &str,
    factor: &str,
) -> Result<CodeSent, AppError> {
    rate_limit(app, "verify", ip, app.config.rate_limits.verify_per_minute).await?;
    if FactorKind::parse(factor)? != FactorKind::EmailOtp {
        return Err(AppError::validation("only email_otp codes are sent"));
    }
    let not_found = || AppError::new(ErrorCode::NotFound, "no such challenge for this session");
    let record = app
        .store
        .challenge(challenge_id)
        .await?
        .ok_or_else(not_found)?;
    admitted(app, &record, answerer).await?;
    let challenge = record
        .to_domain()
        .map_err(|e| AppError::internal(format!("corrupt challenge: {e}")))?;
    let now = app.now();
    challenge.check_live(now)?;
    challenge.check_factor(FactorKind::EmailOtp.class())?;
    let factor = app
        .store
        .factors_of_user(&record.user_id)
        .await?
        .into_iter()
        .find(|f| f.kind == FactorKind::EmailOtp && f.status == FactorStatus::Active)
        .ok_or_else(|| {
            AppError::new(
                ErrorCode::StepupFactorInsufficient,
                "you have no email address enrolled",
            )
        })?;
    if window_exhausted(app, &record.user_id, FactorKind::EmailOtp, now).await? {
        return Err(AppError::new(
            ErrorCode::StepupBlocked,
            "too many wrong email codes recently; try again later",
        ));
    }
    let address = address_of(app, &factor)?;
    check_send_limits(app, &record.user_id, &address).await?;
    let code = send_code(app, &address, "Your sign-in code").await?;
    let now = app.now();
    let stored = code_record(app, &record.id, &factor.id, &code, now);
    app.store.put_email_code(&stored).await?;
    Ok(CodeSent {
        factor: FactorKind::EmailOtp.as_str().into(),
        sent_to: address.masked(),
        expires_at: rfc3339(stored.expires_at),
    })
}

/// The live code of challenge `challenge_id` sent to `factor`, if `code` is it: the hash
/// that completing the challenge spends.
pub async fn matching_code(
    app: &SharedApp,
    challenge_id: &str,
    factor: &FactorRecord,
    code: &EmailCode,
    now: i64,
) -> Result<Option<Vec<u8>>, AppError> {
    let hash = app.secrets.email_code_hash(challenge_id, code.as_str());
    let live = app
        .store
        .email_code(challenge_id)
        .await?
        .filter(|c| c.factor_id == factor.id && c.used_at.is_none() && c.expires_at > now);
    Ok(live
        .filter(|c| bool::from(hash.ct_eq(&c.code_hash)))
        .map(|_| hash))
}

/// An address as given, checked to be a bare address a mail server takes (no display
/// name, no comment), in the form mail will be sent to.
fn deliverable(raw: &str) -> Result<Email, AppError> {
    let email = Email::parse(raw)?;
    let address: lettre::Address = raw
        .parse()
        .map_err(|_| AppError::validation("email is not an address mail can be sent to"))?;
    if address.to_string() != raw {
        return Err(AppError::validation(
            "email must be a bare address, name@domain",
        ));
    }
    Ok(email)
}

fn address_of(app: &SharedApp, factor: &FactorRecord) -> Result<Email, AppError> {
    let sealed = factor
        .secret
        .as_deref()
        .ok_or_else(|| AppError::internal("email factor without its address"))?;
    let plain = app.secrets.open(&factor.id, sealed)?;
    let text = String::from_utf8(plain).map_err(AppError::internal)?;
    Ok(Email::parse(&text)?)
}

fn code_record(
    app: &SharedApp,
    owner: &str,
    factor_id: &str,
    code: &str,
    now: i64,
) -> EmailCodeRecord {
    EmailCodeRecord {
        owner: owner.to_owned(),
        factor_id: factor_id.to_owned(),
        code_hash: app.secrets.email_code_hash(owner, code),
        sent_at: now,
        expires_at: now + app.config.email.code_ttl_seconds,
        failures: 0,
        used_at: None,
    }
}

/// Counts a code about to be sent against the per-user and per-address limits.
async fn check_send_limits(
    app: &SharedApp,
    user_id: &str,
    address: &Email,
) -> Result<(), AppError> {
    let limits = &app.config.email;
    limit_per_minute(
        app,
        &format!("email-user:{user_id}"),
        limits.sends_per_user_per_minute,
        "too many codes sent to this user; wait a minute",
    )
    .await?;
    let address_key = hex::encode(Sha256::digest(address.as_str().to_lowercase().as_bytes()));
    limit_per_minute(
        app,
        &format!("email-address:{address_key}"),
        limits.sends_per_address_per_minute,
        "too many codes sent to this address; wait a minute",
    )
    .await
}

/// Makes a code and mails it to `address`; returns it once the mail server took it.
async fn send_code(app: &SharedApp, address: &Email, subject: &str) -> Result<String, AppError> {
    let limits = &app.config.email;
    let code = new_code(usize::from(limits.code_digits))?;
    let minutes = (limits.code_ttl_seconds + 59) / 60;
    let body = format!(
        "Your stepgate code is {code}\r\n\r\nIt works once, for {minutes} minutes. If you did not \
         ask for it, someone else may know your password: change it.\r\n"
    );
    app.mail
        .send(address.as_str(), subject, body)
        .await
        .map_err(|why| {
            tracing::warn!(error = %why, "an email code could not be sent");
            AppError::new(
                ErrorCode::EmailNotSent,
                "the mail server did not take the mail, so no code was sent or stored; try again later",
            )
        })?;
    Ok(code)
}

/// `digits` random decimal digits.
fn new_code(digits: usize) -> Result<String, AppError> {
    let modulus = 10u64.pow(u32::try_from(digits).unwrap_or(6));
    // The bias of reducing 64 random bits modulo at most 10^8 is below 10^-10.
    let n = u64::from_le_bytes(random_bytes::<8>()?) % modulus;
    Ok(format!("{n:0digits$}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_their_length_in_digits() {
        for digits in 6..=8 {
            let code = new_code(digits).unwrap();
            assert_eq!(code.len(), digits);
            assert!(code.bytes().all(|b| b.is_ascii_digit()));
        }
    }
}
