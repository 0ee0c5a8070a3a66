//! What an answer to a challenge proves: its checked shape for each factor (a TOTP or
//! email code, a recovery code, a WebAuthn assertion), and whether it is right, with
//! what completing the challenge will spend. Nothing here counts or spends anything.

use stepgate_core::ErrorCode;
use stepgate_core::audit::EventType;
use stepgate_core::factor::{EmailCode, FactorKind, Proof, TotpCode, totp_matching_step};
use stepgate_store::{AuditEvent, ChallengeRecord, FactorRecord, SpentCode};
use webauthn_rs::prelude::WebauthnError;

use crate::app::SharedApp;
use crate::error::AppError;
use crate::factors::email;
use crate::factors::webauthn::{self, Assertion, refusal, verify_assertion};

/// A step-up answer in its checked shape.
pub(super) enum Answer {
    Totp(TotpCode),
    Recovery(String),
    Email(EmailCode),
    Webauthn(Box<Assertion>),
}

impl Answer {
    pub(super) fn parse(
        kind: FactorKind,
        code: Option<String>,
        credential: Option<serde_json::Value>,
    ) -> Result<Self, AppError> {
        if kind == FactorKind::Webauthn {
            return Ok(Self::Webauthn(Box::new(Assertion::parse(credential)?)));
        }
        let code = code.ok_or_else(|| AppError::validation("code is required"))?;
        match kind {
            FactorKind::Totp => Ok(Self::Totp(TotpCode::parse(&code)?)),
            FactorKind::EmailOtp => Ok(Self::Email(EmailCode::parse(&code)?)),
            FactorKind::RecoveryCode => crate::factors::normalize_recovery_code(&code)
                .map(Self::Recovery)
                .ok_or_else(|| AppError::validation("a recovery code is 10 letters and digits")),
            _ => Err(AppError::validation(format!(
                "{} cannot answer this challenge",
                kind.as_str()
            ))),
        }
    }

    /// Whether `factor` is the one this answer is for: a WebAuthn assertion names its
    /// credential; the user has one factor of each other kind.
    pub(super) fn names(&self, factor: &FactorRecord) -> bool {
        match self {
            Self::Webauthn(assertion) => factor
                .credential
                .as_ref()
                .is_some_and(|c| c.credential_id == assertion.credential_id),
            _ => true,
        }
    }
}

/// What an answer will spend when the challenge completes.
pub(super) enum RightAnswer {
    TotpStep(i64),
    RecoveryCode(Vec<u8>),
    /// The hash of the code sent for this challenge (`owner`).
    EmailCode {
        owner: String,
        hash: Vec<u8>,
    },
    /// The assertion's counter and backup state, and whether the credential is bound to
    /// its authenticator.
    Webauthn {
        counter: i64,
        backup_state: bool,
        hardware_bound: bool,
    },
}

impl RightAnswer {
    pub(super) fn code<'a>(&'a self, factor_id: &'a str, now: i64) -> SpentCode<'a> {
        match self {
            Self::TotpStep(step) => SpentCode::TotpStep {
                factor_id,
                step: *step,
                at: now,
            },
            Self::RecoveryCode(hash) => SpentCode::RecoveryCode {
                factor_id,
                code_hash: hash,
                at: now,
            },
            Self::EmailCode { owner, hash } => SpentCode::EmailCode {
                factor_id,
                owner,
                code_hash: hash,
                at: now,
            },
            Self::Webauthn {
                counter,
                backup_state,
                ..
            } => SpentCode::WebauthnCounter {
                factor_id,
                counter: *counter,
                backup_state: *backup_state,
                at: now,
            },
        }
    }

    /// What a right answer with a factor of `kind` proves.
    pub(super) fn proof(&self, kind: FactorKind) -> Proof {
        Proof {
            kind,
            hardware_bound: matches!(
                self,
                Self::Webauthn {
                    hardware_bound: true,
                    ..
                }
            ),
        }
    }
}

/// What the answer would spend, or `Err` when it is wrong on its face (a TOTP code of
/// no step in the window; an assertion that does not verify, with why). Whether the
/// code is still unspent (a recovery code issued and unused, a TOTP step after the last
/// accepted one, a counter above the last one) is decided once, by the transaction that
/// completes the challenge and spends it. An assertion without user verification is
/// too weak a factor: refused before anything is counted.
pub(super) async fn check_answer(
    app: &SharedApp,
    record: &ChallengeRecord,
    factor: &FactorRecord,
    answer: &Answer,
    now: i64,
) -> Result<Result<RightAnswer, Option<String>>, AppError> {
    Ok(match answer {
        Answer::Totp(code) => {
            let sealed = factor
                .secret
                .as_deref()
                .ok_or_else(|| AppError::internal("TOTP factor without a secret"))?;
            let secret = app.secrets.open(&factor.id, sealed)?;
            totp_matching_step(&secret, code, now)
                .map(|step| RightAnswer::TotpStep(step as i64))
                .ok_or(None)
        }
        Answer::Recovery(normalized) => Ok(RightAnswer::RecoveryCode(
            app.secrets.recovery_code_hash(normalized),
        )),
        Answer::Email(code) => email::matching_code(app, &record.id, factor, code, now)
            .await?
            .map(|hash| RightAnswer::EmailCode {
                owner: record.id.clone(),
                hash,
            })
            .ok_or(None),
        Answer::Webauthn(assertion) => check_assertion(app, record, factor, assertion, now).await?,
    })
}

/// A WebAuthn answer: the assertion verified against the challenge's ceremony, its
/// counter above the one last accepted (a counter going backwards may be a cloned
/// credential: refused and audited).
async fn check_assertion(
    app: &SharedApp,
    record: &ChallengeRecord,
    factor: &FactorRecord,
    assertion: &Assertion,
    now: i64,
) -> Result<Result<RightAnswer, Option<String>>, AppError> {
    let facts = factor
        .credential
        .as_ref()
        .ok_or_else(|| AppError::internal("WebAuthn factor without its credential"))?;
    let Some(state) = record.webauthn_state.as_deref() else {
        return Err(AppError::new(
            ErrorCode::StepupFactorInsufficient,
            "this challenge was opened before the passkey was registered: open a new one",
        ));
    };
    let result = match verify_assertion(app, state, assertion) {
        Ok(result) => result,
        Err(WebauthnError::UserNotVerified) => {
            return Err(AppError::new(
                ErrorCode::StepupFactorInsufficient,
                refusal(&WebauthnError::UserNotVerified),
            ));
        }
        Err(e @ WebauthnError::CredentialPossibleCompromise) => {
            counter_regressed(app, record, factor, None, now).await?;
            return Ok(Err(Some(refusal(&e))));
        }
        Err(WebauthnError::Configuration) => return Err(webauthn::unavailable()),
        Err(e) => return Ok(Err(Some(refusal(&e)))),
    };
    let counter = i64::from(result.counter());
    if (counter > 0 || facts.sign_count > 0) && counter <= facts.sign_count {
        counter_regressed(app, record, factor, Some(counter), now).await?;
        return Ok(Err(Some(refusal(
            &WebauthnError::CredentialPossibleCompromise,
        ))));
    }
    Ok(Ok(RightAnswer::Webauthn {
        counter,
        backup_state: result.backup_state(),
        hardware_bound: !facts.backup_eligible,
    }))
}

/// Audits a WebAuthn signature counter that did not rise.
async fn counter_regressed(
    app: &SharedApp,
    record: &ChallengeRecord,
    factor: &FactorRecord,
    counter: Option<i64>,
    now: i64,
) -> Result<(), AppError> {
    let stored = factor.credential.as_ref().map(|c| c.sign_count);
    app.store
        .append_audit(&AuditEvent {
            user_id: Some(record.user_id.clone()),
            session_id: record.session_id.clone(),
            purpose: Some(record.purpose.clone()),
            factor: Some(FactorKind::Webauthn.as_str().to_owned()),
            challenge_id: Some(record.id.clone()),
            data: Some(
                serde_json::json!({
                    "factor_id": factor.id, "counter": counter, "stored_counter": stored,
                })
                .to_string(),
            ),
            ..AuditEvent::new(EventType::FactorCounterRegressed, now)
        })
        .await?;
    Ok(())
}
