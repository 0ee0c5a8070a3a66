//! Where a challenge stands, and collecting what it yielded when it was passed on the
//! hosted page (which hands out no token): the elevation token or `su` access token of
//! an action challenge, to its session's access token; a login challenge's session, to
//! a service key. Each is handed out once.

use stepgate_api::{ChallengeProgress, LoginResponse};
use stepgate_core::ErrorCode;
use stepgate_core::factor::{FactorKind, Proof};
use stepgate_core::stepup::{Challenge, ElevationMode};
use stepgate_store::{ChallengeRecord, ElevationRecord};

use crate::app::SharedApp;
use crate::caller::UserCaller;
use crate::error::AppError;
use crate::login::session_granted;
use crate::stepup::answers::{pending_login, su_token};
use crate::stepup::elevations::{new_elevation_token, token_hash};

/// Who asks where a challenge stands.
pub enum Collector<'a> {
    /// An action challenge's own session.
    User(&'a UserCaller),
    /// An RP's backend, for the login challenges its sign-ins opened.
    Service,
}

/// A challenge as its asker sees it.
pub struct ChallengeView {
    pub record: ChallengeRecord,
    pub progress: ChallengeProgress,
    pub attempts_left: u32,
    /// Handed out already (now included: see `yielded`).
    pub collected: bool,
    /// Collected by this read.
    pub yielded: Option<Yielded>,
}

/// What a passed challenge yielded, handed out by this read.
pub enum Yielded {
    Elevation {
        record: Box<ElevationRecord>,
        token: Option<String>,
        access_token: Option<String>,
    },
    Login(Box<LoginResponse>),
}

fn not_found() -> AppError {
    AppError::new(ErrorCode::NotFound, "no such challenge for this caller")
}

/// Challenge `id` as `by` may see it; collects what it yielded if it was passed and
/// nothing was handed out yet. Another session's challenge is as unknown as one that
/// does not exist.
pub async fn collect(
    app: &SharedApp,
    by: Collector<'_>,
    id: &str,
) -> Result<ChallengeView, AppError> {
    let record = app.store.challenge(id).await?.ok_or_else(not_found)?;
    let is_login = record.login_context.is_some();
    let caller = match by {
        Collector::Service if is_login => None,
        Collector::User(caller)
            if !is_login && record.session_id.as_deref() == Some(caller.session.id.as_str()) =>
        {
            Some(caller)
        }
        _ => return Err(not_found()),
    };
    let challenge = record
        .to_domain()
        .map_err(|e| AppError::internal(format!("corrupt challenge: {e}")))?;
    let now = app.now();
    let progress = progress_of(&record, &challenge, now);
    let yielded = match (progress, record.collected_at, caller) {
        (ChallengeProgress::Passed, None, None) => collect_login(app, &record, now).await?,
        (ChallengeProgress::Passed, None, Some(caller)) => {
            collect_elevation(app, &record, caller, now).await?
        }
        _ => None,
    };
    Ok(ChallengeView {
        attempts_left: challenge.attempts_left(),
        collected: record.collected_at.is_some() || yielded.is_some(),
        progress,
        record,
        yielded,
    })
}

/// How far a challenge has got at `now`.
pub fn progress_of(record: &ChallengeRecord, challenge: &Challenge, now: i64) -> ChallengeProgress {
    if record.status == "verified" {
        return ChallengeProgress::Passed;
    }
    match challenge.check_live(now) {
        Ok(()) => ChallengeProgress::Pending,
        Err(e) if e.code == ErrorCode::StepupBlocked => ChallengeProgress::Blocked,
        Err(_) => ChallengeProgress::Expired,
    }
}

/// A login challenge passed on the page: the session it made, with a first access
/// token signed now.
async fn collect_login(
    app: &SharedApp,
    record: &ChallengeRecord,
    now: i64,
) -> Result<Option<Yielded>, AppError> {
    let pending = pending_login(record)?;
    let session_id = record
        .session_id
        .as_deref()
        .ok_or_else(|| AppError::internal("a passed login challenge without its session"))?;
    let Some(session) = app.store.session(session_id).await? else {
        return Err(AppError::internal(
            "a passed login challenge's session is gone",
        ));
    };
    if session.revoked_at.is_some() || session.expires_at <= now {
        return Err(AppError::new(
            ErrorCode::ChallengeExpired,
            "the session this sign-in made has ended",
        ));
    }
    if !app.store.collect_challenge(&record.id, now, None).await? {
        return Ok(None);
    }
    Ok(Some(Yielded::Login(Box::new(session_granted(
        app,
        &session,
        pending.risk,
        now,
    )?))))
}

/// An action challenge passed on the page: a token-mode elevation's token is made now
/// (its hash stored in the collecting transaction); session mode signs an `su` token.
async fn collect_elevation(
    app: &SharedApp,
    record: &ChallengeRecord,
    caller: &UserCaller,
    now: i64,
) -> Result<Option<Yielded>, AppError> {
    let elevation = app
        .store
        .elevation_of_challenge(&record.id)
        .await?
        .ok_or_else(|| AppError::internal("a passed challenge without its elevation"))?;
    let token = (elevation.mode == ElevationMode::Token)
        .then(new_elevation_token)
        .transpose()?;
    let hash = token.as_deref().map(token_hash);
    if !app
        .store
        .collect_challenge(&record.id, now, hash.as_deref())
        .await?
    {
        return Ok(None);
    }
    let access_token = match elevation.mode {
        ElevationMode::Token => None,
        ElevationMode::Session => {
            // Which credential answered is not kept on the elevation, so the `acr`
            // claims no more than any passkey earns: the safe direction.
            let kind = FactorKind::parse(&elevation.factor).map_err(AppError::from)?;
            Some(su_token(
                app,
                &caller.session,
                &elevation,
                Proof::of(kind),
                now,
            )?)
        }
    };
    Ok(Some(Yielded::Elevation {
        record: Box::new(elevation),
        token,
        access_token,
    }))
}
