//! Answering a challenge: the answer's shape, the factor, one of the challenge's
//! attempts and a place in the failure budget reserved before the code is compared,
//! then the challenge completed (an elevation, or for a login challenge the session)
//! and the code spent in one transaction.

use std::net::IpAddr;

use stepgate_api::LoginResponse;
use stepgate_core::ErrorCode;
use stepgate_core::audit::EventType;
use stepgate_core::factor::{FactorKind, FactorStatus, Proof};
use stepgate_core::stepup::{Challenge, ElevationMode};
use stepgate_store::{
    ActionCompletion, AuditEvent, ChallengeRecord, Completion, DeviceRecord, ElevationRecord,
    FactorRecord, FailureOutcome, LoginCompletion, Reserved, SessionRecord, SpentCode,
};

use crate::app::SharedApp;
use crate::caller::UserCaller;
use crate::error::AppError;
use crate::limits::rate_limit;
use crate::login::{PendingLogin, login_record, login_succeeded, new_session, session_granted};
use crate::stepup::elevations::{new_elevation_token, token_hash};
use crate::stepup::proofs::{Answer, check_answer};
use crate::tokens::{AccessClaims, Confirmation};

/// An answer as the caller sent it; its shape is checked in [`answer`]'s order.
pub struct AnswerRequest {
    /// `totp`, `recovery_code` or `webauthn`.
    pub factor: String,
    pub code: Option<String>,
    /// `webauthn`: the browser's assertion.
    pub credential: Option<serde_json::Value>,
}

/// Who answers a challenge.
pub enum Answerer {
    /// An API caller: an action challenge answers only to its own session's access
    /// token, a login challenge to whoever holds its id. The answer carries what the
    /// challenge yields.
    Api(Option<Box<UserCaller>>),
    /// The hosted step-up page, its page secret checked by `http/`: it answers for the
    /// challenge's own session, possibly on another device. The answer carries no
    /// token; the asking side collects them once ([`collect`](super::collect)).
    Page,
}

/// What a passed challenge yields.
pub enum Passed {
    /// An action challenge: the elevation, its token (token mode, shown once) or a fresh
    /// `su` access token (session mode); neither when passed on the page.
    Elevation {
        record: Box<ElevationRecord>,
        token: Option<String>,
        access_token: Option<String>,
    },
    /// A login challenge: the new session's first token (none when passed on the
    /// page).
    Login(Option<Box<LoginResponse>>),
}

fn corrupt(e: stepgate_core::Error) -> AppError {
    AppError::internal(format!("corrupt row: {e}"))
}

/// Answers challenge `id`. Checks, in order: the challenge is the caller's and live,
/// the factor is strong enough, the code has the factor's shape, the user has that
/// factor (nothing is counted when any of these fails), then the code.
pub async fn answer(
    app: &SharedApp,
    answerer: Answerer,
    ip: IpAddr,
    id: &str,
    body: AnswerRequest,
) -> Result<Passed, AppError> {
    rate_limit(app, "verify", ip, app.config.rate_limits.verify_per_minute).await?;
    let now = app.now();
    let Checked {
        record,
        challenge,
        kind,
        answer,
        factor,
        completing,
    } = check(app, answerer, id, body, now).await?;
    let event = |kind_name: EventType| AuditEvent {
        user_id: Some(challenge.user_id.clone()),
        session_id: challenge.session_id.clone(),
        purpose: Some(challenge.purpose.as_str().to_owned()),
        ip: Some(ip.to_string()),
        factor: Some(kind.as_str().to_owned()),
        policy_version: Some(challenge.policy_version),
        challenge_id: Some(challenge.id.clone()),
        ..AuditEvent::new(kind_name, now)
    };
    let reservation = uuid::Uuid::new_v4().to_string();
    reserve(
        app,
        &challenge,
        kind,
        &reservation,
        &event(EventType::AccountStepupBlocked),
        now,
    )
    .await?;
    let attempt = Attempt {
        app,
        challenge: &challenge,
        reservation: &reservation,
        failed: event(EventType::AccountStepupFailed),
        blocked: event(EventType::AccountStepupBlocked),
        now,
    };
    let right = match check_answer(app, &record, &factor, &answer, now).await {
        Ok(Ok(right)) => right,
        Ok(Err(wrong)) => {
            let mut e = attempt.failed().await;
            if let (ErrorCode::StepupFailed, Some(why)) = (e.code, wrong) {
                e.detail = why.into();
            }
            return Err(e);
        }
        Err(e) => {
            release(app, &challenge.id, &reservation).await;
            return Err(e);
        }
    };
    let proof = right.proof(kind);
    // The code is spent by the transaction that completes the challenge, not before.
    let code = right.code(&factor.id, now);
    let verified = event(EventType::AccountStepupVerified);
    match completing {
        Completing::Login { pending, via_page } => {
            let passed = PassedLogin {
                pending: *pending,
                proof,
                via_page,
            };
            complete_login(app, &record, passed, code, verified, attempt).await
        }
        Completing::Action { asker, token } => {
            // On the page (perhaps a phone on another network) the elevation is bound
            // to the network that asked, not to the page's.
            let bound_ip = match (&asker.caller, &record.ip) {
                (None, Some(asked_from)) => asked_from.clone(),
                _ => ip.to_string(),
            };
            let passed = PassedAction {
                asker: &asker,
                token,
                proof,
                bound_ip,
            };
            complete_action(app, passed, code, verified, attempt).await
        }
    }
}

/// An answer that passed every check that counts nothing.
struct Checked {
    record: ChallengeRecord,
    challenge: Challenge,
    kind: FactorKind,
    answer: Answer,
    /// The user's active factor of that kind.
    factor: FactorRecord,
    completing: Completing,
}

/// The checks made before an attempt is counted: the challenge is the caller's and
/// live, the factor is strong enough, the code has the factor's shape, the user has
/// that factor; and what can fail on our side (a login's pending state, a new token).
async fn check(
    app: &SharedApp,
    answerer: Answerer,
    id: &str,
    body: AnswerRequest,
    now: i64,
) -> Result<Checked, AppError> {
    let record = app.store.challenge(id).await?.ok_or_else(not_found)?;
    let asker = admitted(app, &record, answerer).await?;
    let challenge = record.to_domain().map_err(corrupt)?;
    challenge.check_live(now)?;
    challenge.requirement.issuable()?;
    let kind = FactorKind::parse(&body.factor)?;
    challenge.check_factor(kind.class())?;
    let answer = Answer::parse(kind, body.code, body.credential)?;
    let factor = app
        .store
        .factors_of_user(&challenge.user_id)
        .await?
        .into_iter()
        .find(|f| f.status == FactorStatus::Active && f.kind == kind && answer.names(f))
        .ok_or_else(|| match &answer {
            Answer::Webauthn(_) => AppError::new(
                ErrorCode::StepupFactorInsufficient,
                "this passkey is not registered to your account",
            ),
            _ => AppError::new(
                ErrorCode::StepupFactorInsufficient,
                format!("you have no active {} factor", kind.as_str()),
            ),
        })?;
    let completing = match asker {
        Asker::Login { via_page } => Completing::Login {
            pending: Box::new(pending_login(&record)?),
            via_page,
        },
        Asker::Session(asker) => Completing::Action {
            // On the page the token is made when it is collected, never before.
            token: (challenge.mode == ElevationMode::Token && asker.caller.is_some())
                .then(new_elevation_token)
                .transpose()?,
            asker,
        },
    };
    Ok(Checked {
        record,
        challenge,
        kind,
        answer,
        factor,
        completing,
    })
}

fn not_found() -> AppError {
    AppError::new(ErrorCode::NotFound, "no such challenge for this session")
}

/// The side a challenge was opened for, as an answer reaches it.
pub(crate) enum Asker {
    /// A login challenge (no session yet).
    Login { via_page: bool },
    /// An action challenge's session: its access token's caller when answered over the
    /// API, none on the page.
    Session(Box<AskingSession>),
}

/// An action challenge answers only to its own session: over the API to its access
/// token, on the page (secret checked) for that session while it is live. A login
/// challenge (no session yet) answers to whoever holds its id, which only the
/// password's owner was given.
pub(crate) async fn admitted(
    app: &SharedApp,
    record: &ChallengeRecord,
    answerer: Answerer,
) -> Result<Asker, AppError> {
    match (&record.session_id, answerer) {
        (Some(sid), Answerer::Api(Some(caller))) if *sid == caller.session.id => {
            Ok(Asker::Session(Box::new(AskingSession {
                session: caller.session.clone(),
                caller: Some(caller),
            })))
        }
        (Some(_), Answerer::Api(Some(_))) => Err(not_found()),
        (Some(_), Answerer::Api(None)) => Err(AppError::unauthenticated(
            "this challenge needs the access token of its session",
        )),
        (Some(sid), Answerer::Page) => {
            let now = app.now();
            let session = app
                .store
                .session(sid)
                .await?
                .filter(|s| s.revoked_at.is_none() && s.expires_at > now)
                .ok_or_else(|| {
                    AppError::new(
                        ErrorCode::ChallengeExpired,
                        "the session that asked for this step-up has ended",
                    )
                })?;
            Ok(Asker::Session(Box::new(AskingSession {
                caller: None,
                session,
            })))
        }
        (None, answerer) => Ok(Asker::Login {
            via_page: matches!(answerer, Answerer::Page),
        }),
    }
}

/// The session an action challenge elevates.
pub(crate) struct AskingSession {
    /// Over the API: the caller, whose answer carries the tokens.
    caller: Option<Box<UserCaller>>,
    session: SessionRecord,
}

/// Takes one of the challenge's attempts and a place in the user's failure budget for
/// this factor before the code is compared, so that concurrent answers (to this
/// challenge or across challenges) cannot overrun either; a right answer gives both
/// back.
async fn reserve(
    app: &SharedApp,
    challenge: &Challenge,
    kind: FactorKind,
    reservation: &str,
    blocked: &AuditEvent,
    now: i64,
) -> Result<(), AppError> {
    let reserved = app
        .store
        .reserve_stepup_attempt(
            &stepgate_store::StepupAttempt {
                user_id: &challenge.user_id,
                factor: kind.as_str(),
                purpose: challenge.purpose.as_str(),
                at: now,
            },
            &challenge.id,
            now - app.limits.window_seconds,
            i64::from(app.limits.window_failures),
            reservation,
        )
        .await?;
    match reserved {
        Reserved::Reserved => Ok(()),
        Reserved::ChallengeSpent => {
            // Expired, completed or out of attempts meanwhile: say which, as of now.
            let fresh = app
                .store
                .challenge(&challenge.id)
                .await?
                .ok_or_else(not_found)?;
            fresh.to_domain().map_err(corrupt)?.check_live(now)?;
            Err(AppError::new(
                ErrorCode::Conflict,
                "every attempt left on this challenge is being checked; try again in a moment",
            ))
        }
        Reserved::BudgetSpent => {
            app.store.append_audit(blocked).await?;
            Err(AppError::new(
                ErrorCode::StepupBlocked,
                "too many wrong answers with this factor recently; try again later",
            ))
        }
    }
}

/// A right answer to an action challenge, before its elevation exists.
struct PassedAction<'a> {
    asker: &'a AskingSession,
    /// Token mode: the elevation token to hand out (its hash is stored).
    token: Option<String>,
    proof: Proof,
    /// The IP an IP-bound elevation is bound to.
    bound_ip: String,
}

/// A passed action challenge: the elevation is stored and the code spent in the
/// transaction that completes the challenge; session mode also signs an `su` token.
async fn complete_action(
    app: &SharedApp,
    passed: PassedAction<'_>,
    code: SpentCode<'_>,
    verified: AuditEvent,
    attempt: Attempt<'_>,
) -> Result<Passed, AppError> {
    let (challenge, now) = (attempt.challenge, attempt.now);
    let PassedAction {
        asker,
        token,
        proof,
        bound_ip,
    } = passed;
    let session = &asker.session;
    let elevation = ElevationRecord {
        id: uuid::Uuid::new_v4().to_string(),
        token_hash: token.as_deref().map(token_hash),
        challenge_id: challenge.id.clone(),
        policy_version: challenge.policy_version,
        user_id: challenge.user_id.clone(),
        session_id: session.id.clone(),
        purpose: challenge.purpose.as_str().to_owned(),
        factor: proof.kind.as_str().to_owned(),
        factor_class: proof.class().as_str().to_owned(),
        mode: challenge.mode,
        created_at: now,
        expires_at: challenge.elevation_expiry(now),
        ip: challenge.requirement.bind_ip.then_some(bound_ip),
        single_use: challenge.requirement.single_use,
        consumed_at: None,
        revoked_at: None,
        action_digest: challenge.action_digest.clone(),
        jkt: session.jkt.clone(),
    };
    let verified = AuditEvent {
        elevation_id: Some(elevation.id.clone()),
        data: Some(
            serde_json::json!({ "mode": elevation.mode, "expires_at": elevation.expires_at })
                .to_string(),
        ),
        ..verified
    };
    let completion = app
        .store
        .complete_challenge(
            &challenge.id,
            now,
            code,
            ActionCompletion {
                reservation: attempt.reservation,
                elevation: &elevation,
                audit: &verified,
                collected: asker.caller.is_some(),
            },
        )
        .await;
    app.decider.forget_session(&session.id);
    attempt.settle(completion).await?;
    let access_token = match (challenge.mode, &asker.caller) {
        (ElevationMode::Session, Some(_)) => Some(su_token(app, session, &elevation, proof, now)?),
        _ => None,
    };
    Ok(Passed::Elevation {
        record: Box::new(elevation),
        token,
        access_token,
    })
}

/// Session mode: a fresh access token for the session announcing the elevation
/// (`su: true`), living no longer than the elevation.
pub(crate) fn su_token(
    app: &SharedApp,
    session: &SessionRecord,
    elevation: &ElevationRecord,
    proof: Proof,
    now: i64,
) -> Result<String, AppError> {
    let mut amr = vec!["pwd".to_owned()];
    amr.extend(proof.amr().iter().map(|m| (*m).to_owned()));
    Ok(app.tokens.sign(&AccessClaims {
        iss: app.tokens.issuer().to_owned(),
        sub: session.user_id.clone(),
        sid: session.id.clone(),
        iat: now,
        exp: app
            .lifetimes
            .access_token_expiry(now, session.expires_at)
            .min(elevation.expires_at),
        auth_time: session.auth_time,
        acr: proof.acr().into(),
        amr,
        su: Some(true),
        su_time: Some(now),
        su_purpose: Some(elevation.purpose.clone()),
        cnf: Confirmation::of(session.jkt.as_ref()),
    })?)
}

enum Completing {
    Login {
        pending: Box<PendingLogin>,
        via_page: bool,
    },
    Action {
        asker: Box<AskingSession>,
        token: Option<String>,
    },
}

/// The login a login challenge holds until it is passed.
pub(crate) fn pending_login(record: &ChallengeRecord) -> Result<PendingLogin, AppError> {
    record
        .login_context
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok())
        .ok_or_else(|| AppError::internal("login challenge without its pending login"))
}

/// A right answer to a login challenge, before its session exists.
struct PassedLogin {
    pending: PendingLogin,
    proof: Proof,
    via_page: bool,
}

/// A passed login challenge: the pending login becomes a session, its device is
/// remembered (a login that completed a step-up from it), and an API answer carries
/// the session's access token.
async fn complete_login(
    app: &SharedApp,
    record: &ChallengeRecord,
    passed: PassedLogin,
    code: SpentCode<'_>,
    verified: AuditEvent,
    attempt: Attempt<'_>,
) -> Result<Passed, AppError> {
    let PassedLogin {
        pending,
        proof,
        via_page,
    } = passed;
    let now = attempt.now;
    let session = new_session(app, &pending, Some(proof), now);
    let device = pending.device_hash.as_ref().map(|hash| DeviceRecord {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: pending.user_id.clone(),
        device_hash: hash.clone(),
        trust: crate::dpop::trust_of(hash),
        user_agent: pending.user_agent.clone(),
        created_at: now,
        last_seen_at: now,
    });
    let mut events = vec![AuditEvent {
        session_id: Some(session.id.clone()),
        ..verified
    }];
    if device.is_some() {
        events.push(device_remembered(
            &pending.user_id,
            &session.id,
            &pending.ip,
            now,
        ));
    }
    events.push(login_succeeded(&pending, &session, now));
    let completion = app
        .store
        .complete_login_challenge(
            &record.id,
            now,
            code,
            LoginCompletion {
                reservation: attempt.reservation,
                session: &session,
                login: &login_record(&pending, now),
                device: device.as_ref(),
                audit: &events,
                collected: !via_page,
            },
        )
        .await;
    attempt.settle(completion).await?;
    if via_page {
        return Ok(Passed::Login(None));
    }
    Ok(Passed::Login(Some(Box::new(session_granted(
        app,
        &session,
        pending.risk,
        now,
    )?))))
}

fn device_remembered(user_id: &str, session_id: &str, ip: &str, now: i64) -> AuditEvent {
    AuditEvent {
        user_id: Some(user_id.to_owned()),
        session_id: Some(session_id.to_owned()),
        ip: Some(ip.to_owned()),
        ..AuditEvent::new(EventType::DeviceRemembered, now)
    }
}

/// One answer to a challenge, holding a place in the failure budget until it is
/// settled: given back when the answer completes the challenge (in the completing
/// transaction) or finds it closed, confirmed as a failure when the answer was wrong (a
/// code never issued or already spent is wrong).
struct Attempt<'a> {
    app: &'a SharedApp,
    challenge: &'a Challenge,
    reservation: &'a str,
    failed: AuditEvent,
    blocked: AuditEvent,
    now: i64,
}

impl Attempt<'_> {
    /// Counts a wrong answer and names the outcome: `STEPUP_FAILED` with the attempts
    /// left, or, if the challenge stopped being answerable meanwhile, why.
    async fn failed(self) -> AppError {
        let Self {
            app,
            challenge,
            reservation,
            failed,
            blocked,
            now,
        } = self;
        match app
            .store
            .record_stepup_failure(&challenge.id, reservation, &failed, &blocked)
            .await
        {
            Ok(FailureOutcome::Counted(failures)) => {
                let left = i64::from(challenge.max_attempts)
                    .saturating_sub(failures)
                    .max(0);
                let mut e = AppError::new(ErrorCode::StepupFailed, "the code is not valid");
                e.extensions.insert("attempts_left".into(), left.into());
                e
            }
            Ok(FailureOutcome::NotPending) => match app.store.challenge(&challenge.id).await {
                Ok(Some(fresh)) => match fresh.to_domain().map(|c| c.check_live(now)) {
                    Ok(Err(e)) => e.into(),
                    _ => AppError::new(
                        ErrorCode::ChallengeExpired,
                        "this challenge is no longer open",
                    ),
                },
                Ok(None) => AppError::new(ErrorCode::NotFound, "no such challenge"),
                Err(e) => e.into(),
            },
            Err(e) => e.into(),
        }
    }

    /// Settles a right answer by how the completing transaction ended.
    async fn settle(
        self,
        completion: Result<Completion, stepgate_store::StoreError>,
    ) -> Result<(), AppError> {
        match completion {
            // The completing transaction gave the place back.
            Ok(Completion::Completed) => Ok(()),
            Ok(Completion::CodeRefused) => Err(self.failed().await),
            Ok(Completion::ChallengeClosed) => {
                release(self.app, &self.challenge.id, self.reservation).await;
                Err(AppError::new(
                    ErrorCode::ChallengeExpired,
                    "this challenge was completed, closed or expired meanwhile",
                ))
            }
            Err(e) => {
                release(self.app, &self.challenge.id, self.reservation).await;
                Err(e.into())
            }
        }
    }
}

/// Gives a reserved place in the failure budget back. If this fails the place stays
/// taken until the window passes: the safe direction.
async fn release(app: &SharedApp, challenge_id: &str, reservation: &str) {
    if let Err(e) = app
        .store
        .release_stepup_attempt(challenge_id, reservation)
        .await
    {
        tracing::warn!(error = %e, "releasing a step-up reservation failed");
    }
}
