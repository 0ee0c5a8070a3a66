//! Step-up over HTTP: challenges, verification, elevations, redemption.

use std::net::IpAddr;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use stepgate_core::factor::{FactorKind, TotpCode, totp_matching_step};
use stepgate_core::session::acr;
use stepgate_core::stepup::{Challenge, ElevationMode, Use};
use stepgate_core::{Error, ErrorCode};
use stepgate_store::{
    AuditEvent, ChallengeRecord, Completion, DeviceRecord, ElevationRecord, FactorRecord,
    FailureOutcome, LoginCompletion, Reserved, SpentCode,
};
use utoipa::ToSchema;

use crate::app::SharedApp;
use crate::caller::UserCaller;
use crate::elevations::{
    new_elevation_token, parse_elevation_token, prove_elevation_key, rely_on, token_hash,
};
use crate::error::AppError;
use crate::http::error::Problem;
use crate::http::extract::{ApiJson, ApiPath, ClientIp, MaybeUser, ServiceCaller, UserOrService};
use crate::http::rfc3339;
use crate::limits::rate_limit;
use crate::login::{
    LoginResponse, PendingLogin, login_record, login_succeeded, new_session, session_granted,
};
use crate::risk::RiskView;
use crate::stepup::challenges::{
    self, ChallengeRequest, MAX_ACTION_SUMMARY, OpenChallenge, parse_digest,
};
use crate::tokens::{AccessClaims, Confirmation};

#[derive(Deserialize, ToSchema)]
pub struct NewChallenge {
    /// A purpose declared in the config, e.g. `admin:resources:delete`.
    #[schema(value_type = crate::http::openapi::schemas::Name)]
    pub purpose: String,
    /// `token` (default): the verify answer holds an elevation token for the RP to
    /// redeem. `session`: the elevation attaches to this session and the answer holds a
    /// fresh access token with `su: true`.
    #[schema(value_type = Option<crate::http::openapi::schemas::ModeName>)]
    pub mode: Option<String>,
    /// Hex SHA-256 of the exact action (e.g. method + path + body), computed by the RP:
    /// the elevation then redeems only for that digest.
    #[schema(value_type = Option<crate::http::openapi::schemas::Sha256Hex>)]
    pub action_digest: Option<String>,
    /// What the user is approving, in words, shown on the challenge (at most 200
    /// characters).
    #[schema(max_length = 200)]
    pub action_summary: Option<String>,
}

impl NewChallenge {
    fn checked(self) -> Result<ChallengeRequest, AppError> {
        if self
            .action_summary
            .as_ref()
            .is_some_and(|s| s.chars().count() > MAX_ACTION_SUMMARY)
        {
            return Err(AppError::validation(format!(
                "action_summary must be at most {MAX_ACTION_SUMMARY} characters"
            )));
        }
        Ok(ChallengeRequest {
            mode: ElevationMode::parse(self.mode.as_deref().unwrap_or("token"))?,
            action_digest: parse_digest(self.action_digest)?,
            action_summary: self.action_summary,
            purpose: self.purpose,
        })
    }
}

#[derive(Serialize, ToSchema)]
pub struct ChallengeView {
    pub challenge_id: String,
    pub purpose: String,
    /// The purpose in words a person understands.
    pub title: String,
    /// The factors this user has that the requirement allows and that are not blocked.
    pub allowed_factors: Vec<String>,
    /// The factor class required: `any` or `phishing_resistant`.
    pub factor: String,
    pub mode: String,
    pub expires_at: String,
    pub attempts_left: u32,
    pub policy_version: i64,
    pub action_summary: Option<String>,
    /// The risk of this action on this session now.
    pub risk: RiskView,
}

impl From<OpenChallenge> for ChallengeView {
    fn from(c: OpenChallenge) -> Self {
        let attempts_left = c.attempts_left();
        Self {
            challenge_id: c.record.id,
            purpose: c.record.purpose,
            title: c.title,
            allowed_factors: c.allowed_factors,
            factor: c.record.factor_class,
            mode: c.record.mode,
            expires_at: rfc3339(c.record.expires_at),
            attempts_left,
            policy_version: c.policy_version,
            action_summary: c.record.action_summary,
            risk: c.risk,
        }
    }
}

/// An answer to a challenge (its schema, with the code's shape for each factor, is
/// [`crate::http::openapi::schemas::ChallengeAnswer`]).
#[derive(Deserialize)]
pub struct VerifyChallenge {
    /// `totp` or `recovery_code`.
    pub factor: String,
    pub code: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Verified {
    pub elevation_id: String,
    /// Token mode: the opaque elevation token (shown once).
    pub elevation_token: Option<String>,
    /// Session mode: a fresh access token for this session with `su: true`.
    pub access_token: Option<String>,
    pub purpose: String,
    pub mode: String,
    pub expires_at: String,
    pub single_use: bool,
}

/// What a passed challenge yields: an elevation, or for a login challenge the session.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum VerifyAnswer {
    Elevation(Verified),
    Login(LoginResponse),
}

#[derive(Deserialize, ToSchema)]
pub struct Redeem {
    pub elevation_token: String,
    /// The purpose the RP is about to act on.
    #[schema(value_type = crate::http::openapi::schemas::Name)]
    pub purpose: String,
    /// The end user's IP as the RP sees it; required for IP-bound purposes.
    #[schema(value_type = Option<crate::http::openapi::schemas::IpText>)]
    pub ip: Option<String>,
    /// The action's digest, required if the challenge was bound to one.
    #[schema(value_type = Option<crate::http::openapi::schemas::Sha256Hex>)]
    pub action_digest: Option<String>,
    /// For an elevation bound to a DPoP key (its session logged in with one): the proof
    /// the user sent with the action, whose `ath` is the elevation token's hash.
    pub dpop: Option<crate::decisions::RelayedProof>,
}

#[derive(Serialize, ToSchema)]
pub struct Redeemed {
    pub elevation_id: String,
    pub user_id: String,
    pub session_id: String,
    pub purpose: String,
    pub factor: String,
    pub factor_class: String,
    /// When the step-up passed.
    pub verified_at: String,
    pub single_use: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ElevationView {
    pub elevation_id: String,
    pub purpose: String,
    pub session_id: String,
    pub mode: String,
    pub created_at: String,
    pub expires_at: String,
    /// 1 for an unused single-use elevation; null for multi-use.
    pub uses_left: Option<u32>,
    pub ip: Option<String>,
    /// The user agent of the session that stepped up.
    pub device: Option<String>,
    pub current_session: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ElevationList {
    pub elevations: Vec<ElevationView>,
}

fn corrupt(e: Error) -> AppError {
    AppError::internal(format!("corrupt row: {e}"))
}

/// Start a step-up for a purpose.
#[utoipa::path(post, path = "/v1/stepup/challenges", tag = "stepup", operation_id = "createChallenge",
    request_body = NewChallenge,
    responses(
        (status = 429, body = Problem, content_type = "application/problem+json", description = "RATE_LIMITED: challenges opened too fast for this session or user, with Retry-After"),
        (status = 201, body = ChallengeView),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "VALIDATION_FAILED"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "STEPUP_BLOCKED: failure budget exhausted"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "NOT_FOUND: no such purpose"),
    ),
    security(("access_token" = [])))]
pub async fn create(
    State(app): State<SharedApp>,
    caller: UserCaller,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<NewChallenge>,
) -> Result<(StatusCode, Json<ChallengeView>), AppError> {
    let opened = challenges::open(&app, &caller, ip, body.checked()?).await?;
    Ok((StatusCode::CREATED, Json(ChallengeView::from(opened))))
}

/// Answer a challenge. Checks, in order: the challenge is live, the factor is strong
/// enough, the code has the factor's shape, the user has that factor (nothing is
/// counted when any of these fails), then the code.
#[utoipa::path(post, path = "/v1/stepup/challenges/{id}/verify", tag = "stepup", operation_id = "verifyChallenge",
    params(("id" = String, Path, description = "The challenge id")),
    request_body = crate::http::openapi::schemas::ChallengeAnswer,
    responses(
        (status = 200, body = VerifyAnswer),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "STEPUP_FAILED, with attempts_left"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "RATE_LIMITED"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "STEPUP_FACTOR_INSUFFICIENT (too weak a factor, or one the user does not have) or STEPUP_BLOCKED"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "NOT_FOUND"),
        (status = 410, body = Problem, content_type = "application/problem+json", description = "CHALLENGE_EXPIRED"),
    ),
    security(("access_token" = [])))]
pub async fn verify(
    State(app): State<SharedApp>,
    MaybeUser(caller): MaybeUser,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<VerifyChallenge>,
) -> Result<Json<VerifyAnswer>, AppError> {
    rate_limit(&app, "verify", ip, app.config.rate_limits.verify_per_minute).await?;
    let now = app.now();
    let not_found = || AppError::new(ErrorCode::NotFound, "no such challenge for this session");
    let record = app.store.challenge(&id).await?.ok_or_else(not_found)?;
    // An action challenge answers only to its own session; a login challenge (no
    // session yet) to whoever holds its id, which only the password's owner was given.
    let caller = match (&record.session_id, caller) {
        (Some(sid), Some(caller)) if *sid == caller.session.id => Some(caller),
        (Some(_), Some(_)) => return Err(not_found()),
        (Some(_), None) => {
            return Err(AppError::unauthenticated(
                "this challenge needs the access token of its session",
            ));
        }
        (None, _) => None,
    };
    let challenge = record.to_domain().map_err(corrupt)?;
    challenge.check_live(now)?;
    challenge.requirement.issuable()?;
    let kind = FactorKind::parse(&body.factor)?;
    challenge.check_factor(kind.class(false))?;

    // The answer's shape is checked before anything is counted.
    let code = body
        .code
        .ok_or_else(|| AppError::validation("code is required"))?;
    let answer = match kind {
        FactorKind::Totp => Answer::Totp(TotpCode::parse(&code)?),
        FactorKind::RecoveryCode => Answer::Recovery(
            crate::factors::normalize_recovery_code(&code)
                .ok_or_else(|| AppError::validation("a recovery code is 10 letters and digits"))?,
        ),
        _ => {
            return Err(AppError::validation(format!(
                "{} cannot answer this challenge",
                kind.as_str()
            )));
        }
    };
    let factors = app.store.factors_of_user(&challenge.user_id).await?;
    let factor = factors
        .iter()
        .find(|f| f.status == "active" && f.kind == kind.as_str())
        .ok_or_else(|| {
            AppError::new(
                ErrorCode::StepupFactorInsufficient,
                format!("you have no active {} factor", kind.as_str()),
            )
        })?;
    let event = |kind_name: &'static str| AuditEvent {
        kind: kind_name,
        at: now,
        user_id: Some(challenge.user_id.clone()),
        session_id: challenge.session_id.clone(),
        purpose: Some(challenge.purpose.as_str().to_owned()),
        ip: Some(ip.to_string()),
        factor: Some(kind.as_str().to_owned()),
        policy_version: Some(challenge.policy_version),
        challenge_id: Some(challenge.id.clone()),
        ..Default::default()
    };
    // What can fail on our side is done before a place in the budget is taken.
    let completing = match caller {
        None => Completing::Login(Box::new(pending_login(&record)?)),
        Some(caller) => Completing::Action {
            token: (challenge.mode == ElevationMode::Token)
                .then(new_elevation_token)
                .transpose()?,
            caller: Box::new(caller),
        },
    };
    // The answer takes one of the challenge's attempts and a place in the user's
    // failure budget for this factor before it is checked, so that concurrent answers
    // (to this challenge or across challenges) cannot overrun either; a right answer
    // gives both back.
    let reservation = uuid::Uuid::new_v4().to_string();
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
            &reservation,
        )
        .await?;
    match reserved {
        Reserved::Reserved => {}
        Reserved::ChallengeSpent => {
            // Expired, completed or out of attempts meanwhile: say which, as of now.
            let fresh = app
                .store
                .challenge(&challenge.id)
                .await?
                .ok_or_else(not_found)?;
            fresh.to_domain().map_err(corrupt)?.check_live(now)?;
            return Err(AppError::new(
                ErrorCode::Conflict,
                "every attempt left on this challenge is being checked; try again in a moment",
            ));
        }
        Reserved::BudgetSpent => {
            app.store
                .append_audit(&event("ACCOUNT_STEPUP_BLOCKED"))
                .await?;
            return Err(AppError::new(
                ErrorCode::StepupBlocked,
                "too many wrong answers with this factor recently; try again later",
            ));
        }
    }
    let attempt = Attempt {
        app: &app,
        challenge: &challenge,
        reservation: &reservation,
        failed: event("ACCOUNT_STEPUP_FAILED"),
        blocked: event("ACCOUNT_STEPUP_BLOCKED"),
        now,
    };
    let right = match check_answer(&app, factor, &answer, now) {
        Ok(Some(right)) => right,
        Ok(None) => return Err(attempt.failed().await),
        Err(e) => {
            release(&app, &challenge.id, &reservation).await;
            return Err(e);
        }
    };
    // The code is spent by the transaction that completes the challenge, not before.
    let code = right.code(&factor.id, now);

    let (caller, token) = match completing {
        Completing::Action { caller, token } => (*caller, token),
        Completing::Login(pending) => {
            let verified = event("ACCOUNT_STEPUP_VERIFIED");
            return complete_login(&app, &record, *pending, kind, code, verified, attempt).await;
        }
    };
    let elevation = ElevationRecord {
        id: uuid::Uuid::new_v4().to_string(),
        token_hash: token.as_deref().map(token_hash),
        challenge_id: challenge.id.clone(),
        policy_version: challenge.policy_version,
        user_id: challenge.user_id.clone(),
        session_id: caller.session.id.clone(),
        purpose: challenge.purpose.as_str().to_owned(),
        factor: kind.as_str().to_owned(),
        factor_class: kind.class(false).as_str().to_owned(),
        mode: challenge.mode.as_str().to_owned(),
        created_at: now,
        expires_at: challenge.elevation_expiry(now),
        // An IP-bound elevation is bound to the client IP of this verify request.
        ip: challenge.requirement.bind_ip.then(|| ip.to_string()),
        single_use: challenge.requirement.single_use,
        consumed_at: None,
        revoked_at: None,
        action_digest: challenge.action_digest.clone(),
        jkt: caller.session.jkt.clone(),
    };
    let verified = AuditEvent {
        elevation_id: Some(elevation.id.clone()),
        data: Some(
            serde_json::json!({ "mode": elevation.mode, "expires_at": elevation.expires_at })
                .to_string(),
        ),
        ..event("ACCOUNT_STEPUP_VERIFIED")
    };
    let completion = app
        .store
        .complete_challenge(
            &challenge.id,
            now,
            code,
            &reservation,
            &elevation,
            &verified,
        )
        .await;
    app.decider.forget_session(&caller.session.id);
    attempt.settle(completion).await?;
    let access_token = match challenge.mode {
        ElevationMode::Token => None,
        ElevationMode::Session => Some(
            app.tokens.sign(&AccessClaims {
                iss: app.tokens.issuer().to_owned(),
                sub: caller.session.user_id.clone(),
                sid: caller.session.id.clone(),
                iat: now,
                // The su token lives no longer than the elevation it announces.
                exp: app
                    .lifetimes
                    .access_token_expiry(now, caller.session.expires_at)
                    .min(elevation.expires_at),
                auth_time: caller.session.auth_time,
                acr: acr::MFA.into(),
                amr: vec!["pwd".into(), kind.amr().into()],
                su: Some(true),
                su_time: Some(now),
                su_purpose: Some(elevation.purpose.clone()),
                cnf: Confirmation::of(caller.session.jkt.as_ref()),
            })?,
        ),
    };
    Ok(Json(VerifyAnswer::Elevation(Verified {
        elevation_id: elevation.id,
        elevation_token: token,
        access_token,
        purpose: elevation.purpose,
        mode: elevation.mode,
        expires_at: rfc3339(elevation.expires_at),
        single_use: elevation.single_use,
    })))
}

/// What a passed challenge turns into: a session for a login challenge, an elevation
/// (with its token in token mode) for an action challenge.
enum Completing {
    Login(Box<PendingLogin>),
    Action {
        caller: Box<UserCaller>,
        token: Option<String>,
    },
}

/// The login a login challenge holds until it is passed.
fn pending_login(record: &ChallengeRecord) -> Result<PendingLogin, AppError> {
    record
        .login_context
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok())
        .ok_or_else(|| AppError::internal("login challenge without its pending login"))
}

/// A passed login challenge: the pending login becomes a session, its device is
/// remembered (a login that completed a step-up from it), and the answer carries the
/// session's access token.
async fn complete_login(
    app: &SharedApp,
    record: &ChallengeRecord,
    pending: PendingLogin,
    factor: FactorKind,
    code: SpentCode<'_>,
    verified: AuditEvent,
    attempt: Attempt<'_>,
) -> Result<Json<VerifyAnswer>, AppError> {
    let now = attempt.now;
    let session = new_session(app, &pending, Some(factor), now);
    let device = pending.device_hash.as_ref().map(|hash| DeviceRecord {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: pending.user_id.clone(),
        device_hash: hash.clone(),
        trust: crate::dpop::trust_of(hash).into(),
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
            },
        )
        .await;
    attempt.settle(completion).await?;
    Ok(Json(VerifyAnswer::Login(session_granted(
        app,
        &session,
        pending.risk,
        now,
    )?)))
}

pub(crate) fn device_remembered(user_id: &str, session_id: &str, ip: &str, now: i64) -> AuditEvent {
    AuditEvent {
        kind: "DEVICE_REMEMBERED",
        at: now,
        user_id: Some(user_id.to_owned()),
        session_id: Some(session_id.to_owned()),
        ip: Some(ip.to_owned()),
        ..Default::default()
    }
}

/// A step-up answer in its checked shape.
enum Answer {
    Totp(TotpCode),
    Recovery(String),
}

/// What an answer will spend when the challenge completes.
enum RightAnswer {
    TotpStep(i64),
    RecoveryCode(Vec<u8>),
}

impl RightAnswer {
    fn code<'a>(&'a self, factor_id: &'a str, now: i64) -> SpentCode<'a> {
        match self {
            Self::TotpStep(step) => SpentCode::TotpStep {
                factor_id,
                step: *step,
            },
            Self::RecoveryCode(hash) => SpentCode::RecoveryCode {
                factor_id,
                code_hash: hash,
                at: now,
            },
        }
    }
}

/// What the answer would spend, or `None` when it is wrong on its face (a TOTP code of
/// no step in the window). Whether the code is still unspent (a recovery code issued
/// and unused, a TOTP step after the last accepted one) is decided once, by the
/// transaction that completes the challenge and spends it.
fn check_answer(
    app: &SharedApp,
    factor: &FactorRecord,
    answer: &Answer,
    now: i64,
) -> Result<Option<RightAnswer>, AppError> {
    Ok(match answer {
        Answer::Totp(code) => {
            let sealed = factor
                .secret
                .as_deref()
                .ok_or_else(|| AppError::internal("TOTP factor without a secret"))?;
            let secret = app.secrets.open(&factor.id, sealed)?;
            totp_matching_step(&secret, code, now).map(|step| RightAnswer::TotpStep(step as i64))
        }
        Answer::Recovery(normalized) => Some(RightAnswer::RecoveryCode(
            app.secrets.recovery_code_hash(normalized),
        )),
    })
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

/// Redeem an elevation token (the RP's backend, just before the action).
#[utoipa::path(post, path = "/v1/stepup/redeem", tag = "stepup", operation_id = "redeemElevation",
    request_body = Redeem,
    responses(
        (status = 200, body = Redeemed),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "VALIDATION_FAILED"),
        (status = 403, body = Problem, content_type = "application/problem+json",
            description = "STEPUP_TOKEN_INVALID, STEPUP_TOKEN_EXPIRED, STEPUP_TOKEN_REUSED, STEPUP_IP_MISMATCH, STEPUP_SCOPE_MISMATCH"),
    ),
    security(("service_key" = [])))]
pub async fn redeem(
    State(app): State<SharedApp>,
    _caller: ServiceCaller,
    ApiJson(body): ApiJson<Redeem>,
) -> Result<Json<Redeemed>, AppError> {
    let now = app.now();
    let ip = body
        .ip
        .as_deref()
        .map(|raw| {
            raw.parse::<IpAddr>()
                .map(|ip| ip.to_canonical().to_string())
                .map_err(|_| AppError::validation("ip must be an IPv4 or IPv6 address"))
        })
        .transpose()?;
    let digest = parse_digest(body.action_digest)?;
    let hash = parse_elevation_token(&body.elevation_token)?;
    let record = app
        .store
        .elevation_by_token_hash(&hash)
        .await?
        .ok_or_else(|| AppError::new(ErrorCode::StepupTokenInvalid, "unknown elevation token"))?;
    if let Some(jkt) = &record.jkt {
        prove_elevation_key(&app, jkt, &body.elevation_token, body.dpop.as_ref(), now).await?;
    }
    let use_ = Use {
        purpose: &body.purpose,
        ip: ip.as_deref(),
        action_digest: digest.as_deref(),
    };
    rely_on(&app, &record, &use_, now).await?;
    Ok(Json(Redeemed {
        elevation_id: record.id,
        user_id: record.user_id,
        session_id: record.session_id,
        purpose: record.purpose,
        factor: record.factor,
        factor_class: record.factor_class,
        verified_at: rfc3339(record.created_at),
        single_use: record.single_use,
    }))
}

/// The caller's live elevations, across all their sessions, so they can see and end them.
#[utoipa::path(get, path = "/v1/stepup/elevations", tag = "stepup", operation_id = "listElevations",
    responses((status = 200, body = ElevationList)),
    security(("access_token" = [])))]
pub async fn list(
    State(app): State<SharedApp>,
    caller: UserCaller,
) -> Result<Json<ElevationList>, AppError> {
    let now = app.now();
    let mut elevations = Vec::new();
    for e in app
        .store
        .live_elevations_of_user(&caller.session.user_id, now)
        .await?
    {
        let device = app
            .store
            .session(&e.session_id)
            .await?
            .and_then(|s| s.user_agent);
        let uses_left = e.to_domain().map_err(corrupt)?.uses_left();
        elevations.push(ElevationView {
            current_session: e.session_id == caller.session.id,
            elevation_id: e.id,
            purpose: e.purpose,
            session_id: e.session_id,
            mode: e.mode,
            created_at: rfc3339(e.created_at),
            expires_at: rfc3339(e.expires_at),
            uses_left,
            ip: e.ip,
            device,
        });
    }
    Ok(Json(ElevationList { elevations }))
}

/// Revoke an elevation early (its user, or an RP's backend).
#[utoipa::path(delete, path = "/v1/stepup/elevations/{id}", tag = "stepup", operation_id = "revokeElevation",
    params(("id" = String, Path, description = "The elevation id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "NOT_FOUND"),
    ),
    security(("access_token" = []), ("service_key" = [])))]
pub async fn revoke(
    State(app): State<SharedApp>,
    caller: UserOrService,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, AppError> {
    let now = app.now();
    let not_found = || AppError::new(ErrorCode::NotFound, "no live elevation with this id");
    let record = app.store.elevation(&id).await?.ok_or_else(not_found)?;
    if let UserOrService::User(user) = &caller
        && user.session.user_id != record.user_id
    {
        return Err(not_found());
    }
    let event = AuditEvent {
        kind: "ACCOUNT_STEPUP_REVOKED",
        at: now,
        user_id: Some(record.user_id.clone()),
        session_id: Some(record.session_id.clone()),
        purpose: Some(record.purpose.clone()),
        ip: Some(ip.to_string()),
        factor: Some(record.factor.clone()),
        policy_version: Some(record.policy_version),
        challenge_id: Some(record.challenge_id.clone()),
        elevation_id: Some(record.id.clone()),
        data: Some(
            serde_json::json!({ "by": if matches!(caller, UserOrService::Service) { "service" } else { "user" } })
                .to_string(),
        ),
    };
    let revoked = app.store.revoke_elevation(&record.id, now, &event).await?;
    app.decider.forget_session(&record.session_id);
    if revoked {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found())
    }
}
